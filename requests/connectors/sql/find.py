"""The SQL connector's lookups: `find` and `find_identity`.

How a lookup runs: only the tables the map names are reflected, once, when first used (see
requests.connectors.sql.tables); identifiers are quoted by SQLAlchemy's dialect (MariaDB's
case-sensitive `Customer`, `"Order Lines"`); values are always bound, FIND_BATCH at a time, as
`col IN (...)` (PostgreSQL: `col = ANY(array)`, one statement text whatever the batch size;
`col = value` for a single value). Results stream: MySQL through an unbuffered cursor, SQLite row
by row, PostgreSQL in two steps: the lookup first runs with `LIMIT FIND_BATCH + 1` as a prepared
statement (most lookups return a few rows, and that is the fastest way to get them), and only
when more rows come back is it run again through psycopg's streaming cursor, in chunks. Either
way at most a batch of rows is in memory. Lookups run in autocommit, so a long walk holds no
transaction open, and each open result has its own connection (`concurrent_finds`).

Identity comparisons (values arrive in normal form, see requests.engine.normalise):
- email: `lower(col)` (MySQL/MariaDB: the column itself when its collation ignores case, so its
  index is used); PostgreSQL uses an index on `lower(col)` when there is one (`check()` warns
  when there is not). Every candidate row is then confirmed in Python on its normalised value,
  because MySQL's `_ci` collations also ignore accents.
- phone: stores hold numbers as people typed them (`+55 (12) 3923-5555`, `(12) 3923-5555`,
  `0055 12 3923 5555`). The SQL narrows on the last digits: separators (space - ( ) . + /) are
  stripped from the column and its tail compared with the national significant number of each
  E.164 value (`1239235555`). Each candidate is then parsed in Python with the store's region
  (the map's `phone_region`, on the field or the whole store, else the portal's
  `PORTAL_DEFAULT_PHONE_REGION`: numbers without a country code are read in that region) and kept
  only when its E.164 form is one of the person's. The SQL never compares whole E.164 strings, so
  a store in national form needs no candidate spellings: its `06 12 34 56 78` ends with the
  national digits `612345678` of `+33612345678` and is confirmed as French in Python, while a
  look-alike `06 12 34 56 78` in a British store reads as `+44612345678` and is dropped. The
  limit: a national form whose digits do not end with the national significant number (a
  country whose dialled form inserts digits, such as Argentina's mobile `15`) is not found. A
  field with `match: exact` holds E.164 already and is compared directly.
- name: `lower(col)` then confirmed on the normalised value (whitespace collapsed, case folded).
- anything else (account ids, custom types): compared as stored.
"""

from __future__ import annotations

import contextlib
import functools
import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from requests.connectors.sql import statements
from requests.connectors.sql.connection import driver_of
from requests.connectors.sql.errors import is_driver_error
from requests.connectors.sql.tables import SqlTables
from requests.engine.normalise import (
    national_digits,
    normalise_email,
    normalise_name,
    normalise_phone,
)
from requests.engine.store import FIND_BATCH, StoreError
from requests.engine.storemap import Collection, Match, StoreMap

# The first try of a PostgreSQL lookup: at most this many rows come back at once (see _rows).
PROBE_ROWS = FIND_BATCH + 1


@dataclass
class _LookupPlan:
    """What a lookup on one column needs besides the values; made once per connector."""

    table: sa.Table
    column: sa.Column
    mode: str  # exact, email, name, phone
    coerce: Callable[[Sequence[Any]], list[Any]] | None
    case_blind: bool  # MySQL: the column's collation already ignores case
    doing: str
    statements: dict[Any, Any] = field(default_factory=dict)  # by shape: one, many, tails
    names: list[str] = field(default_factory=list)  # the columns every statement selects

    def __post_init__(self) -> None:
        self.names = [c.name for c in self.table.columns]


class SqlFinder(SqlTables):
    """Lookups by column (see the module docstring)."""

    def __init__(self, url: str, store_map: StoreMap, **kwargs: Any) -> None:
        super().__init__(url, store_map, **kwargs)
        self._plans: dict[tuple, _LookupPlan] = {}
        self.lookups = 0  # statements run by find/find_identity, for tests and benchmarks

    def find(
        self, collection: Collection, field_name: str, values: Sequence[Any]
    ) -> Iterator[dict[str, Any]]:
        return self._lookup(collection, field_name, "exact", values)

    def find_identity(
        self,
        collection: Collection,
        field_name: str,
        identity_type: str,
        values: Sequence[str],
        *,
        phone_region: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        spec = collection.fields.get(field_name)
        mode = "exact"
        if spec is None or spec.match == Match.AUTO:
            mode = identity_type if identity_type in ("email", "phone", "name") else "exact"
        # The map's region (field, then store) beats the portal's: a French store's `06 12 34 56
        # 78` is read as French even when the portal's default region is another country.
        region = self.store_map.phone_region_for(collection, field_name, phone_region)
        return self._lookup(collection, field_name, mode, values, phone_region=region)

    def _lookup(
        self,
        collection: Collection,
        field_name: str,
        mode: str,
        values: Sequence[Any],
        *,
        phone_region: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        # The hot path of a search: everything that does not depend on the values is prepared
        # once per (table, column, comparison) and cached (see _LookupPlan).
        key = (collection.schema_name, collection.physical_name, field_name, mode)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = self._make_plan(collection, field_name, mode)
        confirm = None
        if mode == "phone":
            params: dict[str, Any] = _phone_tails(values)
            if not params:
                return iter(())
            shape: Any = tuple(sorted(params))
            confirm = _phone_confirmer(field_name, set(values), phone_region)
        else:
            wanted = plan.coerce(values) if plan.coerce else list(dict.fromkeys(values))
            if not wanted:
                return iter(())
            if len(wanted) == 1:
                # One value (one person's customer id, one email): `=` plans and binds faster
                # than a one-element array.
                params, shape = {"value": wanted[0]}, "one"
            else:
                params, shape = {"values": wanted}, "many"
            if mode in ("email", "name"):
                normal = normalise_email if mode == "email" else normalise_name
                confirm = _text_confirmer(field_name, set(values), normal)
        statement = plan.statements.get(shape)
        if statement is None:
            statement = plan.statements[shape] = self._build_statement(plan, shape)
        return self._rows(plan, statement, params, confirm)

    def _failed(self, plan: _LookupPlan, exc: BaseException) -> StoreError:
        """The error of a failed lookup; one that fails for good (a column renamed or dropped)
        forgets the table, so the next lookup reads its columns again."""
        error = self._error(exc, plan.doing)
        if not error.transient:
            self._forget(plan.table)
            key = (plan.table.schema, plan.table.name)
            for plan_key in [k for k in self._plans if k[:2] == key]:
                del self._plans[plan_key]
        return error

    def _make_plan(self, collection: Collection, field_name: str, mode: str) -> _LookupPlan:
        table = self._table(collection)
        column = self._column(table, collection, field_name)
        case_blind = column.name in self._case_insensitive.get(
            (collection.schema_name, collection.physical_name), ()
        )
        return _LookupPlan(
            table=table,
            column=column,
            mode=mode,
            coerce=_coercer(column) if mode == "exact" else None,
            case_blind=case_blind,
            doing=f"searching collection {collection.name}",
        )

    def _rows(self, plan, statement, params, confirm) -> Iterator[dict[str, Any]]:
        try:
            conn = self._idle.pop() if self._idle else self._open()
        except Exception as exc:
            raise self._error(exc, plan.doing) from None
        done = False
        try:
            self.lookups += 1
            if isinstance(statement, tuple):
                # PostgreSQL through psycopg. One cursor per connection, reused: opening one per
                # lookup costs as much as a lookup on a warm connection.
                probe, whole = statement
                cursor = conn.info.get("dsr_cursor")
                if cursor is None or cursor.closed:
                    cursor = conn.info["dsr_cursor"] = driver_of(conn).cursor()
                names = plan.names  # the statement lists the table's columns in this order
                # Most lookups return a handful of rows: ask for one more than a batch, which
                # psycopg runs as a prepared statement once it has seen it a few times; only
                # when there are more rows is the lookup run again, streamed in chunks.
                cursor.execute(probe, params)
                rows = cursor.fetchall()
                if len(rows) > FIND_BATCH:
                    rows = cursor.stream(whole, params, size=_stream_chunk())
                for row in rows:
                    record = dict(zip(names, row, strict=True))
                    if confirm is None or confirm(record):
                        yield record
            else:
                options = {"stream_results": True, "yield_per": FIND_BATCH}
                result = conn.execution_options(**options).execute(statement, params)
                try:
                    names = list(result.keys())
                    for partition in result.partitions():
                        for row in partition:
                            record = dict(zip(names, row, strict=True))
                            if confirm is None or confirm(record):
                                yield record
                finally:
                    result.close()
            done = True
        except sa.exc.DBAPIError as exc:
            raise self._failed(plan, exc) from None
        except StoreError:
            raise
        except Exception as exc:
            # psycopg's streaming cursor raises the driver's own errors, not SQLAlchemy's.
            if is_driver_error(exc):
                raise self._failed(plan, exc) from None
            raise
        finally:
            if done:
                self._idle.append(conn)
            else:
                # A failed or interrupted lookup may leave the connection mid-result or broken.
                with contextlib.suppress(Exception):
                    conn.invalidate()
                    conn.close()

    def _build_statement(self, plan: _LookupPlan, shape: Any) -> Any:
        """The lookup for `shape`: a Core statement, or on PostgreSQL through psycopg the driver
        texts (the probe with its LIMIT, and the whole lookup) compiled from the same one."""
        case_blind, arrays = plan.case_blind, self._psycopg()

        def build() -> sa.Select:
            return statements.lookup(
                plan.table, plan.column, plan.mode, shape, case_blind=case_blind, arrays=arrays
            )

        if not arrays:
            return build()
        dialect = self.engine.dialect
        table = statements.table_shape(plan.table)
        key = ("lookup", table, plan.column.name, plan.mode, shape, case_blind)
        whole = statements.driver_sql(dialect, key, build)
        probe = statements.driver_sql(
            dialect, ("probe", PROBE_ROWS, *key), lambda: statements.probe(build(), PROBE_ROWS)
        )
        return probe, whole


@functools.cache
def _stream_chunk() -> int:
    """Rows per chunk of psycopg's streaming cursor (chunks need libpq 17; else row by row)."""
    import psycopg

    return FIND_BATCH if psycopg.pq.version() >= 170000 else 1


def _coercer(column: sa.Column) -> Callable[[Sequence[Any]], list[Any]] | None:
    """Turns values into the column's Python type, dropping those that cannot be (they match
    nothing) and repeats. A cross-store reference can carry `"42"` from a text column to an
    integer one, and binding a string against an integer column is an error on PostgreSQL."""
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        return None
    convert: Callable[[Any], Any]
    if python_type is int:
        convert = _to_int
    elif python_type is str:
        convert = _to_str
    elif python_type is uuid.UUID:
        convert = _to_uuid
    else:
        return None

    def coerce(values: Sequence[Any]) -> list[Any]:
        out: dict[Any, None] = {}
        for value in values:
            converted = convert(value)
            if converted is not None:
                out[converted] = None
        return list(out)

    return coerce


def _to_int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return int(value) if _integral(value) else None


def _to_str(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _to_uuid(value: Any) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _integral(value: Any) -> bool:
    if isinstance(value, str):
        return re.fullmatch(r"\s*-?\d+\s*", value) is not None
    return isinstance(value, float) and value.is_integer()


def _phone_tails(values: Sequence[str]) -> dict[str, list[str]]:
    """Bound parameters `t<length>`: the national digits of each E.164 value, by length."""
    tails: dict[str, list[str]] = {}
    for value in values:
        try:
            digits = national_digits(value)
        except Exception:  # noqa: S112 - a value that is not E.164 cannot match
            continue
        tails.setdefault(f"t{len(digits)}", []).append(digits)
    return tails


def _phone_confirmer(field: str, wanted: set[str], region: str | None) -> Callable[[dict], bool]:
    def confirm(row: dict) -> bool:
        stored = row.get(field)
        if stored is None:
            return False
        try:
            return normalise_phone(str(stored), region) in wanted
        except ValueError:
            return False

    return confirm


def _text_confirmer(field: str, wanted: set[str], normal) -> Callable[[dict], bool]:
    def confirm(row: dict) -> bool:
        stored = row.get(field)
        return isinstance(stored, str) and normal(stored) in wanted

    return confirm
