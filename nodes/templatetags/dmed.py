"""Template filters every screen uses: NHS numbers as people read them, statuses as tags."""

from __future__ import annotations

from django import template

from fhirserver.patient import nhs_number_spaced

register = template.Library()

# NHS.UK tag colours for the statuses screens show.
TAG_COLOURS = {
    "active": "blue",
    "completed": "green",
    "dispensed": "green",
    "cancelled": "red",
    "stopped": "grey",
    "returned": "orange",
    "declined": "orange",
    "in-progress": "aqua-green",
    "pending": "yellow",
    "delivered": "green",
    "dead": "red",
}


@register.filter
def nhs_number(value: str) -> str:
    """943 476 5919."""
    return nhs_number_spaced(value or "")


@register.filter
def tag_colour(status: str) -> str:
    """The NHS.UK tag modifier class for a status ("" for the default blue)."""
    colour = TAG_COLOURS.get((status or "").lower(), "grey")
    return f"nhsuk-tag--{colour}"


@register.filter
def message_words(message) -> str:
    """What an outbox message does, in words ("Dispense sent to the prescriber")."""
    from exchange.selectors import message_kind_words

    return message_kind_words(message=message)
