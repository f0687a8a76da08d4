"""Reading a dm+d release folder (NHSBSA's XML files), streaming, one record at a time."""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

# The files the catalogue reads, with the root element each must have.
ROOTS = {
    "lookup": "LOOKUP",
    "vtm": "VIRTUAL_THERAPEUTIC_MOIETIES",
    "vmp": "VIRTUAL_MED_PRODUCTS",
    "amp": "ACTUAL_MEDICINAL_PRODUCTS",
    "vmpp": "VIRTUAL_MED_PRODUCT_PACK",
    "ampp": "ACTUAL_MEDICINAL_PROD_PACKS",
}


class ReleaseError(Exception):
    """A release file is missing or cannot be read; the message names the file."""


@dataclass(frozen=True)
class Release:
    path: Path
    files: dict[str, Path]
    name: str
    date: date | None
    fingerprint: str


def release_open(path: Path) -> Release:
    """Find the release's files (one of each kind) and fingerprint their contents."""
    if not path.is_dir():
        raise ReleaseError(f"{path}: not a folder")
    files = {}
    for kind in ROOTS:
        pattern = f"f_{kind}2_*.xml"
        found = sorted(path.glob(pattern))
        if len(found) != 1:
            problem = "missing" if not found else f"{len(found)} files match, expected one"
            raise ReleaseError(f"{pattern}: {problem} in {path}")
        files[kind] = found[0]
    name = files["vmp"].stem.rpartition("_")[2]
    return Release(path=path, files=files, name=name, date=_release_date(name), fingerprint=_digest(files))


def records(path: Path, kind: str, tags: set[str]) -> Iterator[tuple[str, str, dict[str, str]]]:
    """Yield (section, tag, fields) for each element named in tags, freeing each once read."""
    stack: list[ET.Element] = []
    inside = 0  # how many of the open elements are records
    try:
        for event, element in ET.iterparse(path, events=("start", "end")):
            if event == "start":
                if not stack and element.tag != ROOTS[kind]:
                    raise ReleaseError(f"{path.name}: root element <{element.tag}>, expected <{ROOTS[kind]}>")
                stack.append(element)
                inside += element.tag in tags
                continue
            stack.pop()
            if element.tag in tags:
                inside -= 1
                yield stack[-1].tag, element.tag, {child.tag: (child.text or "").strip() for child in element}
            if stack and not inside:
                stack[-1].remove(element)
    except ET.ParseError as error:
        raise ReleaseError(f"{path.name}: not well-formed XML ({error})") from None
    except OSError as error:
        raise ReleaseError(f"{path.name}: cannot be read ({error.strerror})") from None


def required(path: Path, tag: str, fields: dict[str, str], *names: str) -> list[str]:
    """Return the named fields of a record, or fail naming the first one missing."""
    for name in names:
        if not fields.get(name):
            ident = next(iter(fields.values()), "")
            raise ReleaseError(f"{path.name}: <{tag}> {ident} has no <{name}>")
    return [fields[name] for name in names]


def _release_date(name: str) -> date | None:
    """Return the date in a release suffix such as 3010419 (a digit, then ddmmyy)."""
    found = re.fullmatch(r"\d(\d\d)(\d\d)(\d\d)", name)
    if not found:
        return None
    day, month, year = (int(part) for part in found.groups())
    try:
        return date(2000 + year, month, day)
    except ValueError:
        return None


def _digest(files: dict[str, Path]) -> str:
    digest = hashlib.sha256()
    for kind, path in files.items():
        digest.update(f"{kind}:{path.name}\n".encode())
        try:
            with path.open("rb") as stream:
                while chunk := stream.read(1 << 20):
                    digest.update(chunk)
        except OSError as error:
            raise ReleaseError(f"{path.name}: cannot be read ({error.strerror})") from None
    return digest.hexdigest()
