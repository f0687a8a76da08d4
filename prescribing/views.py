"""The prescriber's screens: patients, writing and issuing a prescription, following it."""

from __future__ import annotations

import uuid

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from exchange.selectors import exchange_summary
from fhirserver.errors import FHIRError
from fhirserver.models import Resource
from fhirserver.selectors import request_for_item
from medicines.selectors import medicine_get, medicine_search
from nodes.access import Role, can, member_view
from nodes.models import Node
from nodes.polling import polled_render
from prescribing import drafts, forms, patients, selectors, services
from prescribing.models import PrescriptionDraft
from prescribing.tokens import token_images

prescriber_view = member_view(Node.Kind.PRESCRIBING, see=(Role.ADMINISTRATOR,), act=(Role.PRESCRIBER,))
ITEM_FIELDS = ("dosage", "quantity", "days_supply")


@prescriber_view
def patients_page(request: HttpRequest, node: Node) -> HttpResponse:
    form, found = forms.PatientSearchForm(request.GET or None), None
    if form.is_valid():
        data = form.cleaned_data
        if data["nhs_number"]:
            record = patients.patient_find(node=node, nhs_number=data["nhs_number"])
            if record is not None:
                return redirect("patient", node.slug, data["nhs_number"])
            found = []
        else:
            birth_date = data["date"].isoformat()
            found = list(patients.patients_search(node=node, family=data["family"], birth_date=birth_date))
    context = {
        "node": node,
        "form": form,
        "found": None if found is None else [selectors.patient_view(node=node, record=r) for r in found],
        "can_act": can(request.member, Role.PRESCRIBER),
    }
    return render(request, "prescribing/patients.html", context)


@prescriber_view
def patient_register_page(request: HttpRequest, node: Node) -> HttpResponse:
    initial = {"nhs_number": request.GET.get("nhs_number", "")}
    form = forms.PatientRegisterForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            patients.patient_register(
                node=node,
                nhs_number=data["nhs_number"],
                given=data["given"],
                family=data["family"],
                birth_date=data["date"].isoformat(),
                gender=data["gender"],
                pharmacy_ods=data["pharmacy"],
            )
        except FHIRError as exc:
            form.add_error("nhs_number" if exc.status == 409 else "pharmacy", str(exc))
        else:
            return redirect("patient", node.slug, data["nhs_number"])
    context = {"node": node, "form": form, "pharmacies": selectors.directory_pharmacies(node=node)}
    return render(request, "prescribing/patient_register.html", context)


@prescriber_view
def patient_page(request: HttpRequest, node: Node, nhs_number: str) -> HttpResponse:
    record = _patient(node, nhs_number)
    patient = selectors.patient_view(node=node, record=record)
    form = forms.NominationForm(request.POST or None, initial={"pharmacy": patient.pharmacy_ods})
    if request.method == "POST" and form.is_valid():
        try:
            patients.patient_nominate(node=node, record=record, pharmacy_ods=form.cleaned_data["pharmacy"])
        except FHIRError as exc:
            form.add_error("pharmacy", str(exc))
        else:
            return redirect("patient", node.slug, nhs_number)
    prescriptions = selectors.prescriptions_for_patient(node=node, nhs_number=nhs_number)
    context = {
        "node": node,
        "patient": patient,
        "form": form,
        "pharmacies": selectors.directory_pharmacies(node=node),
        "current": [p for p in prescriptions if not p.final],
        "past": [p for p in prescriptions if p.final],
        "can_act": can(request.member, Role.PRESCRIBER),
    }
    return render(request, "prescribing/patient.html", context)


@prescriber_view
def prescription_start(request: HttpRequest, node: Node, nhs_number: str) -> HttpResponse:
    if request.method != "POST":
        return redirect("patient", node.slug, nhs_number)
    _patient(node, nhs_number)
    draft = drafts.draft_start(node=node, author=request.user, nhs_number=nhs_number)
    return redirect("draft", node.slug, draft.token)


@prescriber_view
def draft_page(request: HttpRequest, node: Node, token: uuid.UUID) -> HttpResponse:
    draft = _draft(node, token)
    if draft.prescription_id:
        return redirect("prescription", node.slug, draft.prescription_id)
    action = request.POST.get("action", "") if request.method == "POST" else ""
    if action == "remove":
        drafts.draft_item_remove(draft=draft, key=request.POST.get("item", ""))
        return redirect("draft", node.slug, token)
    # A search (the no-JavaScript one) keeps what was typed in the item's other boxes.
    kept = {name: request.POST.get(name, "") for name in ITEM_FIELDS} if action == "search" else {}
    item_form = forms.ItemForm(request.POST if action == "add" else None, initial=kept)
    route_form = forms.RouteForm(
        request.POST if action == "review" else None,
        initial={
            "course": draft.course,
            "issues": draft.issues,
            "interval_days": draft.interval_days,
            "validity_months": draft.validity_months or 12,
            "route": draft.route,
            "pharmacy": draft.pharmacy_ods if draft.route == PrescriptionDraft.Route.OTHER else "",
        },
    )
    if action == "add" and item_form.is_valid():
        data = item_form.cleaned_data
        try:
            drafts.draft_item_add(
                draft=draft,
                code=data["medicine"],
                dosage=data["dosage"],
                quantity=float(data["quantity"]),
                days_supply=data["days_supply"],
            )
        except FHIRError as exc:
            item_form.add_error("medicine", str(exc))
        else:
            return redirect("draft", node.slug, token)
    if action == "review" and route_form.is_valid():
        data = route_form.cleaned_data
        try:
            if not draft.items:
                raise FHIRError(422, "required", "Add at least one item to the prescription", ["medicine"])
            drafts.draft_route_set(
                draft=draft,
                course=data["course"],
                route=data["route"],
                pharmacy_ods=data["pharmacy"],
                issues=data.get("issues"),
                interval_days=data.get("interval_days"),
                validity_months=data.get("validity_months"),
            )
        except FHIRError as exc:
            route_form.add_error(_route_field(exc), str(exc))
        else:
            return redirect("draft-review", node.slug, token)
    query = request.POST.get("q", "").strip() if action in ("search", "add") else ""
    chosen = request.POST.get("medicine", "") if action in ("add", "search") else ""
    context = {
        "node": node,
        "draft": draft,
        "patient": selectors.patient_view(node=node, record=_patient(node, draft.nhs_number)),
        "item_form": item_form,
        "route_form": route_form,
        "form": item_form if item_form.errors else route_form,
        "query": query,
        "chosen": chosen,
        "matches": _matches(query, chosen),
        "searched": action == "search",
        "pharmacies": selectors.directory_pharmacies(node=node),
    }
    return render(request, "prescribing/draft.html", context)


@prescriber_view
def medicines_page(request: HttpRequest, node: Node) -> HttpResponse:
    """The medicines matching what is typed, as radio options (htmx swaps them into the form)."""
    query = request.GET.get("q", "").strip()
    matches = medicine_search(query=query) if len(query) >= 2 else []
    context = {"matches": matches, "query": query, "searched": len(query) >= 2}
    return render(request, "prescribing/draft.html#medicine-options", context)


@prescriber_view
def draft_review_page(request: HttpRequest, node: Node, token: uuid.UUID) -> HttpResponse:
    draft = _draft(node, token)
    if draft.prescription_id:
        return redirect("prescription", node.slug, draft.prescription_id)
    error = ""
    if request.method == "POST":
        name = request.user.get_full_name() or request.user.get_username()
        try:
            prescription_id = drafts.draft_issue(node=node, token=token, prescriber_name=name)
        except FHIRError as exc:
            error = str(exc)
            draft.refresh_from_db()
        else:
            return redirect("prescription", node.slug, prescription_id)
    context = {
        "node": node,
        "draft": draft,
        "error": error,
        "patient": selectors.patient_view(node=node, record=_patient(node, draft.nhs_number)),
        "pharmacy": selectors.pharmacy_name(node=node, ods=draft.pharmacy_ods),
    }
    return render(request, "prescribing/draft_review.html", context)


@prescriber_view
def prescriptions_page(request: HttpRequest, node: Node) -> HttpResponse:
    context = {
        "node": node,
        "prescriptions": selectors.prescriptions_recent(node=node),
        **exchange_summary(node=node),
    }
    return render(request, "prescribing/prescriptions.html", context)


@prescriber_view
def prescription_page(request: HttpRequest, node: Node, prescription_id: str) -> HttpResponse:
    return _prescription_render(request, node, _prescription(node, prescription_id))


@prescriber_view
def prescription_cancel(request: HttpRequest, node: Node, prescription_id: str) -> HttpResponse:
    prescription = _prescription(node, prescription_id)
    if request.method != "POST":
        return redirect("prescription", node.slug, prescription.prescription_id)
    form = forms.CancelForm(request.POST)
    if form.is_valid():
        chosen, errors = form.cleaned_data["item"], []
        targets = [i for i in prescription.cancellable if chosen in ("", i.item_id)]
        if not targets:
            form.add_error("item", "Nothing chosen can be cancelled: it is no longer active")
        for item in targets:
            try:
                services.prescription_cancel(
                    node=node, request=item.record, reason_code=form.cleaned_data["reason"]
                )
            except FHIRError as exc:
                errors.append(f"{item.medicine}: {exc}")
        if targets and not errors:
            return redirect("prescription", node.slug, prescription.prescription_id)
        for error in errors:
            form.add_error("item", error)
        prescription = _prescription(node, prescription_id)  # some items may be cancelled now
    return _prescription_render(request, node, prescription, cancel_form=form)


@prescriber_view
def prescription_renominate(request: HttpRequest, node: Node, prescription_id: str) -> HttpResponse:
    prescription = _prescription(node, prescription_id)
    if request.method != "POST":  # the page as it is now, its form at hand (linked from the polled items)
        return _prescription_render(request, node, prescription)
    form = forms.RenominateForm(request.POST, auto_id="renominate_%s")
    if form.is_valid():
        record = _item_record(node, prescription, form.cleaned_data["item"])
        try:
            services.prescription_renominate(
                node=node, request=record, pharmacy_ods=form.cleaned_data["pharmacy"]
            )
        except FHIRError as exc:
            form.add_error("pharmacy", str(exc))
        else:
            return redirect("prescription", node.slug, prescription.prescription_id)
    return _prescription_render(request, node, prescription, renominate_form=form)


@prescriber_view
def token_page(request: HttpRequest, node: Node, prescription_id: str) -> HttpResponse:
    prescription = _prescription(node, prescription_id)
    context = {"node": node, "prescription": prescription, **token_images(prescription.prescription_id)}
    return render(request, "prescribing/token.html", context)


def _prescription_render(
    request: HttpRequest,
    node: Node,
    prescription: selectors.PrescriptionView,
    *,
    cancel_form: forms.CancelForm | None = None,
    renominate_form: forms.RenominateForm | None = None,
) -> HttpResponse:
    """The prescription page, with the cancel or re-nominate form as posted (errors and all)."""
    cancel_form = cancel_form or forms.CancelForm()
    renominate_form = renominate_form or forms.RenominateForm(auto_id="renominate_%s")
    context = {
        "node": node,
        "prescription": prescription,
        "cancel_form": cancel_form,
        "renominate_form": renominate_form,
        "form": renominate_form if renominate_form.errors else cancel_form,
        "pharmacies": selectors.directory_pharmacies(node=node),
        "can_act": can(request.member, Role.PRESCRIBER),
        # A poll from a page whose actions are out of date swaps the new ones in (htmx out of band).
        "oob": bool(request.htmx) and request.GET.get("actions") != prescription.actions_key,
    }
    return polled_render(request, "prescribing/prescription.html", "items", context, final=prescription.final)


def _matches(query: str, chosen: str) -> list:
    """The medicines found for the query, with the one already chosen kept among them."""
    matches = medicine_search(query=query) if query else []
    if chosen and all(m.code != chosen for m in matches):
        medicine = medicine_get(code=chosen)
        matches = [medicine, *matches] if medicine else matches
    return matches


def _route_field(exc: FHIRError) -> str | None:
    fields = {"route", "pharmacy", "course"}
    expression = next((e for issue in exc.issues for e in issue.expression), "")
    return expression if expression in fields else None


def _patient(node: Node, nhs_number: str) -> Resource:
    record = patients.patient_find(node=node, nhs_number=nhs_number)
    if record is None:
        raise Http404("No such patient")
    return record


def _draft(node: Node, token: uuid.UUID) -> PrescriptionDraft:
    return get_object_or_404(PrescriptionDraft, node=node, token=token)


def _prescription(node: Node, prescription_id: str) -> selectors.PrescriptionView:
    prescription = selectors.prescription_view(node=node, prescription_id=prescription_id)
    if prescription is None:
        raise Http404("No such prescription")
    return prescription


def _item_record(node: Node, prescription: selectors.PrescriptionView, item: str) -> Resource:
    record = request_for_item(node=node, item=item)
    if record is None or all(i.record.pk != record.pk for i in prescription.items):
        raise Http404("No such item")
    return record
