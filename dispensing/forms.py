"""The pharmacist's forms, their messages said as the NHS design system says them."""

from __future__ import annotations

from django import forms

from dispensing.services import NOT_DISPENSED_REASONS
from fhirserver.nhs import prescription_id_error, prescription_id_normalised


class FindForm(forms.Form):
    """A Prescription ID typed, or scanned (a scanner types it and presses Enter)."""

    prescription_id = forms.CharField(
        label="Prescription ID",
        max_length=40,
        error_messages={
            "required": "Enter the Prescription ID",
            "max_length": "Enter a Prescription ID of 18 characters",
        },
    )

    def clean_prescription_id(self) -> str:
        value = self.cleaned_data["prescription_id"]
        problem = prescription_id_error(value)
        if problem:
            raise forms.ValidationError(problem)
        return prescription_id_normalised(value)


class DispenseForm(forms.Form):
    quantity = forms.DecimalField(
        label="Quantity supplied",
        min_value=0.001,
        max_digits=10,
        decimal_places=3,
        error_messages={
            "required": "Enter the quantity supplied",
            "min_value": "The quantity supplied must be more than 0",
            "invalid": "The quantity supplied must be a number",
            "max_decimal_places": "The quantity supplied can have at most 3 decimal places",
        },
    )
    note = forms.CharField(label="Note (optional)", required=False, max_length=1000, widget=forms.Textarea)


class ReturnForm(forms.Form):
    reason = forms.ChoiceField(
        label="Why is it not dispensed?",
        choices=[("", "Select a reason"), *NOT_DISPENSED_REASONS.items()],
        error_messages={"required": "Select why it is not dispensed"},
    )
    item = forms.CharField(required=False)  # one item's id, or none for every open item


class DispensedSearchForm(forms.Form):
    q = forms.CharField(label="NHS number or Prescription ID", required=False, max_length=40)
