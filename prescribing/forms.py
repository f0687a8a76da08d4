"""The prescriber's forms: what each field must hold, said as the NHS design system says it."""

from __future__ import annotations

import datetime

from django import forms

from fhirserver.medication import CANCELLATION_REASONS
from fhirserver.nhs import nhs_number_is_valid
from fhirserver.patient import GENDERS
from prescribing.models import PrescriptionDraft


def nhs_number_field(required: bool = True) -> forms.CharField:
    return forms.CharField(
        label="NHS number",
        required=required,
        max_length=14,
        error_messages={"required": "Enter the patient's NHS number"},
    )


def _clean_nhs_number(value: str) -> str:
    digits = value.replace(" ", "").replace("-", "")
    if digits and not nhs_number_is_valid(digits):
        raise forms.ValidationError("Enter a valid NHS number: 10 digits, like 943 476 5919")
    return digits


class DateParts(forms.Form):
    """A date given as day, month and year boxes (the NHS date input)."""

    day = forms.IntegerField(required=False, min_value=1, max_value=31)
    month = forms.IntegerField(required=False, min_value=1, max_value=12)
    year = forms.IntegerField(required=False, min_value=1900, max_value=2100)

    date_label = "Date of birth"

    def clean(self):
        data = super().clean()
        parts = [data.get("day"), data.get("month"), data.get("year")]
        # Only the date's own boxes decide: another field's error must not hide this one.
        if any(name in self.errors for name in ("day", "month", "year")):
            return data
        if not any(parts):
            if self.date_required:
                self.add_error("day", f"Enter the {self.date_label.lower()}")
            return data
        try:
            data["date"] = datetime.date(parts[2], parts[1], parts[0])
        except (TypeError, ValueError):
            self.add_error("day", f"{self.date_label} must be a real date")
            return data
        if data["date"] > datetime.date.today():
            self.add_error("day", f"{self.date_label} must be in the past")
        return data

    date_required = True


class PatientSearchForm(DateParts):
    nhs_number = nhs_number_field(required=False)
    family = forms.CharField(label="Last name", required=False, max_length=100)

    date_required = False

    def clean_nhs_number(self) -> str:
        return _clean_nhs_number(self.cleaned_data["nhs_number"])

    def clean(self):
        data = super().clean()
        if not self.errors and not data.get("nhs_number") and not (data.get("family") and data.get("date")):
            self.add_error("nhs_number", "Enter an NHS number, or a last name and date of birth")
        return data


class PatientRegisterForm(DateParts):
    nhs_number = nhs_number_field()
    given = forms.CharField(
        label="First name", max_length=100, error_messages={"required": "Enter the first name"}
    )
    family = forms.CharField(
        label="Last name", max_length=100, error_messages={"required": "Enter the last name"}
    )
    gender = forms.ChoiceField(
        label="Gender",
        choices=[(g, g.capitalize()) for g in GENDERS],
        error_messages={"required": "Select the gender"},
    )
    pharmacy = forms.CharField(label="Nominated pharmacy", required=False)

    field_order = ["nhs_number", "given", "family", "day", "month", "year", "gender", "pharmacy"]

    def clean_nhs_number(self) -> str:
        return _clean_nhs_number(self.cleaned_data["nhs_number"])


class NominationForm(forms.Form):
    pharmacy = forms.CharField(label="Nominated pharmacy", required=False)


class ItemForm(forms.Form):
    medicine = forms.CharField(
        label="Medicine", error_messages={"required": "Choose a medicine: search by name, then select one"}
    )
    dosage = forms.CharField(
        label="Dosage instructions",
        max_length=500,
        error_messages={"required": "Enter the dosage instructions"},
    )
    quantity = forms.DecimalField(
        label="Quantity",
        min_value=0.001,
        max_digits=10,
        decimal_places=3,
        error_messages={
            "required": "Enter the quantity",
            "min_value": "Quantity must be more than 0",
            "invalid": "Quantity must be a number",
        },
    )
    days_supply = forms.IntegerField(
        label="Days' supply",
        required=False,
        min_value=1,
        max_value=366,
        error_messages={
            "min_value": "Days' supply must be at least 1",
            "invalid": "Days' supply must be a whole number",
        },
    )


class RouteForm(forms.Form):
    course = forms.ChoiceField(label="Type of prescription", choices=PrescriptionDraft.Course.choices)
    issues = forms.IntegerField(
        label="Number of issues",
        required=False,
        min_value=2,
        max_value=13,
        error_messages={
            "min_value": "Repeat dispensing needs at least 2 issues",
            "max_value": "Repeat dispensing allows at most 13 issues",
            "invalid": "The number of issues must be a whole number",
        },
    )
    interval_days = forms.IntegerField(
        label="Days between issues",
        required=False,
        min_value=7,
        max_value=91,
        error_messages={
            "min_value": "Issues must be at least 7 days apart",
            "max_value": "Issues can be at most 91 days apart",
            "invalid": "The days between issues must be a whole number",
        },
    )
    validity_months = forms.IntegerField(
        label="Valid for (months)",
        required=False,
        min_value=1,
        max_value=12,
        error_messages={
            "min_value": "It must be valid for at least 1 month",
            "max_value": "It can be valid for at most 12 months",
            "invalid": "The months it is valid for must be a whole number",
        },
    )
    route = forms.ChoiceField(label="Where it goes", choices=PrescriptionDraft.Route.choices)
    pharmacy = forms.CharField(label="Pharmacy", required=False)

    def clean(self) -> dict:
        data = super().clean()
        if data.get("course") == PrescriptionDraft.Course.ERD:
            if not self.errors.get("issues") and data.get("issues") is None:
                self.add_error("issues", "Enter the number of issues")
            if not self.errors.get("interval_days") and data.get("interval_days") is None:
                self.add_error("interval_days", "Enter the days between issues")
            if not self.errors.get("validity_months") and data.get("validity_months") is None:
                data["validity_months"] = 12
        return data


class CancelForm(forms.Form):
    reason = forms.ChoiceField(
        label="Reason for cancelling",
        choices=[("", "Select a reason"), *CANCELLATION_REASONS.items()],
        error_messages={"required": "Select a reason for cancelling"},
    )
    item = forms.CharField(label="What to cancel", required=False)  # an item's id, "" for them all


class RenominateForm(forms.Form):
    item = forms.CharField(label="Item", error_messages={"required": "Choose the item to send"})
    pharmacy = forms.CharField(label="Pharmacy", error_messages={"required": "Choose a pharmacy"})
