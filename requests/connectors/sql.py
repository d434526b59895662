"""SQL stores through SQLAlchemy Core: PostgreSQL, MySQL/MariaDB and SQLite (kinds `postgresql`,
`mysql`, `sqlite`); other SQLAlchemy dialects work in principle under the kind of their family.

URLs: `postgresql://` and `postgres://` use psycopg 3, `mysql://` and `mariadb://` use PyMySQL,
`sqlite:///path/to/file.db` opens an existing file (never creates an empty one).

How a lookup runs: only the tables the map names are reflected, once, when first used; identifiers
are quoted by SQLAlchemy's dialect (MariaDB's case-sensitive `Customer`, `"Order Lines"`); values
are always bound, FIND_BATCH at a time, as `col IN (...)` (PostgreSQL: `col = ANY(array)`, one
statement text whatever the batch size; `col = value` for a single value). Results stream: MySQL
through an unbuffered cursor, SQLite row by row, PostgreSQL in two steps: the lookup first runs
with `LIMIT FIND_BATCH + 1` as a prepared statement (most lookups return a few rows, and that is
the fastest way to get them), and only when more rows come back is it run again through psycopg's
streaming cursor, in chunks. Either way at most a batch of rows is in memory. Lookups run in
autocommit, so a long walk holds no transaction open, and each open result has its own connection
(`concurrent_finds`).

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

Error messages name the server (host and port, or the SQLite file) and what failed; never the
password or any row data, because driver messages can quote both.

Erasure: `requests.connectors.sql_erase` (the erasure primitives of requests.engine.store:
one transaction per store, set-based statements by key in bounded batches).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.sql import sqltypes

from requests.connectors.sql_erase import SqlErasure, as_stored, driver_of
from requests.engine.normalise import (
    national_digits,
    normalise_email,
    normalise_name,
    normalise_phone,
)
from requests.engine.store import (
    FIND_BATCH,
    CheckResult,
    Connector,
    PermanentStoreError,
    StoreError,
    TransientStoreError,
)
from requests.engine.storemap import Collection, Match, StoreMap

log = logging.getLogger(__name__)

# A lookup may legitimately stream a person's millions of rows; beyond this the server gives up.
DEFAULT_STATEMENT_TIMEOUT = 600.0

# The first try of a PostgreSQL lookup: at most this many rows come back at once (see _rows).
PROBE_LIMIT = f" LIMIT {FIND_BATCH + 1}"

# Rows (PostgreSQL's estimate) above which a search that cannot use an index earns a warning.
LARGE_TABLE_ROWS = 10_000

# Characters people put between the digits of a phone number; stripped before comparing tails.
PHONE_SEPARATORS = (" ", "-", "(", ")", ".", "+", "/")

# Connections a connector may hold at once: one per result stream open at the same time, which
# the finder bounds by its nesting depth (requests.engine.finder.MAX_NESTED_LOOKUPS).
MAX_CONNECTIONS = 12

_DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
    "sqlite": "sqlite",
}
_FAMILY = {"postgresql": "postgresql", "postgres": "postgresql", "mysql": "mysql"}
_FAMILY.update({"mariadb": "mysql", "sqlite": "sqlite"})


def engine_url(kind: str, url: str) -> URL:
    """The SQLAlchemy URL with the project's drivers filled in; PermanentStoreError if unusable."""
    try:
        parsed = make_url(url.strip())
    except Exception:
        # The message of a parse error can quote the URL, password included.
        raise PermanentStoreError("the connection URL is not a valid SQLAlchemy URL") from None
    backend = parsed.drivername.split("+", 1)[0]
    if "+" not in parsed.drivername and backend in _DRIVERS:
        parsed = parsed.set(drivername=_DRIVERS[backend])
    elif backend == "postgres":
        parsed = parsed.set(drivername="postgresql+" + parsed.drivername.split("+", 1)[1])
    family = _FAMILY.get(backend, backend)
    if family != kind:
        raise PermanentStoreError(
            f"the connection URL is for {backend}, but the store's kind is {kind}"
        )
    return parsed


def describe_server(url: URL) -> str:
    """Where the store is, for messages: never the password."""
    backend = url.get_backend_name()
    if backend == "sqlite":
        return f"SQLite file {url.database or ':memory:'}"
    names = {"postgresql": "PostgreSQL", "mysql": "MySQL/MariaDB", "mariadb": "MariaDB"}
    name = names.get(backend, backend)
    host = url.host or "localhost"
    where = f"{name} at {host}:{url.port}" if url.port else f"{name} at {host}"
    return f"{where}/{url.database}" if url.database else where


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


class SqlConnector(SqlErasure, Connector):
    """The shared implementation; registered once per kind by the subclasses below."""

    concurrent_finds = True
    supports_masking = True
    can_discover = True
    can_scan_values = True
    family: ClassVar[str]

    def __init__(self, url: str, store_map: StoreMap, **kwargs: Any) -> None:
        super().__init__(url, store_map, **kwargs)
        self._url = engine_url(self.family, url)
        self.where = describe_server(self._url)
        self.statement_timeout = float(
            self.options.get("statement_timeout", DEFAULT_STATEMENT_TIMEOUT)
        )
        self._engine: Engine | None = None
        self._idle: list[Connection] = []
        self._tables: dict[tuple[str | None, str], sa.Table] = {}
        self._case_insensitive: dict[tuple[str | None, str], set[str]] = {}
        self._plans: dict[tuple, _LookupPlan] = {}
        self.lookups = 0  # statements run by find/find_identity, for tests and benchmarks

    # Connections ---------------------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = self._create_engine()
        return self._engine

    def _create_engine(self) -> Engine:
        kwargs: dict[str, Any] = {
            "pool_pre_ping": True,
            "pool_size": 2,
            "max_overflow": MAX_CONNECTIONS,
            "pool_timeout": self.timeout,
        }
        driver = self._url.get_driver_name()
        connect_args: dict[str, Any] = {}
        if self.family == "postgresql" and driver == "psycopg":
            connect_args = {
                "connect_timeout": max(1, round(self.timeout)),
                "application_name": "dsr-portal",
                "options": f"-c statement_timeout={int(self.statement_timeout * 1000)}",
            }
        elif self.family == "mysql" and driver == "pymysql":
            connect_args = {
                "connect_timeout": max(1, round(self.timeout)),
                "read_timeout": max(1, round(self.statement_timeout)),
                "write_timeout": max(1, round(self.timeout)),
            }
        elif self.family == "sqlite":
            path = self._url.database
            if path and path != ":memory:" and not path.startswith("file:"):
                # mode=rw: a wrong path is an error, not a new empty database.
                target = f"file:{quote(path)}?mode=rw"
                timeout = self.timeout
                kwargs["creator"] = lambda: sqlite3.connect(
                    target, uri=True, timeout=timeout, check_same_thread=False
                )
            else:
                connect_args = {"timeout": self.timeout}
            kwargs.pop("pool_size")
            kwargs.pop("max_overflow")
        engine = sa.create_engine(self._url, connect_args=connect_args, **kwargs)
        if self.family == "mysql":
            event.listen(engine, "connect", self._mysql_session_setup)
        if self.family == "sqlite":
            event.listen(engine, "connect", _sqlite_functions)
        return engine

    def _mysql_session_setup(self, dbapi_connection, _record) -> None:
        # Statement timeouts are named differently in MariaDB (seconds) and MySQL (milliseconds).
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT VERSION()")
            (version,) = cursor.fetchone()
            if "mariadb" in str(version).lower():
                cursor.execute(f"SET SESSION max_statement_time = {self.statement_timeout:.0f}")
            else:
                cursor.execute(
                    f"SET SESSION max_execution_time = {self.statement_timeout * 1000:.0f}"
                )

    @contextmanager
    def _connection(self, doing: str) -> Iterator[Connection]:
        """A connection nobody else is reading from; kept for the next lookup unless it broke."""
        try:
            conn = self._idle.pop() if self._idle else self._open()
        except Exception as exc:
            raise self._error(exc, doing) from None
        broken = False
        try:
            yield conn
        except BaseException:
            # A failed or interrupted lookup may leave the connection mid-result or broken.
            broken = True
            raise
        finally:
            if broken:
                conn.invalidate()
                conn.close()
            else:
                self._idle.append(conn)

    @contextmanager
    def driver_connection(self) -> Iterator[Any]:
        """The driver's own connection behind the lookups (psycopg, PyMySQL, sqlite3), for
        benchmarks and diagnostics: hand-written SQL over the very connection the finder uses."""
        with self._connection("connecting") as conn:
            yield conn.connection.driver_connection

    def _open(self) -> Connection:
        # Autocommit: lookups only read, and a walk over millions of rows must not hold a
        # transaction (and its snapshot) open for its whole length.
        return self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")

    def close(self) -> None:
        while self._idle:
            conn = self._idle.pop()
            with contextlib.suppress(Exception):  # closing a broken connection: best effort
                conn.close()
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    # Errors ----------------------------------------------------------------------------------

    def _error(self, exc: BaseException, doing: str) -> StoreError:
        return translate_error(exc, where=self.where, doing=doing)

    # Tables ----------------------------------------------------------------------------------

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
        for plan_key in [k for k in self._plans if k[:2] == key]:
            del self._plans[plan_key]

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
            sa.text(
                "SELECT COLUMN_NAME, COLLATION_NAME FROM information_schema.COLUMNS "
                "WHERE TABLE_SCHEMA = COALESCE(:schema, DATABASE()) AND TABLE_NAME = :table"
            ),
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

    # Finding -----------------------------------------------------------------------------------

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
            if isinstance(statement, str):
                # PostgreSQL through psycopg. One cursor per connection, reused: opening one per
                # lookup costs as much as a lookup on a warm connection.
                cursor = conn.info.get("dsr_cursor")
                if cursor is None or cursor.closed:
                    cursor = conn.info["dsr_cursor"] = driver_of(conn).cursor()
                names = plan.names  # the statement lists the table's columns in this order
                # Most lookups return a handful of rows: ask for one more than a batch, which
                # psycopg runs as a prepared statement once it has seen it a few times; only
                # when there are more rows is the lookup run again, streamed in chunks.
                cursor.execute(statement + PROBE_LIMIT, params)
                rows = cursor.fetchall()
                if len(rows) > FIND_BATCH:
                    rows = cursor.stream(statement, params, size=_stream_chunk())
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
            if _is_driver_error(exc):
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

    def _build_statement(self, plan: _LookupPlan, shape: Any):
        if self._psycopg():
            return self._postgres_statement(plan.table, plan.column, plan.mode, shape)
        return self._core_statement(plan.table, plan.column, plan.mode, shape, plan.case_blind)

    def _psycopg(self) -> bool:
        return self.family == "postgresql" and self._url.get_driver_name() == "psycopg"

    def _core_statement(self, table, column, mode, shape, case_blind):
        query = sa.select(*table.columns)
        if mode == "phone":
            digits = _digits(sa.cast(column, sa.String) if not _is_text(column) else column)
            tests = [
                sa.func.substr(digits, sa.func.length(digits) - (int(name[1:]) - 1)).in_(
                    sa.bindparam(name, expanding=True)
                )
                for name in shape
            ]
            return query.where(sa.or_(*tests))
        target = column
        if mode in ("email", "name") and not case_blind:
            target = sa.func.dsr_lower(column) if self.family == "sqlite" else sa.func.lower(column)
        if shape == "one":
            return query.where(target == sa.bindparam("value", type_=column.type))
        return query.where(target.in_(sa.bindparam("values", expanding=True)))

    def _postgres_statement(self, table, column, mode, shape) -> str:
        # The dialect's preparer quotes identifiers and, for psycopg's placeholders, doubles any %
        # inside them.
        prep = self.engine.dialect.identifier_preparer
        columns = ", ".join(prep.format_column(c) for c in table.columns)
        name = prep.format_column(column)
        # Identifiers quoted by the dialect; every value is a bound parameter.
        head = f"SELECT {columns} FROM {prep.format_table(table)} WHERE "  # noqa: S608
        if mode == "phone":
            text = name if _is_text(column) else f"{name}::text"
            digits = text
            for separator in PHONE_SEPARATORS:
                digits = f"replace({digits}, '{separator}', '')"
            tests = [f"right({digits}, {int(p[1:])}) = ANY(%({p})s::text[])" for p in shape]
            where = "(" + " OR ".join(tests) + ")"
        elif mode in ("email", "name"):
            if shape == "one":
                where = f"lower({name}) = %(value)s::text"
            else:
                where = f"lower({name}) = ANY(%(values)s::text[])"
        elif shape == "one":
            where = f"{name} = %(value)s{_pg_cast(column)}"
        else:
            where = f"{name} = ANY(%(values)s{_pg_cast(column)}[])"
        return head + where

    # Checking ----------------------------------------------------------------------------------

    def scan_values(
        self, collection: Collection, field_name: str, *, batch: int
    ) -> Iterator[list[Any]]:
        doing = f"listing {collection.name}.{field_name}"
        column = self._column(self._table(collection), collection, field_name)
        statement = sa.select(column).where(column.is_not(None))
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

    def _index_warnings(self, conn, collection: Collection, table: sa.Table) -> list[str]:
        """Email columns searched with lower() need an index on lower(col), or each search scans."""
        out: list[str] = []
        try:
            rows = conn.execute(
                sa.text("SELECT reltuples FROM pg_class WHERE oid = CAST(:name AS regclass)"),
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

    # Discovery ---------------------------------------------------------------------------------

    def describe(self, *, progress=None) -> StoreMap:
        doing = "reading the schema"
        try:
            with self._connection(doing) as conn:
                from requests.engine.discovery import draft_map

                tables = read_schema(
                    conn,
                    family=self.family,
                    schemas=self.options.get("schemas"),
                    progress=progress,
                )
                return draft_map(tables)
        except sa.exc.DBAPIError as exc:
            raise self._error(exc, doing) from None


class PostgresConnector(SqlConnector):
    kind = "postgresql"
    family = "postgresql"


class MysqlConnector(SqlConnector):
    kind = "mysql"
    family = "mysql"


class SqliteConnector(SqlConnector):
    kind = "sqlite"
    family = "sqlite"


# Helpers -------------------------------------------------------------------------------------


# Columns read from a store, shared by the connectors of one process: (url, schema, table) ->
# (read at, columns, case-blind columns). Each job builds new connectors; reading three tables
# costs tens of milliseconds, a large share of a small request. A minute keeps schema changes
# visible soon enough while a busy worker reads each table about once a minute.
REFLECTION_TTL = 60.0
_REFLECTED: dict[tuple, tuple[float, list, set]] = {}


@functools.cache
def _stream_chunk() -> int:
    """Rows per chunk of psycopg's streaming cursor (chunks need libpq 17; else row by row)."""
    import psycopg

    return FIND_BATCH if psycopg.pq.version() >= 170000 else 1


def _sqlite_functions(dbapi_connection, _record) -> None:
    # SQLite's lower() folds ASCII only; Python's agrees with the normal form of every value.
    dbapi_connection.create_function(
        "dsr_lower", 1, lambda v: v.lower() if isinstance(v, str) else v, deterministic=True
    )


def _is_text(column: sa.Column) -> bool:
    return isinstance(column.type, sqltypes.String)


def _digits(expression):
    for separator in PHONE_SEPARATORS:
        expression = sa.func.replace(expression, separator, "")
    return expression


def _pg_cast(column: sa.Column) -> str:
    """A cast for bound values that never changes one (no varchar(n) truncation)."""
    kind = column.type
    if isinstance(kind, sqltypes.Integer):
        return "::bigint"
    if isinstance(kind, sqltypes.String):
        return "::text"
    if isinstance(kind, sqltypes.Uuid):
        return "::uuid"
    return ""


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


def _is_driver_error(exc: BaseException) -> bool:
    module = type(exc).__module__ or ""
    return module.startswith(("psycopg", "pymysql", "sqlite3"))


# Driver errors -----------------------------------------------------------------------------

# PostgreSQL SQLSTATEs worth retrying: connection exceptions (08), deadlock and serialisation
# (40), too many connections and out of resources (53), cancelled by timeout or shutdown (57).
_PG_TRANSIENT_PREFIXES = ("08", "40", "53", "57")
_PG_MESSAGES = {
    "28P01": "authentication failed (check the user name and password)",
    "28000": "authentication failed (the user is unknown or not allowed)",
    "3D000": "the database does not exist",
    "42P01": "a table named in the map does not exist",
    "42703": "a column named in the map does not exist",
    "42501": "permission denied (the user may not read this table)",
    "57014": "the statement timed out",
    "40P01": "deadlock (retrying will help)",
    "40001": "serialisation failure (retrying will help)",
    "53300": "the server has too many connections",
}
_MYSQL_TRANSIENT = {
    1040,
    1053,
    1205,
    1213,
    1317,
    1927,
    1969,
    2002,
    2003,
    2005,
    2006,
    2013,
    2055,
    3024,
}
_MYSQL_MESSAGES = {
    1040: "the server has too many connections",
    1044: "authentication failed (the user may not use this database)",
    1045: "authentication failed (check the user name and password)",
    1049: "the database does not exist",
    1054: "a column named in the map does not exist",
    1142: "permission denied (the user may not read this table)",
    1146: "a table named in the map does not exist",
    1205: "lock wait timeout (retrying will help)",
    1213: "deadlock (retrying will help)",
    1969: "the statement timed out",
    3024: "the statement timed out",
    2005: "unknown host name",
    2006: "the server has gone away",
    2013: "lost the connection to the server",
}
# Driver text (a regular expression) -> (our words, transient). Matched on the driver's message,
# which is never repeated.
_TEXT_RULES = (
    (
        "password authentication failed",
        "authentication failed (check the user name and password)",
        False,
    ),
    ("no pg_hba.conf entry", "the server refuses connections from this host or user", False),
    (r'role ".*" does not exist', "authentication failed (the user does not exist)", False),
    (r'database ".*" does not exist', "the database does not exist", False),
    (
        "connection refused",
        "connection refused (is the server running, and is the port right?)",
        True,
    ),
    ("timeout expired", "timed out connecting", True),
    ("timed out", "timed out", True),
    ("failed to resolve host", "unknown host name", True),
    ("could not translate host name", "unknown host name", True),
    ("name or service not known", "unknown host name", True),
    ("server closed the connection", "the server closed the connection", True),
    ("the database system is", "the server is starting up or shutting down", True),
    ("too many clients", "the server has too many connections", True),
    ("no route to host", "no route to the host", True),
    ("database is locked", "the database file is locked by another writer", True),
    ("unable to open database file", "the database file cannot be opened (wrong path?)", False),
    ("no such table", "a table named in the map does not exist", False),
    ("no such column", "a column named in the map does not exist", False),
    ("file is not a database", "the file is not an SQLite database", False),
)


def translate_error(exc: BaseException, *, where: str, doing: str) -> StoreError:
    """A StoreError for a driver or SQLAlchemy error, in our words: the driver's text can quote the
    password (in a DSN) or row data (in a constraint's detail), so it is only matched, never shown.
    """
    if isinstance(exc, StoreError):
        return exc
    if isinstance(exc, sa.exc.TimeoutError):
        return TransientStoreError(f"{where}: {doing}: no free connection in time")
    orig = getattr(exc, "orig", None) or exc
    code = None
    sqlstate = None
    args = getattr(orig, "args", ())
    if type(orig).__module__.startswith("pymysql"):
        # MySQL error numbers are finer than their SQLSTATEs (1045 and 1044 share 28000).
        if args and isinstance(args[0], int):
            code = args[0]
            if code in _MYSQL_MESSAGES:
                message = _MYSQL_MESSAGES[code]
                return _made(code in _MYSQL_TRANSIENT, f"{where}: {doing}: {message}")
    else:
        sqlstate = getattr(orig, "sqlstate", None)
        if sqlstate and sqlstate in _PG_MESSAGES:
            transient = sqlstate.startswith(_PG_TRANSIENT_PREFIXES)
            return _made(transient, f"{where}: {doing}: {_PG_MESSAGES[sqlstate]}")
    text = str(orig).lower()
    for needle, message, transient in _TEXT_RULES:
        if re.search(needle, text):
            if code == 2003 and needle == "timed out":
                message = "timed out connecting"
            return _made(transient, f"{where}: {doing}: {message}")
    kind = type(orig).__name__
    detail = f" (SQLSTATE {sqlstate})" if sqlstate else f" (error {code})" if code else ""
    if code is not None:
        transient = code in _MYSQL_TRANSIENT
    elif sqlstate:
        transient = sqlstate.startswith(_PG_TRANSIENT_PREFIXES)
    else:
        transient = isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError) or (
            kind in ("OperationalError", "InterfaceError")
        )
    if code == 2003:
        return TransientStoreError(f"{where}: {doing}: cannot connect to the server")
    return _made(transient, f"{where}: {doing}: database error {kind}{detail}")


def _made(transient: bool, message: str) -> StoreError:
    return TransientStoreError(message) if transient else PermanentStoreError(message)


# Schema for discovery ----------------------------------------------------------------------


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
    rows = conn.execute(
        sa.text(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relispartition AND n.nspname = COALESCE(:schema, current_schema())"
        ),
        {"schema": schema},
    )
    return {name for (name,) in rows}


def read_schema(
    conn: Connection,
    *,
    family: str,
    schemas: Sequence[str] | None = None,
    progress=None,
) -> list:
    """Tables, keys, foreign keys and a bounded sample of text values, as discovery reads them."""
    from requests.engine.discovery import (
        SAMPLE_ROWS,
        ColumnInfo,
        ForeignKeyInfo,
        TableInfo,
    )

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


def _sample(conn: Connection, table, rows: int) -> None:
    """The first rows' text values (cut to 100 characters), to recognise emails and phones."""
    text_columns = [c for c in table.columns if c.family == "text"]
    if not text_columns:
        return
    source = sa.table(table.name, *[sa.column(c.name) for c in text_columns], schema=table.schema)
    query = sa.select(*[sa.func.substr(source.c[c.name], 1, 100) for c in text_columns]).limit(rows)
    try:
        result = conn.execute(query)
        for row in result:
            for column, value in zip(text_columns, row, strict=True):
                if isinstance(value, str):
                    column.samples.append(value)
    except sa.exc.DBAPIError:
        # A table the user may not read is still described; its content just is not sampled.
        log.info("discovery could not sample a table; continuing without its content")
