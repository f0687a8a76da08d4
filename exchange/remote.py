"""FHIR interactions with a partner, each sent through the outbox."""

from __future__ import annotations

import json
import logging
from urllib.parse import urlencode

from django.utils.module_loading import import_string

from exchange.models import Message, Partner
from exchange.services import message_enqueue
from fhirserver import jsonio
from fhirserver.errors import FHIRError
from nodes.models import Node

logger = logging.getLogger(__name__)


def partner_for(*, node: Node, ods_code: str) -> Partner:
    """Return the node's directory entry for an organisation; 422 when there is none."""
    partner = Partner.objects.filter(node=node, ods_code=ods_code).first()
    if partner is None:
        raise FHIRError(
            422, "business-rule", f"{node.name} has no directory entry for ODS code {ods_code!r}."
        )
    return partner


def broker_for(*, node: Node) -> Partner:
    """Return the node's message broker; 422 when its directory has none."""
    broker = Partner.objects.filter(node=node, role=Partner.Role.BROKER).first()
    if broker is None:
        raise FHIRError(422, "business-rule", f"{node.name} has no broker in its directory.")
    return broker


def remote_create(
    *,
    node: Node,
    partner: Partner,
    key: str,
    content: dict,
    identifier: tuple[str, str],
    kind: str,
    then: str = "",
    otherwise: str = "",
    context: dict | None = None,
) -> Message:
    """POST a resource to the partner, conditionally on its business identifier."""
    system, value = identifier
    return message_enqueue(
        node=node,
        partner=partner,
        key=key,
        kind=kind,
        method="POST",
        url=f"{partner.fhir_base}/{content['resourceType']}",
        body=jsonio.dumps(content),
        headers={"If-None-Exist": f"identifier={system}|{value}"},
        on_success=then,
        on_failure=otherwise,
        context=context,
    )


def remote_search(
    *,
    node: Node,
    partner: Partner,
    key: str,
    resource_type: str,
    params: list[tuple[str, str]],
    kind: str,
    on_success: str,
    on_failure: str = "",
    context: dict | None = None,
) -> Message:
    """GET a search at the partner; on_success gets the searchset."""
    return message_enqueue(
        node=node,
        partner=partner,
        key=key,
        kind=kind,
        method="GET",
        url=f"{partner.fhir_base}/{resource_type}?{urlencode(params)}",
        on_success=on_success,
        on_failure=on_failure,
        context=context,
    )


def remote_update(
    *,
    node: Node,
    partner: Partner,
    key: str,
    resource_type: str,
    identifier: tuple[str, str],
    changes: dict,
    kind: str,
    then: str = "",
    otherwise: str = "",
    create_missing: bool = False,
    context: dict | None = None,
) -> Message:
    """Change the partner's copy of a resource: GET it by identifier, then PUT it with If-Match
    (or, with create_missing and changes that make a whole resource, POST it if there is none).

    The PUT is queued when the GET returns, so a message queued now for the same key would
    overtake it: chain what must follow the change with `then` (called on the PUT's success);
    `otherwise` is called if either half fails for good (say, the partner refuses the change).
    """
    system, value = identifier
    return remote_search(
        node=node,
        partner=partner,
        key=key,
        resource_type=resource_type,
        params=[("identifier", f"{system}|{value}")],
        kind=f"{kind}.fetch",
        on_success="exchange.remote.put_changed",
        on_failure=otherwise,
        context={
            "changes": changes,
            "then": then,
            "otherwise": otherwise,
            "kind": kind,
            "create": create_missing,
            "identifier": [system, value],
            **(context or {}),
        },
    )


def put_changed(*, message: Message, answer) -> None:
    """Second half of remote_update: apply the changes to what was fetched and PUT it back."""
    found = entries(answer.body)
    if not found and message.context.get("create"):  # the changes are a whole resource
        remote_create(
            node=message.node,
            partner=message.partner,
            key=message.key,
            content=message.context["changes"],
            identifier=tuple(message.context["identifier"]),
            kind=message.context["kind"],
            then=message.context["then"],
            otherwise=message.context["otherwise"],
            context=message.context,
        )
        return
    if not found:
        raise FHIRError(404, "not-found", f"The partner has no resource at {message.url}.")
    current = found[0]
    changed = {**current, **message.context["changes"]}
    message_enqueue(
        node=message.node,
        partner=message.partner,
        key=message.key,
        kind=message.context["kind"],
        method="PUT",
        url=f"{message.partner.fhir_base}/{current['resourceType']}/{current['id']}",
        body=jsonio.dumps(changed),
        headers={"If-Match": f'W/"{current["meta"]["versionId"]}"'},
        on_success=message.context["then"],
        on_failure="exchange.remote.put_failed",
        context={**message.context, "fetch": message.url},
    )


# A copy that changed between the GET and the PUT (412) is fetched and changed again, this often.
REFETCHES = 3


def put_failed(*, message: Message, error: str, dead: bool) -> None:
    """Second half failed: on 412 start over from the GET; otherwise tell whoever asked."""
    context = message.context
    if dead and message.response_status == 412 and context.get("refetches", 0) < REFETCHES:
        message_enqueue(
            node=message.node,
            partner=message.partner,
            key=message.key,
            kind=f"{context['kind']}.fetch",
            method="GET",
            url=context["fetch"],
            on_success="exchange.remote.put_changed",
            on_failure=context["otherwise"],
            context={**context, "refetches": context.get("refetches", 0) + 1},
        )
    elif context.get("otherwise"):
        import_string(context["otherwise"])(message=message, error=error, dead=dead)


def entries(searchset_text: str) -> list[dict]:
    """Return the matched resources of a searchset Bundle's text."""
    bundle = _bundle(searchset_text)
    return [
        entry["resource"]
        for entry in bundle.get("entry", [])
        if entry.get("search", {}).get("mode", "match") == "match" and "resource" in entry
    ]


def next_page(searchset_text: str) -> str:
    """The URL of a searchset's next page: "" on the last, and when the link is malformed (said in
    the log: the page's own entries are still good)."""
    links = _bundle(searchset_text).get("link")
    for link in links if isinstance(links, list) else []:
        if isinstance(link, dict) and link.get("relation") == "next":
            if isinstance(link.get("url"), str):
                return link["url"]
            logger.warning("a searchset's next link has no URL: %r", link)
    return ""


def _bundle(searchset_text: str) -> dict:
    try:
        bundle = json.loads(searchset_text)
    except ValueError as exc:
        raise FHIRError(502, "invalid", "The partner answered with something other than JSON.") from exc
    if not isinstance(bundle, dict):
        raise FHIRError(502, "invalid", "The partner's answer is not a Bundle.")
    return bundle
