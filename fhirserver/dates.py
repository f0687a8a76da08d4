"""FHIR dates as ranges: a partial date means every instant it covers."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

# The far ends of time, for open periods; kept inside every database's range.
EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, tzinfo=UTC)

_DATE = re.compile(
    r"^(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?P<fraction>\.\d+)?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


def date_range(value: str) -> tuple[datetime, datetime] | None:
    """Return the half-open [low, high) range a FHIR date, dateTime or instant covers, or None."""
    match = _DATE.match(value.strip())
    if match is None:
        return None
    parts = match.groupdict()
    year = int(parts["year"])
    try:
        if parts["month"] is None:
            low = datetime(year, 1, 1, tzinfo=UTC)
            return low, _add_months(low, 12)
        month = int(parts["month"])
        if parts["day"] is None:
            low = datetime(year, month, 1, tzinfo=UTC)
            return low, _add_months(low, 1)
        day = int(parts["day"])
        if parts["hour"] is None:
            low = datetime(year, month, day, tzinfo=UTC)
            return low, low + timedelta(days=1)
        tz = _zone(parts["tz"])
        hour, minute = int(parts["hour"]), int(parts["minute"])
        if parts["second"] is None:
            low = datetime(year, month, day, hour, minute, tzinfo=tz)
            return low.astimezone(UTC), (low + timedelta(minutes=1)).astimezone(UTC)
        fraction = parts["fraction"] or ""
        microsecond = int((fraction[1:] + "000000")[:6]) if fraction else 0
        low = datetime(year, month, day, hour, minute, int(parts["second"]), microsecond, tzinfo=tz)
        step = (
            timedelta(microseconds=10 ** (6 - min(len(fraction) - 1, 6)))
            if fraction
            else timedelta(seconds=1)
        )
        return low.astimezone(UTC), (low + step).astimezone(UTC)
    except ValueError:
        return None


def _zone(text: str | None):
    if not text or text == "Z":
        return UTC
    sign = 1 if text[0] == "+" else -1
    hours, minutes = int(text[1:3]), int(text[4:6])
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _add_months(moment: datetime, months: int) -> datetime:
    month_index = moment.month - 1 + months
    return moment.replace(year=moment.year + month_index // 12, month=month_index % 12 + 1)
