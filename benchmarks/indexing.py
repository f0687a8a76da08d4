"""Time what indexing costs a write: the index rows of every search parameter for one resource,
in process (no database), for resources of the kinds a node writes most.

.venv/bin/python benchmarks/indexing.py [-n 2000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import django

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dmed.settings")
django.setup()

from fhirserver.indexing import index_rows  # noqa: E402
from fhirserver.models import Resource  # noqa: E402
from fhirserver.searchparams import params_for  # noqa: E402
from tests.eps import example_files, medication_resources  # noqa: E402

AUDIT_EVENT = {
    "resourceType": "AuditEvent",
    "type": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110112"},
    "subtype": [{"system": "http://hl7.org/fhir/restful-interaction", "code": "read"}],
    "action": "R",
    "recorded": "2026-12-04T10:00:00.000+00:00",
    "outcome": "0",
    "agent": [
        {
            "who": {"identifier": {"system": "https://dmed.example/Id/api-client", "value": "c1"}},
            "requestor": True,
            "network": {"address": "127.0.0.1", "type": "2"},
        }
    ],
    "source": {"observer": {"identifier": {"value": "Y9S7T"}}},
    "entity": [{"what": {"reference": "MedicationRequest/1"}}],
}
OBSERVATION = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "15074-8", "display": "Glucose"}]},
    "subject": {"reference": "Patient/1"},
    "effectiveDateTime": "2026-11-20T09:30:00Z",
    "valueQuantity": {
        "value": 6.3,
        "unit": "mmol/L",
        "system": "http://unitsofmeasure.org",
        "code": "mmol/L",
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=2000)
    args = parser.parse_args()
    eps = [r for path in example_files() for r in medication_resources(path)]
    samples = {
        "MedicationRequest (EPS)": next(r for r in eps if r["resourceType"] == "MedicationRequest"),
        "MedicationDispense (EPS)": next(r for r in eps if r["resourceType"] == "MedicationDispense"),
        "AuditEvent (a read)": AUDIT_EVENT,
        "Observation": OBSERVATION,
    }
    for name, content in samples.items():
        record = Resource(
            pk=1, node_id=1, resource_type=content["resourceType"], logical_id="x", version_id=1
        )
        for _ in range(200):  # compile and warm up
            index_rows(record, content)
        started = time.perf_counter()
        for _ in range(args.n):
            rows = index_rows(record, content)
        each = (time.perf_counter() - started) * 1000 / args.n
        params = len(params_for(content["resourceType"]))
        print(f"{name:26} {each:6.3f} ms   {len(rows):3} index rows   {params:3} parameters")


if __name__ == "__main__":
    main()
