"""The exchange's screens: what a node sent and received, its subscriptions, and at a broker
its shared record."""

from __future__ import annotations

import re

from django import forms
from django.contrib import messages as flash
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect

from exchange import selectors
from exchange.models import Message
from exchange.services import message_requeue
from fhirserver.nhs import nhs_number_is_valid, prescription_id_error, prescription_id_normalised
from nodes.access import Role, can, member_view
from nodes.models import Node
from nodes.polling import polled_render

EVERYONE = (Role.PRESCRIBER, Role.PHARMACIST, Role.ADMINISTRATOR)

exchange_view = member_view("", see=EVERYONE, act=(Role.ADMINISTRATOR,))


@exchange_view
def messages_page(request: HttpRequest, node: Node) -> HttpResponse:
    status = request.GET.get("status", "")
    status = status if status in selectors.STATUSES else ""
    key, number = request.GET.get("q", "").strip()[:100], request.GET.get("page")
    context = {
        "node": node,
        "status": status,
        "q": key,
        "counts": selectors.messages_counts(node=node, key=key),
        "sent": selectors.messages_sent_page(node=node, status=status, key=key, number=number),
        "received": selectors.events_received(node=node),
        "callers": selectors.api_callers(node=node),
    }
    return polled_render(request, "exchange/messages.html", "exchange", context, final=False)


@exchange_view
def message_page(request: HttpRequest, node: Node, message_id: int) -> HttpResponse:
    message = _message(node, message_id)
    context = {
        "node": node,
        "message": message,
        "what": selectors.message_kind_words(message=message),
        "attempts": selectors.message_attempts(message=message),
        "can_act": can(request.member, Role.ADMINISTRATOR),
        "headers": selectors.message_headers(message=message),
        "body": selectors.message_body(message=message),
    }
    final = message.status != Message.Status.PENDING
    return polled_render(request, "exchange/message.html", "delivery", context, final=final)


@exchange_view
def message_requeue_view(request: HttpRequest, node: Node, message_id: int) -> HttpResponse:
    """Requeue a dead message (POST, administrators); then back to the message."""
    message = _message(node, message_id)
    if request.method == "POST":
        if message.status == Message.Status.DEAD:
            message_requeue(message=message)
            flash.success(request, "The message was requeued: it is sent again now, and retried if it fails.")
        else:
            flash.info(
                request,
                f"Only a dead message can be requeued; this one is {message.get_status_display().lower()}.",
            )
    return redirect("message", node.slug, message.pk)


def _message(node: Node, message_id: int) -> Message:
    message = selectors.message_at(node=node, message_id=message_id)
    if message is None:
        raise Http404("No such message")
    return message


@member_view("", see=EVERYONE)
def subscriptions_page(request: HttpRequest, node: Node) -> HttpResponse:
    context = {"node": node, "subscriptions": selectors.subscriptions_at(node=node)}
    return polled_render(request, "exchange/subscriptions.html", "subscriptions", context, final=False)


class SharedRecordSearchForm(forms.Form):
    """One box for a Prescription ID or an NHS number, each checked by its check character."""

    q = forms.CharField(
        label="Prescription ID or NHS number",
        max_length=40,
        error_messages={
            "required": "Enter a Prescription ID or an NHS number",
            "max_length": "Enter a Prescription ID or an NHS number, not more",
        },
    )

    def clean_q(self) -> dict[str, str]:
        value = self.cleaned_data["q"].strip()
        digits = re.sub(r"[\s-]", "", value)
        if digits.isascii() and digits.isdigit() and len(digits) <= 12:
            if not nhs_number_is_valid(digits):
                raise forms.ValidationError("Enter a valid NHS number: 10 digits, like 943 476 5919")
            return {"nhs_number": digits}
        problem = prescription_id_error(value)
        if problem:
            raise forms.ValidationError(problem)
        return {"prescription_id": prescription_id_normalised(value)}


@member_view(Node.Kind.BROKER, see=EVERYONE)
def shared_record_page(request: HttpRequest, node: Node) -> HttpResponse:
    form = SharedRecordSearchForm(request.GET if "q" in request.GET else None)
    if form.is_bound:
        found = selectors.shared_record_search(node=node, **form.cleaned_data["q"]) if form.is_valid() else []
    else:
        found = selectors.shared_record_search(node=node)
    context = {"node": node, "form": form, "prescriptions": found}
    return polled_render(request, "exchange/shared_record.html", "results", context, final=False)
