"""What discovery reads of an SQL store: tables, keys, foreign keys and a bounded sample of text
values (requests.engine.discovery drafts the map from them)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql import sqltypes

from requests.connectors.sql import statements
from requests.engine.discovery import (
    SAMPLE_ROWS,
    ColumnInfo,
    ForeignKeyInfo,
    TableInfo,
)

log = logging.getLogger(__name__)


def _family(column_type: Any) -> str:
    if isinstance(column_type, sqltypes.Integer):
        return "integer"
    if isinstance(column_type, sqltypes.String):
        return "text"
    if isinstance(column_type, sqltypes.Uuid):
        return "uuid"
    if isinstance(column_type, sqltypes.Numeric):
        return "number"
    if isinstance(column_type, sqltypes.Date | sqltypes.DateTime | sqltypes.Time):
        return "time"
    return "other"


def _pg_partitions(conn: Connection, schema: str | None) -> set[str]:
    """Partitions of partitioned tables: discovery treats the parent as the table."""
    rows = conn.execute(statements.pg_partitions(), {"schema": schema})
    return {name for (name,) in rows}


def read_schema(
    conn: Connection,
    *,
    family: str,
    schemas: Sequence[str] | None = None,
    progress=None,
) -> list:
    """Tables, keys, foreign keys and a bounded sample of text values, as discovery reads them."""
    inspector = sa.inspect(conn)
    pending: list[tuple[str | None, str]] = []
    wanted: list[str | None] = [*schemas] if schemas else [None]
    for schema in wanted:
        names = inspector.get_table_names(schema=schema)
        if family == "postgresql":
            partitions = _pg_partitions(conn, schema)
            names = [n for n in names if n not in partitions]
        pending.extend((schema, name) for name in sorted(names))

    tables = []
    by_schema: dict[str | None, list[str]] = {}
    for schema, name in pending:
        by_schema.setdefault(schema, []).append(name)
    # One catalogue query per kind of fact and schema (not per table): large schemas stay quick.
    facts: dict[str | None, tuple[Any, Any, Any, Any]] = {}
    for schema, names in by_schema.items():
        facts[schema] = (
            inspector.get_multi_columns(schema=schema, filter_names=names),
            inspector.get_multi_pk_constraint(schema=schema, filter_names=names),
            inspector.get_multi_foreign_keys(schema=schema, filter_names=names),
            inspector.get_multi_unique_constraints(schema=schema, filter_names=names),
        )
    for done, (schema, name) in enumerate(pending, start=1):
        columns_of, pks, fks, uniques = facts[schema]
        key = (schema, name)
        columns = [
            ColumnInfo(c["name"], _family(c["type"]), bool(c.get("nullable", True)))
            for c in columns_of.get(key, [])
        ]
        table = TableInfo(
            name=name,
            schema=schema,
            columns=columns,
            primary_key=list((pks.get(key) or {}).get("constrained_columns") or []),
            foreign_keys=[
                ForeignKeyInfo(
                    columns=list(fk["constrained_columns"]),
                    table=fk["referred_table"],
                    referred_columns=list(fk["referred_columns"]),
                    schema=fk.get("referred_schema"),
                )
                for fk in fks.get(key, [])
            ],
            unique=[list(u["column_names"]) for u in uniques.get(key, [])],
        )
        _sample(conn, table, SAMPLE_ROWS)
        tables.append(table)
        if progress is not None:
            progress(done, len(pending), name)
    return tables


def _sample(conn: Connection, table: TableInfo, rows: int) -> None:
    """The first rows' text values (cut to 100 characters), to recognise emails and phones."""
    text_columns = [c for c in table.columns if c.family == "text"]
    if not text_columns:
        return
    query = statements.sample(table.name, table.schema, [c.name for c in text_columns], rows)
    try:
        result = conn.execute(query)
        for row in result:
            for column, value in zip(text_columns, row, strict=True):
                if isinstance(value, str):
                    column.samples.append(value)
    except sa.exc.DBAPIError:
        # A table the user may not read is still described; its content just is not sampled.
        log.info("discovery could not sample a table; continuing without its content")
