"""The pharmacist's screens: the worklist, finding a prescription by its token, dispensing it."""

from __future__ import annotations

from django.contrib import messages as flash
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from dispensing import finding, forms, selectors, services
from exchange.selectors import exchange_summary
from fhirserver import jsonio, medication
from fhirserver.errors import FHIRError
from fhirserver.nhs import prescription_id_error
from nodes.access import Role, member_view
from nodes.models import Node
from nodes.polling import polled_render

pharmacy_view = member_view(Node.Kind.DISPENSING, see=(Role.ADMINISTRATOR,), act=(Role.PHARMACIST,))


@pharmacy_view
def worklist_page(request: HttpRequest, node: Node) -> HttpResponse:
    context = {
        "node": node,
        "worklist": selectors.worklist_view(node=node, status=request.GET.get("status", "open")),
        **exchange_summary(node=node),
    }
    return polled_render(request, "dispensing/worklist.html", "worklist", context, final=False)


@pharmacy_view
def find_page(request: HttpRequest, node: Node) -> HttpResponse:
    """Find a prescription by its ID: held here, or fetched from the shared record (POST, as it
    may store a copy); then on to its page."""
    form = forms.FindForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        pid = form.cleaned_data["prescription_id"]
        try:
            finding.prescription_find(node=node, prescription_id=pid)
        except FHIRError as exc:
            form.add_error("prescription_id", str(exc))
        else:
            return redirect("pharmacy-prescription", node.slug, pid)
    return render(request, "dispensing/find.html", {"node": node, "form": form})


@pharmacy_view
def find_check(request: HttpRequest, node: Node) -> HttpResponse:
    """What is wrong with the Prescription ID typed so far (htmx, as the pharmacist types)."""
    value = request.GET.get("prescription_id", "")
    bare = "".join(value.split()).replace("-", "")
    problem = prescription_id_error(value) if len(bare) >= 18 else None
    context = {"problem": problem, "complete": len(bare) >= 18 and problem is None}
    return render(request, "dispensing/find.html#check", context)


@pharmacy_view
def prescription_page(request: HttpRequest, node: Node, prescription_id: str) -> HttpResponse:
    page = _page(node, prescription_id)
    context = {"node": node, "prescription": page, "can_act": _acts(request)}
    return polled_render(request, "dispensing/prescription.html", "items", context, final=page.final)


@pharmacy_view
def prescription_start(request: HttpRequest, node: Node, prescription_id: str) -> HttpResponse:
    """Start dispensing (EPS With Dispenser) every item still to be dispensed."""
    page = _page(node, prescription_id)
    if request.method == "POST":
        try:
            services.prescription_start(node=node, prescription_id=page.prescription_id)
        except FHIRError as exc:
            flash.error(request, str(exc))
        else:
            flash.success(request, "Dispensing started: the prescription is with this pharmacy.")
    return redirect("pharmacy-prescription", node.slug, page.prescription_id)


@pharmacy_view
def item_dispense(request: HttpRequest, node: Node, prescription_id: str, item_id: str) -> HttpResponse:
    """Supply one item: all that is owed, or part of it (the rest owed for later), with a note; or
    supply none now and owe it all."""
    page = _page(node, prescription_id)
    item = _item(page, item_id)
    initial = item.owing_value if item.owing_value is not None else item.quantity_value
    form = forms.DispenseForm(request.POST or None, initial={"quantity": initial})
    owe = request.POST.get("action") == "owe"
    if request.method == "POST" and item.open and (owe or form.is_valid()):
        note = request.POST.get("note", "")[:1000]
        try:
            if owe:
                record = services.dispense_owing(node=node, request=item.record, note=note)
            else:
                record = services.dispense_complete(
                    node=node, request=item.record, quantity=form.cleaned_data["quantity"], note=note
                )
        except FHIRError as exc:
            form.add_error("quantity" if "quantity" in str(exc) else None, str(exc))
        else:
            flash.success(
                request, f"{item.medicine}: {medication.supply_words(jsonio.loads(record.text)).lower()}."
            )
            return redirect("pharmacy-prescription", node.slug, page.prescription_id)
    context = {"node": node, "prescription": page, "item": item, "form": form, "can_act": _acts(request)}
    return render(request, "dispensing/dispense.html", context)


@pharmacy_view
def item_amend(request: HttpRequest, node: Node, prescription_id: str, item_id: str) -> HttpResponse:
    """Correct the quantity of the last supply of an item; the correction travels the route."""
    page = _page(node, prescription_id)
    item = _item(page, item_id)
    last = services.last_supply(node=node, request=item.record)
    supplied = jsonio.loads(last.text).get("quantity", {}).get("value") if last is not None else None
    form = forms.DispenseForm(request.POST or None, initial={"quantity": supplied})
    if request.method == "POST" and item.amendable and form.is_valid():
        try:
            services.dispense_amend(
                node=node,
                request=item.record,
                quantity=form.cleaned_data["quantity"],
                note=form.cleaned_data["note"],
            )
        except FHIRError as exc:
            form.add_error("quantity" if "quantity" in str(exc) else None, str(exc))
        else:
            flash.success(request, f"{item.medicine}: the last supply is amended, and the prescriber told.")
            return redirect("pharmacy-prescription", node.slug, page.prescription_id)
    context = {
        "node": node,
        "prescription": page,
        "item": item,
        "form": form,
        "can_act": _acts(request),
        "amend": True,
        "last_supplied": supplied,
    }
    return render(request, "dispensing/dispense.html", context)


def _item(page: selectors.PrescriptionPage, item_id: str) -> selectors.ItemRow:
    item = next((item for item in page.items if item.item_id == item_id), None)
    if item is None:
        raise Http404("No such item")
    return item


@pharmacy_view
def prescription_return(request: HttpRequest, node: Node, prescription_id: str) -> HttpResponse:
    """Return (decline) the prescription, or one item of it, to the prescriber with an EPS reason."""
    page = _page(node, prescription_id)
    form = forms.ReturnForm(request.POST or None, initial={"item": request.GET.get("item", "")})
    if request.method == "POST" and form.is_valid():
        reason, chosen = form.cleaned_data["reason"], form.cleaned_data["item"]
        try:
            if chosen:
                item = next((item for item in page.items if item.item_id == chosen and item.open), None)
                if item is None:
                    raise FHIRError(
                        409, "business-rule", "That item cannot be returned: it is not open here."
                    )
                services.dispense_decline(node=node, request=item.record, reason_code=reason)
            else:
                services.prescription_return(
                    node=node, prescription_id=page.prescription_id, reason_code=reason
                )
        except FHIRError as exc:
            form.add_error(None, str(exc))
        else:
            flash.success(request, "Returned to the prescriber as not dispensed.")
            return redirect("pharmacy-prescription", node.slug, page.prescription_id)
    context = {"node": node, "prescription": page, "form": form, "can_act": _acts(request)}
    return render(request, "dispensing/return.html", context)


@pharmacy_view
def dispensed_page(request: HttpRequest, node: Node) -> HttpResponse:
    """What this pharmacy dispensed, newest first, searchable by NHS number or Prescription ID."""
    form = forms.DispensedSearchForm(request.GET or None)
    rows = []
    if not form.is_bound or form.is_valid():
        query = form.cleaned_data["q"] if form.is_bound else ""
        try:
            rows = selectors.dispensed(node=node, query=query)
        except FHIRError as exc:
            form.add_error("q", str(exc))
    return render(request, "dispensing/dispensed.html", {"node": node, "form": form, "rows": rows})


def _page(node: Node, prescription_id: str) -> selectors.PrescriptionPage:
    page = selectors.prescription_page(node=node, prescription_id=prescription_id)
    if page is None:
        raise Http404("No such prescription at this pharmacy")
    return page


def _acts(request: HttpRequest) -> bool:
    return request.member.role == Role.PHARMACIST
