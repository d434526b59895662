"""The SQL connector's checks: does the store answer and hold what the map names, and does each
email column searched in lower case have an index for it; and the value scan of the suppression
ledger's reapply, and discovery's draft of a map.
"""

from __future__ import annotations

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

# Rows (PostgreSQL's estimate) above which a search that cannot use an index earns a warning.
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
                    if not collection.key:
                        warnings.append(
                            f"collection {collection.name}: no key, so its records cannot be "
                            "told apart for erasure"
                        )
                    if self._psycopg():
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
        """Email columns searched with lower() need an index on lower(col), or each search scans."""
        out: list[str] = []
        try:
            rows = conn.execute(
                statements.pg_row_estimate(),
                {"name": self.engine.dialect.identifier_preparer.format_table(table)},
            ).scalar()
            if (rows or 0) < LARGE_TABLE_ROWS:
                return out  # a scan of a small table costs nothing worth a warning
            indexes = sa.inspect(conn).get_indexes(table.name, schema=table.schema)
        except sa.exc.DBAPIError:
            return out
        for name, spec in collection.fields.items():
            if spec.identity not in ("email", "name") or spec.match != Match.AUTO:
                continue
            wanted = f"lower({name})"
            found = any(
                wanted in " ".join(str(e) for e in (ix.get("expressions") or [])).replace('"', "")
                for ix in indexes
            )
            if not found and name in table.c:
                out.append(
                    f"collection {collection.name}: {name} is searched as lower({name}) and no "
                    f"index covers it; create one (CREATE INDEX ON ... (lower({name}))) or mark "
                    "the field `match: exact` if it holds lower-case values"
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
