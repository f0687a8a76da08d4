"""Template filters the screens use: NHS numbers as people read them, messages in words."""

from __future__ import annotations

from django import template

from fhirserver.patient import nhs_number_spaced

register = template.Library()


@register.filter
def nhs_number(value: str) -> str:
    """943 476 5919."""
    return nhs_number_spaced(value or "")


@register.filter
def message_words(message) -> str:
    """What an outbox message does, in words ("Dispense sent to the prescriber")."""
    from exchange.selectors import message_kind_words

    return message_kind_words(message=message)
