"""The statements every FHIR request runs, as SQL written once per process.

The ORM compiles a query on every call: on this project's 2-core machines about 0.4 ms for a node
by slug, 0.8 ms for a resource by id (most of a read by id) and 0.35 ms for an INSERT of one row,
where the database itself answers in a few hundredths of a millisecond. These few statements keep
their SQL, and what the ORM would do with each value on the way in (`get_db_prep_save`) and out
(the columns' converters: SQLite's text to datetime, integer to bool); a lookup builds its model
with `from_db`, as a queryset does. Everything else goes through the ORM.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model, QuerySet

from fhirserver.models import Resource, ResourceVersion
from nodes.models import Node


class Lookup:
    """SELECT every concrete column of `model` WHERE each of `by` equals a parameter; at most one
    row, so `by` must be unique together."""

    def __init__(self, model: type[Model], by: tuple[str, ...]) -> None:
        self.model, self.by = model, by
        self.fields = model._meta.concrete_fields
        self._sql: dict[str, str] = {}  # vendor -> its SELECT

    def one(self, *values) -> Model | None:
        connection = connections[DEFAULT_DB_ALIAS]
        sql = self._sql.get(connection.vendor) or self._compile(connection)
        with connection.cursor() as cursor:
            cursor.execute(sql, values)
            row = cursor.fetchone()
        return None if row is None else from_row(self.model, row, connection)

    def _compile(self, connection) -> str:
        quote = connection.ops.quote_name
        meta = self.model._meta
        columns = ", ".join(quote(field.column) for field in self.fields)
        where = " AND ".join(f"{quote(meta.get_field(name).column)} = %s" for name in self.by)
        sql = f"SELECT {columns} FROM {quote(meta.db_table)} WHERE {where}"
        self._sql[connection.vendor] = sql
        return sql


# (vendor, model) -> its concrete columns' attribute names, and each column's converters
_COLUMNS: dict[tuple[str, type], tuple[list[str], list]] = {}


def from_row(model: type[Model], row: tuple, connection) -> Model:
    """The model instance of a row holding every concrete column in order, its values converted
    as a queryset converts them, built with `from_db` as a queryset builds it."""
    key = (connection.vendor, model)
    if key not in _COLUMNS:
        meta = model._meta
        converters = []
        for field in meta.concrete_fields:
            column = field.get_col(meta.db_table)
            found = connection.ops.get_db_converters(column) + field.get_db_converters(connection)
            converters.append((column, found))
        _COLUMNS[key] = ([field.attname for field in meta.concrete_fields], converters)
    names, converters = _COLUMNS[key]
    values = [_converted(value, column, connection) for value, column in zip(row, converters, strict=True)]
    return model.from_db(DEFAULT_DB_ALIAS, names, values)


class Compiled:
    """An ORM query compiled once per process and database, then run with other values: `build`
    makes the queryset from its values, which must each become one SQL parameter, in order
    (checked when it is compiled). For a query on every request that yields plain values."""

    def __init__(self, build: Callable[..., QuerySet], *samples) -> None:
        self.build, self.samples = build, samples
        self._sql: dict[str, str] = {}

    def rows(self, *values) -> list[tuple]:
        connection = connections[DEFAULT_DB_ALIAS]
        sql = self._sql.get(connection.vendor)
        if sql is None:
            sql, params = self.build(*self.samples).query.sql_with_params()
            if list(params) != list(self.samples):
                raise ValueError(f"{sql} takes {params}, not the samples {self.samples} in order")
            self._sql[connection.vendor] = sql
        with connection.cursor() as cursor:
            cursor.execute(sql, values)
            return cursor.fetchall()


class Insert:
    """INSERT rows of `model` (every concrete column but its primary key): one, giving the instance
    its new key as `save()` of a new instance does, or many in few statements (there are no save
    signals here)."""

    def __init__(self, model: type[Model]) -> None:
        self.model = model
        self.fields = [field for field in model._meta.concrete_fields if not field.primary_key]
        self._sql: dict[str, str] = {}

    def save(self, instance: Model) -> None:
        connection = connections[DEFAULT_DB_ALIAS]
        sql = self._sql.get(connection.vendor) or self._compile(connection)
        with connection.cursor() as cursor:
            cursor.execute(
                f"{sql} RETURNING {connection.ops.quote_name(self.model._meta.pk.column)}",
                self._values(instance, connection),
            )
            instance.pk = cursor.fetchone()[0]
        _saved(instance)

    def save_many(self, instances: list[Model], *, by: tuple[str, ...] = ()) -> None:
        """INSERT the instances. With `by` (fields unique together), in one statement of many rows
        (ROWS_A_STATEMENT at most) that returns their keys, matched by those fields, as a database
        need not return the rows in the order they went in; without, by insert_rows, and their keys
        are not read back."""
        connection = connections[DEFAULT_DB_ALIAS]
        rows = [self._values(instance, connection) for instance in instances]
        if not by:
            insert_rows(connection, self.model, [field.column for field in self.fields], rows)
            for instance in instances:
                _saved(instance)
            return
        sql = self._sql.get(connection.vendor) or self._compile(connection)
        head, marks = sql.split(" VALUES ")
        meta = self.model._meta
        names = [meta.pk.attname, *(meta.get_field(name).attname for name in by)]
        returning = ", ".join(connection.ops.quote_name(meta.get_field(name).column) for name in names)
        keys = {}
        with connection.cursor() as cursor:
            for start in range(0, len(rows), ROWS_A_STATEMENT):
                chunk = rows[start : start + ROWS_A_STATEMENT]
                cursor.execute(
                    f"{head} VALUES {', '.join([marks] * len(chunk))} RETURNING {returning}",
                    [value for row in chunk for value in row],
                )
                keys.update((tuple(row[1:]), row[0]) for row in cursor.fetchall())
        for instance in instances:
            instance.pk = keys[tuple(getattr(instance, name) for name in names[1:])]
            _saved(instance)

    def _values(self, instance: Model, connection) -> list:
        return [field.get_db_prep_save(getattr(instance, field.attname), connection) for field in self.fields]

    def _compile(self, connection) -> str:
        quote = connection.ops.quote_name
        meta = self.model._meta
        columns = ", ".join(quote(field.column) for field in self.fields)
        marks = ", ".join(["%s"] * len(self.fields))
        sql = f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ({marks})"
        self._sql[connection.vendor] = sql
        return sql


ROWS_A_STATEMENT = 500  # SQLite takes up to 32,766 parameters in one statement


COPY_FROM = 50
_INSERTS: dict[tuple[str, str, tuple], str] = {}  # (vendor, table, columns) -> its INSERT


def insert_rows(connection, model: type[Model], columns: list[str] | tuple[str, ...], rows: list) -> None:
    """Insert plain rows (values ready for the database, in the order of `columns`) into the
    model's table: by executemany, one prepared statement on SQLite and one round trip on
    PostgreSQL (psycopg's pipeline); there, COPY_FROM rows or more by COPY, which parses no
    statement, where executemany sends one a row (the reads' AuditEvents, 20 rows each, 0.7 ms an
    event; a statement of many rows costs psycopg more to parse than the database to run)."""
    if not rows:
        return
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    names = ", ".join(quote(column) for column in columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and len(rows) >= COPY_FROM:
            with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        key = (connection.vendor, table, tuple(columns))
        if key not in _INSERTS:
            _INSERTS[key] = f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * len(columns))})"
        cursor.executemany(_INSERTS[key], rows)


def _saved(instance: Model) -> None:
    instance._state.adding = False
    instance._state.db = DEFAULT_DB_ALIAS


def _converted(value, column: tuple, connection):
    expression, converters = column
    for converter in converters:
        value = converter(value, expression, connection)
    return value


NODE_BY_SLUG = Lookup(Node, ("slug",))
RESOURCE_INSERT = Insert(Resource)
VERSION_INSERT = Insert(ResourceVersion)
RESOURCE_BY_ID = Lookup(Resource, ("node", "resource_type", "logical_id"))


def node_by_slug(slug: str) -> Node | None:
    return NODE_BY_SLUG.one(slug)


def resource_by_id(node: Node, resource_type: str, logical_id: str) -> Resource | None:
    """A node's resource by type and id (deleted or not), its `node` set to the one given."""
    record = RESOURCE_BY_ID.one(node.pk, resource_type, logical_id)
    if record is not None:
        record.node = node
    return record
