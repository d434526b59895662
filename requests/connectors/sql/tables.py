"""The tables a store map names, as the SQL connector's lookups read them: only those tables, and
only their columns, read once per connector and shared by the connectors of a process for
REFLECTION_TTL seconds. (The erasure reads its tables again inside its transaction, with each
column's nullability: requests.connectors.sql.erase.)
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql import sqltypes

from requests.connectors.sql import statements
from requests.connectors.sql.connection import SqlConnection
from requests.engine.store import PermanentStoreError
from requests.engine.storemap import Collection, StoreMap

# Columns read from a store, shared by the connectors of one process: (url, schema, table) ->
# (read at, columns, case-blind columns). Each job builds new connectors; reading three tables
# costs tens of milliseconds, a large share of a small request. A minute keeps schema changes
# visible soon enough while a busy worker reads each table about once a minute.
REFLECTION_TTL = 60.0
_REFLECTED: dict[tuple, tuple[float, list, set]] = {}


def as_stored(family: str, column_type: Any) -> Any:
    """How the connector reads and binds a column. SQLite has no date type: a DATE or TIMESTAMP
    column holds the text the application wrote ('2024-01-06 10:00:00', with or without
    fractions), so it is read and bound as that text: a key holding a time then finds its row
    again (the parsed value binds back with fractions and matches nothing), and an odd value
    never fails a lookup."""
    if family == "sqlite" and isinstance(
        column_type, sqltypes.Date | sqltypes.DateTime | sqltypes.Time
    ):
        return sa.String()
    return column_type


class SqlTables(SqlConnection):
    """Tables and columns by collection, for lookups, checks and scans."""

    def __init__(self, url: str, store_map: StoreMap, **kwargs: Any) -> None:
        super().__init__(url, store_map, **kwargs)
        self._tables: dict[tuple[str | None, str], sa.Table] = {}
        self._case_insensitive: dict[tuple[str | None, str], set[str]] = {}

    def _table(
        self, collection: Collection, conn: Connection | None = None, *, fresh: bool = False
    ) -> sa.Table:
        """The collection's table with its columns, read once per connector (`fresh`: again).

        What was read is shared by the connectors of one worker process for REFLECTION_TTL
        seconds (see `_REFLECTED`), so a column added a minute ago is in the person's copy while
        a busy worker does not read the same tables again for every job.
        """
        key = (collection.schema_name, collection.physical_name)
        table = self._tables.get(key)
        if table is not None and not fresh:
            return table
        shared_key = (str(self._url), *key)
        cached = None if fresh else _REFLECTED.get(shared_key)
        if cached is not None and time.monotonic() - cached[0] < REFLECTION_TTL:
            columns, case_blind = cached[1], cached[2]
        else:
            doing = f"reading the table of collection {collection.name}"
            if conn is None:
                with self._connection(doing) as own:
                    return self._table(collection, own, fresh=fresh)
            columns, case_blind = self._reflect(conn, collection, doing)
            _REFLECTED[shared_key] = (time.monotonic(), columns, case_blind)
        table = sa.Table(
            collection.physical_name,
            sa.MetaData(),
            *[sa.Column(name, kind) for name, kind in columns],
            schema=collection.schema_name,
        )
        self._case_insensitive[key] = case_blind
        self._tables[key] = table
        return table

    def _reflect(self, conn: Connection, collection: Collection, doing: str):
        try:
            # Only the columns: what a lookup selects and how its values bind. Full reflection
            # (keys, indexes, and every table a foreign key leads to) would triple a cold
            # search's time for nothing it uses.
            found = sa.inspect(conn).get_columns(
                collection.physical_name, schema=collection.schema_name
            )
            if not found:
                raise sa.exc.NoSuchTableError(collection.physical_name)
            columns = [(c["name"], as_stored(self.family, c["type"])) for c in found]
            case_blind = set()
            if self.family == "mysql":
                case_blind = self._mysql_ci_columns(conn, collection)
        except sa.exc.NoSuchTableError:
            raise PermanentStoreError(
                f"collection {collection.name}: table {collection.physical_name!r} not found"
                + self._table_hint(conn, collection)
            ) from None
        except sa.exc.DBAPIError as exc:
            raise self._error(exc, doing) from None
        return columns, case_blind

    def _forget(self, table: sa.Table) -> None:
        """Drop what is known of a table whose lookup failed: it may have changed."""
        key = (table.schema, table.name)
        self._tables.pop(key, None)
        _REFLECTED.pop((str(self._url), *key), None)

    def _table_hint(self, conn: Connection, collection: Collection) -> str:
        try:
            names = sa.inspect(conn).get_table_names(schema=collection.schema_name)
        except Exception:
            return ""
        wanted = collection.physical_name.lower()
        close = [n for n in names if n.lower() == wanted]
        return f" (did you mean {close[0]!r}? names are case-sensitive)" if close else ""

    def _mysql_ci_columns(self, conn: Connection, collection: Collection) -> set[str]:
        rows = conn.execute(
            statements.mysql_collations(),
            {"schema": collection.schema_name, "table": collection.physical_name},
        )
        return {name for name, collation in rows if collation and collation.endswith("_ci")}

    def _column(self, table: sa.Table, collection: Collection, field_name: str) -> sa.Column:
        try:
            return table.c[field_name]
        except KeyError:
            raise PermanentStoreError(
                f"collection {collection.name}: column {field_name!r} not found in table "
                f"{collection.physical_name!r}"
            ) from None
