"""The SQL connector's checks: does the store answer and hold what the map names, and does each
email or name column searched in lower case on a large table have an index that serves the
search; and the value scan of the suppression ledger's reapply, and discovery's draft of a map.

What the map itself makes a job refuse (a collection without a key, a loop of references) is
said by requests.engine.readiness for every kind of store, not here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from requests.connectors.sql import statements
from requests.connectors.sql.schema import read_schema
from requests.connectors.sql.tables import SqlTables
from requests.engine.discovery import draft_map
from requests.engine.store import CheckResult, PermanentStoreError, StoreError
from requests.engine.storemap import Collection, Match, StoreMap

# Rows from which a search that no index serves earns a warning (a scan of a smaller table costs
# nothing worth one). Counted up to this many, never further.
LARGE_TABLE_ROWS = 10_000


class SqlChecks(SqlTables):
    """check(), scan_values() and describe() (see the module docstring)."""

    def scan_values(
        self, collection: Collection, field_name: str, *, batch: int
    ) -> Iterator[list[Any]]:
        doing = f"listing {collection.name}.{field_name}"
        column = self._column(self._table(collection), collection, field_name)
        statement = statements.column_values(column)
        with self._connection(doing) as conn:
            try:
                result = conn.execution_options(stream_results=True, yield_per=batch).execute(
                    statement
                )
                for chunk in result.partitions(batch):
                    yield [row[0] for row in chunk]
            except sa.exc.DBAPIError as exc:
                raise self._error(exc, doing) from None

    def check(self) -> CheckResult:
        try:
            with self._connection("connecting") as conn:
                try:
                    conn.exec_driver_sql("SELECT 1").close()
                except sa.exc.DBAPIError as exc:
                    raise self._error(exc, "connecting") from None
                problems: list[str] = []
                warnings: list[str] = []
                for collection in self.store_map.collections.values():
                    try:
                        table = self._table(collection, conn, fresh=True)
                    except PermanentStoreError as exc:
                        problems.append(str(exc))
                        continue
                    names = [*collection.key, *collection.fields]
                    for name in dict.fromkeys(names):
                        if name not in table.c:
                            problems.append(
                                f"collection {collection.name}: column {name!r} not found in "
                                f"table {collection.physical_name!r}"
                            )
                    warnings.extend(self._index_warnings(conn, collection, table))
        except StoreError as exc:
            return CheckResult(False, str(exc))
        if problems:
            return CheckResult(
                False, f"{self.where} answers, but the map names what it lacks", problems, warnings
            )
        count = len(self.store_map.collections)
        return CheckResult(
            True, f"{self.where} answers; {count} collection(s) match the map", [], warnings
        )

    def _index_warnings(
        self, conn: Connection, collection: Collection, table: sa.Table
    ) -> list[str]:
        """Email and name columns are searched in lower case (requests.connectors.sql.find): on a
        large table, each search without an index that serves it reads the whole table."""
        searched = [
            name
            for name, spec in collection.fields.items()
            if spec.identity in ("email", "name") and spec.match == Match.AUTO and name in table.c
        ]
        if not searched:
            return []
        try:
            rows = conn.execute(statements.rows_up_to(table, LARGE_TABLE_ROWS)).scalar() or 0
            if rows < LARGE_TABLE_ROWS:
                return []
            indexes = sa.inspect(conn).get_indexes(table.name, schema=table.schema)
        except sa.exc.DBAPIError:
            return []  # the check's other findings stand; this one is advice
        where = f"table {collection.physical_name}"
        case_blind = self._case_insensitive.get(
            (collection.schema_name, collection.physical_name), set()
        )
        out = []
        for name in searched:
            if self.family == "mysql" and name in case_blind:
                # Its collation ignores case: searched as the column itself, which an index on
                # the column (first) serves.
                if not any((ix.get("column_names") or [None])[0] == name for ix in indexes):
                    out.append(
                        f"{where}: {name} is searched in lower case on {LARGE_TABLE_ROWS:,} rows "
                        f"or more, and no index starts with {name}, so every search reads the "
                        f"whole table; create an index on {collection.physical_name} ({name})"
                    )
                continue
            if self.family == "postgresql":
                if any(_indexes_lower(ix, name) for ix in indexes):
                    continue
                advice = (
                    f"create one (CREATE INDEX ON {collection.physical_name} (lower({name}))) or "
                    "mark the field `match: exact` if it holds lower-case values"
                )
            elif self.family == "mysql":
                advice = (
                    "give the column a collation that ignores case (such as utf8mb4_general_ci) "
                    "and an index, or mark the field `match: exact` if it holds lower-case values"
                )
            else:  # SQLite compares through the portal's own lower(), which no index serves
                advice = (
                    "mark the field `match: exact` if it holds lower-case values, and index the "
                    "column"
                )
            out.append(
                f"{where}: {name} is searched as lower({name}) on {LARGE_TABLE_ROWS:,} rows or "
                f"more, and no index serves that, so every search reads the whole table; {advice}"
            )
        return out

    def describe(self, *, progress=None) -> StoreMap:
        doing = "reading the schema"
        try:
            with self._connection(doing) as conn:
                tables = read_schema(
                    conn,
                    family=self.family,
                    schemas=self.options.get("schemas"),
                    progress=progress,
                )
                return draft_map(tables)
        except sa.exc.DBAPIError as exc:
            raise self._error(exc, doing) from None


def _indexes_lower(index: Any, name: str) -> bool:
    """Whether a PostgreSQL index is on lower(name). PostgreSQL writes the expression back in
    its own words: `lower((email)::text)` for a varchar column, `lower("E-mail")` when quoted."""
    for expression in index.get("expressions") or []:
        text = re.sub(r"::[a-z ]+", "", str(expression)).replace('"', "").replace(" ", "")
        bare = name.replace(" ", "")
        if text in (f"lower({bare})", f"lower(({bare}))"):
            return True
    return False
