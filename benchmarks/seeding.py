"""What the load, soak and in-process benchmarks store before they measure (in a set-up Django)."""

from __future__ import annotations

from fhirserver.services import resource_create
from tests.factories import make_medication_request, make_node


def store_requests(node_slug: str, patients: int, per_patient: int) -> dict:
    """Store a broker node (its API client's token `<slug>-token`, every scope) and, per patient,
    EPS-shaped MedicationRequests (one in five completed, the rest active), through the services
    the API calls. Return their ids, item identifiers and patients, and the template the creates
    post (its identifier value "@UUID@", each create's own)."""
    node = make_node(node_slug, "broker", "B3NCH", "Benchmark")
    ids, items, refs = [], [], []
    for p in range(patients):
        refs.append(f"Patient/{node_slug}-{p}")
        for k in range(per_patient):
            content = make_medication_request(
                subject={"reference": refs[-1]}, status="completed" if k % 5 == 4 else "active"
            )
            stored = resource_create(node=node, resource_type="MedicationRequest", content=content)
            ids.append(stored.resource.logical_id)
            items.append(content["identifier"][0]["value"])
    template = make_medication_request()
    template["identifier"][0]["value"] = "@UUID@"
    return {"ids": ids, "items": items, "patients": refs, "template": template}
