"""Searches of a common shape, run as SQL the ORM compiled once per process.

Building a search's queryset and compiling it costs the ORM about 1.5 ms on this project's 2-core
machines, where the database answers a search by identifier in a tenth of that. A search's shape
is its parameters with each run of letters, digits and hyphens in their values replaced by a mark:
`identifier=https://fhir.nhs.uk/Id/prescription-order-item-number|A1B2-C3` and `…|D4E5-F6` share
one. The first search of a shape builds its query twice through the ORM (search.py's own code),
each time with other stand-ins for the runs, and keeps the SQL when the two compile alike and each
SQL parameter is the same constant in both or the same text around the same stand-ins. A value the
search transforms (lowercased, parsed as a date or a number, split on a character its run holds)
loses its stand-ins, and the shape is then never planned. Later searches of a kept shape put their
own runs where the stand-ins were, and run the SQL.

Which searches may use a plan is search.py's to say (`_planned`): those whose query depends on
nothing but the shape.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model, QuerySet

from fhirserver import prepared
from fhirserver.errors import FHIRError

MARK = "\x01"  # a run's place in a shape (search.py plans only printable values)
RUN = re.compile(r"[A-Za-z0-9-]+")
SIZE = 512  # shapes kept per process; the cache starts again when it is full
UNPLANNED = None
_UNSEEN = object()

# A kept plan: its SQL, and each SQL parameter as ("constant", value) or ("text", pieces), the
# pieces being literal strings and the indexes of the runs that go between them.
Plan = tuple[str, list[tuple[str, object]]]


def shape(value: str) -> tuple[str, list[str]]:
    """A value's shape and its runs."""
    return RUN.sub(MARK, value), RUN.findall(value)


class Plans:
    """The kept plans of one kind of query, per database vendor and shape."""

    def __init__(self, model: type[Model]) -> None:
        self.model = model
        self._plans: dict[tuple, Plan | None] = {}

    def rows(
        self, key: tuple, values: list[str], build: Callable[[list[str]], QuerySet]
    ) -> list[Model] | None:
        """Run the query that build(values) makes, by its kept plan; None when its shape cannot be
        planned (build's query must then be run as it is). `key` holds whatever else the query
        depends on (the node and its search revision, the names, the page size)."""
        connection = connections[DEFAULT_DB_ALIAS]
        shapes, runs = [], []
        for value in values:
            form, found = shape(value)
            shapes.append(form)
            runs.extend(found)
        full_key = (connection.vendor, key, tuple(shapes))
        plan = self._plans.get(full_key, _UNSEEN)
        if plan is _UNSEEN:
            plan = self._plan(shapes, build)
            if len(self._plans) >= SIZE:
                self._plans.clear()
            self._plans[full_key] = plan
        if plan is UNPLANNED:
            return None
        sql, parameters = plan
        filled = [
            value if kind == "constant" else "".join(p if isinstance(p, str) else runs[p] for p in value)
            for kind, value in parameters
        ]
        with connection.cursor() as cursor:
            cursor.execute(sql, filled)
            return [prepared.from_row(self.model, row, connection) for row in cursor.fetchall()]

    def clear(self) -> None:
        self._plans.clear()

    def _plan(self, shapes: list[str], build: Callable[[list[str]], QuerySet]) -> Plan | None:
        compiled = []
        for tag in ("Sa", "Tb"):
            nonce = secrets.token_hex(4)
            stand_ins: list[str] = []

            def stand_in(_, tag=tag, nonce=nonce, stand_ins=stand_ins) -> str:
                stand_ins.append(f"{tag}{len(stand_ins)}-X{nonce}")
                return stand_ins[-1]

            values = [re.sub(MARK, stand_in, form) for form in shapes]
            try:
                query = build(values).query
                sql, params = query.sql_with_params()
            except FHIRError:
                return UNPLANNED
            if not self._whole_rows(query):
                return UNPLANNED
            compiled.append((sql, params, stand_ins, nonce))
        (sql_a, params_a, ins_a, nonce_a), (sql_b, params_b, ins_b, nonce_b) = compiled
        if sql_a != sql_b or len(params_a) != len(params_b):
            return UNPLANNED
        parameters: list[tuple[str, object]] = []
        for a, b in zip(params_a, params_b, strict=True):
            if isinstance(a, str) and isinstance(b, str):
                pieces_a, pieces_b = _pieces(a, ins_a), _pieces(b, ins_b)
                if pieces_a != pieces_b or any(
                    isinstance(p, str) and (nonce_a in p or nonce_b in p) for p in pieces_a
                ):
                    return UNPLANNED
                if all(isinstance(p, str) for p in pieces_a):
                    parameters.append(("constant", a))
                else:
                    parameters.append(("text", tuple(pieces_a)))
            elif type(a) is type(b) and a == b:
                parameters.append(("constant", a))
            else:
                return UNPLANNED
        return sql_a, parameters

    def _whole_rows(self, query) -> bool:
        """Whether the query selects every concrete column of the model, in order, and nothing else."""
        return (
            query.model is self.model
            and query.default_cols
            and not query.annotation_select
            and not query.extra_select
            and not query.select_related
            and query.deferred_loading == (frozenset(), True)
        )


def _pieces(text: str, stand_ins: list[str]) -> list:
    """Split text into literals and the indexes of the stand-ins in it."""
    if not stand_ins:
        return [text]
    pattern = re.compile("|".join(re.escape(s) for s in sorted(stand_ins, key=len, reverse=True)))
    pieces: list = []
    at = 0
    for found in pattern.finditer(text):
        if found.start() > at:
            pieces.append(text[at : found.start()])
        pieces.append(stand_ins.index(found.group()))
        at = found.end()
    if at < len(text) or not pieces:
        pieces.append(text[at:])
    return pieces
