"""This node as a subscriber: asking a partner (the broker) to notify it, and asking again."""

from __future__ import annotations

from urllib.parse import urlencode

from exchange.models import Message, Partner
from exchange.services import message_enqueue
from exchange.subscriptions import BACKPORT, FILTER_CRITERIA, HEARTBEAT_PERIOD, PAYLOAD_CONTENT
from fhirserver import jsonio
from fhirserver.errors import FHIRError
from nodes.models import Node


def subscribe(
    *,
    node: Node,
    partner: Partner,
    topic: str,
    filters: list[str],
    content: str,
    endpoint: str,
    header: str = "",
    heartbeat_seconds: int = 0,
) -> Message:
    """Ask the partner for a topic-based subscription, through the outbox; asking again while
    it is there (same endpoint and topic) changes nothing."""
    channel: dict = {
        "type": "rest-hook",
        "endpoint": endpoint,
        "payload": "application/fhir+json",
        "_payload": {"extension": [{"url": PAYLOAD_CONTENT, "valueCode": content}]},
        **({"header": [header]} if header else {}),
    }
    if heartbeat_seconds:
        channel["extension"] = [{"url": HEARTBEAT_PERIOD, "valueUnsignedInt": heartbeat_seconds}]
    subscription = {
        "resourceType": "Subscription",
        "meta": {"profile": [BACKPORT + "backport-subscription"]},
        "status": "requested",
        "reason": f"{node.name} learns of what concerns it",
        "criteria": topic,
        "_criteria": {"extension": [{"url": FILTER_CRITERIA, "valueString": f} for f in filters]},
        "channel": channel,
    }
    return message_enqueue(
        node=node,
        partner=partner,
        key=f"subscribe-{partner.ods_code}",
        kind="subscribe",
        method="POST",
        url=f"{partner.fhir_base}/Subscription",
        body=jsonio.dumps(subscription),
        headers={"If-None-Exist": urlencode([("url", endpoint), ("criteria:exact", topic)])},
        on_success="exchange.subscribing.subscribed",
        context={"filters": filters},
    )


def subscribed(*, message: Message, answer) -> None:
    """The partner holds the subscription: if it was there already but off, in error or with
    other filters, ask for it again as this node wants it now (PUT, If-Match)."""
    try:
        current = jsonio.loads(answer.body)
    except jsonio.JSONError as exc:
        raise FHIRError(
            502, "invalid", "The partner answered the subscription with something not JSON."
        ) from exc
    wanted = jsonio.loads(message.body)
    if current.get("status") in ("requested", "active") and current.get("_criteria") == wanted["_criteria"]:
        return
    message_enqueue(
        node=message.node,
        partner=message.partner,
        key=message.key,
        kind="subscribe.again",
        method="PUT",
        url=f"{message.partner.fhir_base}/Subscription/{current['id']}",
        body=jsonio.dumps({**wanted, "id": current["id"], "status": "requested"}),
        headers={"If-Match": f'W/"{current["meta"]["versionId"]}"'},
    )
