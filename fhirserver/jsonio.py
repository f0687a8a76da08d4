"""JSON in and out without losing FHIR decimals' precision (1.50 stays 1.50)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import simplejson

RawJSON = simplejson.RawJSON


class JSONError(ValueError):
    """The text is not JSON; carries the position of the first problem."""


def loads(data: bytes | str) -> Any:
    """Parse JSON, keeping decimals exact."""
    try:
        return simplejson.loads(data, use_decimal=True)
    except simplejson.JSONDecodeError as exc:
        raise JSONError(f"{exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    except UnicodeDecodeError as exc:
        raise JSONError(f"the body is not UTF-8: {exc.reason}") from exc


def dumps(obj: Any) -> str:
    """Serialise compactly; Decimal keeps its digits and RawJSON is spliced in as it is."""
    return simplejson.dumps(obj, use_decimal=True, separators=(",", ":"), ensure_ascii=False)


__all__ = ["Decimal", "JSONError", "RawJSON", "dumps", "loads"]
