"""The SQL connector's erasure primitives (requests.engine.store): one transaction per store,
set-based statements by key.

`SqlErasure` is a mixin of `requests.connectors.sql.SqlConnector`; it uses the connector's engine,
`family`, `timeout`, `where` and error translation (`_error`), and keeps the erasure's own
connection while `transaction()` is open. It reads its tables itself, with each column's
nullability (a mask defaults to null only where the column allows it), once per connector.

Statements, each for a batch of keys (the engine sends at most ERASE_BATCH):
- delete: `DELETE FROM t WHERE key IN (...)` (`(k1, k2) IN (...)` for composite keys);
- mask with constants only (null, fixed): `UPDATE t SET f = ... WHERE key IN (...) AND (f IS
  DISTINCT FROM ...)`, so records already masked are neither written nor counted;
- mask with per-record values (hash, random): one SELECT of the batch's current values, then one
  `UPDATE t SET f = CASE WHEN key = ... THEN ... END WHERE key IN (...)` for the records that
  change: values computed here (HMAC needs the key, which no database should see), still one
  statement per batch;
- nullify: `UPDATE t SET f = NULL WHERE f IN (...)`;
- referrers: `SELECT key, f FROM t WHERE f IN (...)`, inside the transaction so it sees the
  deletes made so far.

The transaction: PostgreSQL and MySQL/MariaDB `BEGIN` with a lock wait bound (a row locked by
someone else becomes a transient error after the connector's timeout instead of a hung worker);
SQLite `BEGIN IMMEDIATE`, which takes the write lock at once (waiting up to the timeout), so no
other writer can slip in between the checks and the deletes. Foreign keys are not relied on:
the engine orders and checks, so a SQLite file without `PRAGMA foreign_keys` ends the same.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import hashlib
import hmac
import secrets
import string
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.sql import sqltypes

from requests.engine.store import (
    Connector,
    FieldMask,
    PermanentStoreError,
    StoreError,
    TransientStoreError,
)
from requests.engine.storemap import Collection, MaskStrategy

# Bound parameters one masking UPDATE may carry (keys and per-record values): under SQLite's
# limit of 32766, itself the lowest of the three engines (PostgreSQL and MySQL allow 65535).
MAX_PARAMETERS = 30_000

# Rows a referrer check reads per driver round trip while it streams.
REFERRER_CHUNK = 1000

# PostgreSQL's lock_not_available (lock_timeout) and MySQL's lock wait timeout: worth a retry.
_PG_LOCK_TIMEOUT = "55P03"

_RANDOM_TEXT = string.ascii_lowercase + string.digits
_RANDOM_DATE_SPAN = 365 * 50  # days from 1970-01-01: a date that says nothing about the person

_CONSTANT = (MaskStrategy.NULL, MaskStrategy.FIXED)


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


class _Mask:
    """A FieldMask resolved against the column: the strategy to apply and its constant value."""

    def __init__(self, column: sa.Column, strategy: MaskStrategy, value: Any = None) -> None:
        self.column = column
        self.strategy = strategy
        self.value = value

    @property
    def constant(self) -> bool:
        return self.strategy in _CONSTANT

    def new_value(self, current: Any, hash_key: bytes) -> Any:
        if self.constant:
            return self.value
        if current is None:
            return None  # nothing personal to hide, and NULL stays NULL
        if self.strategy == MaskStrategy.HASH:
            digest = hmac.new(hash_key, str(current).encode(), hashlib.sha256).hexdigest()
            return digest[: _length(self.column) or len(digest)]
        return _random_like(current, self.column)


def driver_of(conn: Connection) -> Any:
    """The DB-API connection under a SQLAlchemy connection, for the statements sent to the driver
    directly."""
    driver = conn.connection.driver_connection
    if driver is None:  # only once the pool has let it go, which an open Connection never has
        raise TransientStoreError("the database connection was closed")
    return driver


class SqlErasure(Connector):
    """Erasure primitives for SqlConnector (see the module docstring)."""

    if TYPE_CHECKING:
        # What SqlConnector, the one class this completes, provides.
        family: ClassVar[str]
        where: str
        _url: URL
        _idle: list[Connection]

        @property
        def engine(self) -> Engine: ...

        def _open(self) -> Connection: ...

        def _error(self, exc: BaseException, doing: str) -> StoreError: ...

    _erase_conn: Connection | None = None
    _erase_cache: dict[Any, Any] | None = None

    def _cache(self) -> dict[Any, Any]:
        if self._erase_cache is None:
            self._erase_cache = {}
        return self._erase_cache

    def _erase_table(self, collection: Collection) -> sa.Table:
        """The collection's table with types and nullability, read once per connector."""
        key = ("table", collection.schema_name, collection.physical_name)
        table = self._cache().get(key)
        if table is not None:
            return table
        doing = f"reading the table of collection {collection.name}"
        try:
            found = sa.inspect(self._tx()).get_columns(
                collection.physical_name, schema=collection.schema_name
            )
        except sa.exc.NoSuchTableError:
            found = []
        except sa.exc.DBAPIError as exc:
            raise self._erase_error(exc, doing) from None
        if not found:
            raise PermanentStoreError(
                f"collection {collection.name}: table {collection.physical_name!r} not found"
            )
        table = sa.Table(
            collection.physical_name,
            sa.MetaData(),
            *[
                sa.Column(
                    c["name"],
                    as_stored(self.family, c["type"]),
                    nullable=bool(c.get("nullable", True)),
                )
                for c in found
            ],
            schema=collection.schema_name,
        )
        self._cache()[key] = table
        return table

    @staticmethod
    def _col(table: sa.Table, collection: Collection, name: str) -> sa.Column:
        try:
            return table.c[name]
        except KeyError:
            raise PermanentStoreError(
                f"collection {collection.name}: column {name!r} not found in table "
                f"{collection.physical_name!r}"
            ) from None

    # The transaction -------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        if self._erase_conn is not None:
            raise RuntimeError("an erasure transaction is already open on this connector")
        conn = self._erase_begin()
        self._erase_conn = conn
        try:
            yield conn
            try:
                conn.exec_driver_sql("COMMIT")
            except Exception as exc:
                self._erase_drop(conn)
                raise self._erase_error(exc, "erasing (committing)") from None
        except BaseException:
            # Whatever failed (a statement, the caller's progress callback, a kill), nothing of
            # this store's erasure may stay: roll back, and drop a connection that broke.
            if self._erase_conn is not None:
                try:
                    conn.exec_driver_sql("ROLLBACK")
                except Exception:
                    self._erase_drop(conn)
            raise
        finally:
            if self._erase_conn is not None:
                # Back with the connector's idle connections: the next erasure (or lookup) of
                # this job reuses it warm, and the connector's close() closes it.
                self._idle.append(conn)
            self._erase_conn = None

    def _erase_begin(self) -> Connection:
        """A connection of the connector's own (autocommit, so the transaction is ours to
        begin and end) inside a new transaction."""
        doing = "erasing (opening a transaction)"
        for attempt in (1, 2):
            kept = bool(self._idle)
            try:
                conn = self._idle.pop() if kept else self._open()
            except Exception as exc:
                raise self._erase_error(exc, doing) from None
            try:
                self._begin(conn)
                return conn
            except Exception as exc:
                conn.invalidate()
                with contextlib.suppress(Exception):
                    conn.close()
                # A kept connection may have died since its last use (a server restart): one
                # more try on a new one. A new connection that cannot begin is the answer.
                if not kept or attempt == 2:
                    raise self._erase_error(exc, doing) from None
        raise AssertionError("unreachable")

    def _begin(self, conn: Connection) -> None:
        wait = max(1, round(self.timeout))
        if self.family == "sqlite":
            # Take the write lock at once, before the first check, not at the first write.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif self._psycopg():
            # One round trip: BEGIN and the lock wait bound of this transaction only.
            driver_of(conn).execute(f"BEGIN; SET LOCAL lock_timeout = '{wait}s'")
        else:
            if self.family == "mysql" and not conn.info.get("dsr_lock_wait"):
                conn.exec_driver_sql(f"SET SESSION innodb_lock_wait_timeout = {wait}")
                conn.info["dsr_lock_wait"] = True
            conn.exec_driver_sql("BEGIN")

    def _erase_drop(self, conn: Connection) -> None:
        self._erase_conn = None
        conn.invalidate()
        with contextlib.suppress(Exception):
            conn.close()

    def _tx(self) -> Connection:
        if self._erase_conn is None:
            raise RuntimeError("erasure statements run inside connector.transaction()")
        return self._erase_conn

    def _erase_error(self, exc: BaseException, doing: str) -> StoreError:
        orig = getattr(exc, "orig", None) or exc
        if getattr(orig, "sqlstate", None) == _PG_LOCK_TIMEOUT:
            return TransientStoreError(
                f"{self.where}: {doing}: a record is locked by another transaction (retrying "
                "will help)"
            )
        return self._error(exc, doing)

    def _execute(self, statement, params, doing: str):
        try:
            return self._tx().execute(statement, params)
        except sa.exc.DBAPIError as exc:
            raise self._erase_error(exc, doing) from None

    # PostgreSQL through psycopg ---------------------------------------------------------------
    # The hot statements (deleting by key, reading referrers) go to the driver directly, as the
    # finder's lookups do: `col = ANY(%s)` is one statement text for any batch size, so psycopg
    # prepares it after a few runs, and SQLAlchemy's per-execution work is skipped. Identifiers
    # are quoted by the dialect; every value is bound.

    def _psycopg(self) -> bool:
        return self.family == "postgresql" and self._url.get_driver_name() == "psycopg"

    def _pg_text(self, cache_key, table, column, verb: str, selected=()) -> str:
        text = self._cache().get(cache_key)
        if text is None:
            prep = self.engine.dialect.identifier_preparer
            name = prep.format_table(table)
            where = f"{prep.format_column(column)} = ANY(%s{_pg_array_cast(column)})"
            if verb == "DELETE":
                text = f"DELETE FROM {name} WHERE {where}"  # noqa: S608 - quoted identifiers
            else:
                listed = ", ".join(prep.format_column(c) for c in selected)
                text = f"SELECT {listed} FROM {name} WHERE {where}"  # noqa: S608
            self._cache()[cache_key] = text
        return text

    def _pg_cursor(self):
        conn = self._tx()
        cursor = conn.info.get("dsr_erase_cursor")
        if cursor is None or cursor.closed:
            cursor = conn.info["dsr_erase_cursor"] = driver_of(conn).cursor()
        return cursor

    def _pg_run(self, text: str, values: list[Any], doing: str) -> int:
        try:
            cursor = self._pg_cursor()
            cursor.execute(text, (values,))
            return cursor.rowcount
        except Exception as exc:
            if _is_driver_error(exc):
                raise self._erase_error(exc, doing) from None
            raise

    def _pg_rows(self, text: str, values: list[Any], doing: str) -> Iterator[tuple]:
        """Rows of a SELECT: most answers are small, so a LIMIT probe first (prepared after a
        few runs); a larger answer is read again streamed, so memory stays one chunk."""
        try:
            cursor = self._pg_cursor()
            cursor.execute(text + f" LIMIT {REFERRER_CHUNK + 1}", (values,))
            rows = cursor.fetchall()
            if len(rows) <= REFERRER_CHUNK:
                yield from rows
                return
            yield from cursor.stream(text, (values,), size=REFERRER_CHUNK)
        except Exception as exc:
            if _is_driver_error(exc):
                raise self._erase_error(exc, doing) from None
            raise

    # Keys --------------------------------------------------------------------------------------

    def _key_filter(self, table: sa.Table, collection: Collection, name: str = "keys"):
        if not collection.key:
            raise PermanentStoreError(
                f"collection {collection.name}: no key, so its records cannot be erased one by "
                "one; give it a key in the map"
            )
        columns = [self._col(table, collection, k) for k in collection.key]
        if len(columns) == 1:
            return columns[0].in_(sa.bindparam(name, expanding=True)), columns
        return sa.tuple_(*columns).in_(sa.bindparam(name, expanding=True)), columns

    @staticmethod
    def _key_params(collection: Collection, keys: Sequence[tuple]) -> list[Any]:
        if len(collection.key) == 1:
            return [k[0] if isinstance(k, tuple | list) else k for k in keys]
        return [tuple(k) for k in keys]

    # Primitives --------------------------------------------------------------------------------

    def delete_keys(self, collection: Collection, keys: Sequence[tuple]) -> int:
        if not keys:
            return 0
        doing = f"erasing records of collection {collection.name}"
        table = self._erase_table(collection)
        if self._psycopg() and len(collection.key) == 1:
            key = self._col(table, collection, collection.key[0])
            text = self._pg_text(("delete", table.schema, table.name), table, key, "DELETE")
            return max(self._pg_run(text, _coerce(key, [k[0] for k in keys]), doing), 0)
        cache_key = ("delete", table.schema, table.name)
        statement = self._cache().get(cache_key)
        if statement is None:
            where, _ = self._key_filter(table, collection)
            statement = self._cache()[cache_key] = table.delete().where(where)
        result = self._execute(statement, {"keys": self._key_params(collection, keys)}, doing)
        return max(result.rowcount or 0, 0)

    def delete_unreferenced(
        self,
        collection: Collection,
        keys: Sequence[tuple],
        references: Sequence[tuple[Collection, str, str]],
    ) -> int | None:
        if not keys:
            return 0
        doing = f"erasing records of collection {collection.name}"
        table = self._erase_table(collection)
        guards = []
        for referring, field_name, referred in references:
            other = self._erase_table(referring)
            if (other.schema, other.name) == (table.schema, table.name):
                return None  # a table referring to itself: checked row by row by the engine
            guards.append(
                (
                    other,
                    self._col(other, referring, field_name),
                    self._col(table, collection, referred),
                )
            )
        shape = tuple((o.schema, o.name, f.name, g.name) for o, f, g in guards)
        cache_key = ("delete-unreferenced", table.schema, table.name, shape)
        if self._psycopg() and len(collection.key) == 1:
            key = self._col(table, collection, collection.key[0])
            text = self._cache().get(cache_key)
            if text is None:
                prep = self.engine.dialect.identifier_preparer
                name = prep.format_table(table)
                tests = [
                    f"NOT EXISTS (SELECT 1 FROM {prep.format_table(o)} WHERE "  # noqa: S608
                    f"{prep.format_table(o)}.{prep.format_column(f)} = "
                    f"{name}.{prep.format_column(g)})"
                    for o, f, g in guards
                ]
                text = self._cache()[cache_key] = (
                    f"DELETE FROM {name} WHERE {prep.format_column(key)} = "  # noqa: S608
                    f"ANY(%s{_pg_array_cast(key)}) AND " + " AND ".join(tests)
                )
            return max(self._pg_run(text, _coerce(key, [k[0] for k in keys]), doing), 0)
        statement = self._cache().get(cache_key)
        if statement is None:
            where, _ = self._key_filter(table, collection)
            unreferenced = [~sa.exists().where(f == g) for _, f, g in guards]
            statement = table.delete().where(where, *unreferenced)
            self._cache()[cache_key] = statement
        result = self._execute(statement, {"keys": self._key_params(collection, keys)}, doing)
        return max(result.rowcount or 0, 0)

    def mask_keys(
        self,
        collection: Collection,
        keys: Sequence[tuple],
        masks: Sequence[FieldMask],
        *,
        hash_key: bytes,
    ) -> int:
        if not keys:
            return 0
        table = self._erase_table(collection)
        resolved = [m for m in (self._resolve(table, collection, fm) for fm in masks) if m]
        if not resolved:
            return 0
        if all(m.constant for m in resolved):
            return self._mask_constant(table, collection, keys, resolved)
        per_record = 1 + sum(1 for m in resolved if not m.constant)
        step = max(1, min(len(keys), MAX_PARAMETERS // (per_record * len(collection.key) + 1)))
        changed = 0
        for start in range(0, len(keys), step):
            changed += self._mask_computed(
                table, collection, keys[start : start + step], resolved, hash_key
            )
        return changed

    def _resolve(self, table: sa.Table, collection: Collection, fm: FieldMask) -> _Mask | None:
        column = self._col(table, collection, fm.field)
        strategy = fm.strategy
        where = f"collection {collection.name}, field {fm.field}"
        if strategy == MaskStrategy.KEEP:
            return None
        if strategy is None:
            if column.nullable:
                strategy = MaskStrategy.NULL
            elif _is_text(column):
                strategy = MaskStrategy.HASH
            else:
                raise PermanentStoreError(
                    f"{where}: cannot be masked by default (it may not be null and is not text); "
                    "give it a mask strategy in the map"
                )
        if strategy == MaskStrategy.NULL and not column.nullable:
            raise PermanentStoreError(
                f"{where}: the null mask needs a column that allows null; choose another strategy"
            )
        if strategy == MaskStrategy.HASH and not _is_text(column):
            raise PermanentStoreError(f"{where}: the hash mask needs a text column")
        if strategy == MaskStrategy.FIXED:
            return _Mask(column, strategy, _fixed_value(column, fm.value, where))
        return _Mask(column, strategy)

    def _mask_constant(self, table, collection, keys, masks: list[_Mask]) -> int:
        doing = f"masking records of collection {collection.name}"
        names = tuple(m.column.name for m in masks)
        cache_key = ("mask", table.schema, table.name, names)
        statement = self._cache().get(cache_key)
        if statement is None:
            where, _ = self._key_filter(table, collection)
            differs = sa.or_(
                *[m.column.is_distinct_from(sa.bindparam(f"v_{i}")) for i, m in enumerate(masks)]
            )
            statement = (
                table.update()
                .where(where, differs)
                .values({m.column.name: sa.bindparam(f"v_{i}") for i, m in enumerate(masks)})
            )
            self._cache()[cache_key] = statement
        params = {f"v_{i}": m.value for i, m in enumerate(masks)}
        params["keys"] = self._key_params(collection, keys)
        return max(self._execute(statement, params, doing).rowcount or 0, 0)

    def _mask_computed(self, table, collection, keys, masks: list[_Mask], hash_key) -> int:
        doing = f"masking records of collection {collection.name}"
        where, key_columns = self._key_filter(table, collection)
        read = sa.select(*key_columns, *[m.column for m in masks]).where(where)
        rows = self._execute(read, {"keys": self._key_params(collection, keys)}, doing).all()
        width = len(key_columns)
        changes: list[tuple[tuple, list[Any]]] = []
        for row in rows:
            current = list(row[width:])
            new = [m.new_value(v, hash_key) for m, v in zip(masks, current, strict=True)]
            if new != current:
                changes.append((tuple(row[:width]), new))
        if not changes:
            return 0
        values: dict[str, Any] = {}
        for i, m in enumerate(masks):
            if m.constant:
                values[m.column.name] = sa.bindparam(f"c_{i}", m.value, type_=m.column.type)
                continue
            whens = [
                (
                    _key_equals(key_columns, key),
                    sa.bindparam(None, new[i], type_=m.column.type),
                )
                for key, new in changes
            ]
            values[m.column.name] = sa.case(*whens, else_=m.column)
        statement = table.update().where(where).values(values)
        changed_keys = [k[0] if width == 1 else k for k, _ in changes]
        result = self._execute(statement, {"keys": changed_keys}, doing)
        return max(result.rowcount or 0, 0)

    def nullify(self, collection: Collection, field_name: str, values: Sequence[Any]) -> int:
        doing = f"clearing references in collection {collection.name}"
        table = self._erase_table(collection)
        column = self._col(table, collection, field_name)
        if not column.nullable:
            raise PermanentStoreError(
                f"collection {collection.name}: {field_name} may not be null, so it cannot be "
                "cleared; set `nullable: false` on its reference or change the fallback"
            )
        wanted = _coerce(column, values)
        if not wanted:
            return 0
        statement = (
            table.update()
            .where(column.in_(sa.bindparam("values", expanding=True)))
            .values({column.name: None})
        )
        return max(self._execute(statement, {"values": wanted}, doing).rowcount or 0, 0)

    def referrers(
        self, collection: Collection, field_name: str, values: Sequence[Any]
    ) -> Iterator[tuple[tuple, Any]]:
        if self._erase_conn is None:
            yield from super().referrers(collection, field_name, values)
            return
        doing = f"checking references from collection {collection.name}"
        table = self._erase_table(collection)
        column = self._col(table, collection, field_name)
        wanted = _coerce(column, values)
        if not wanted:
            return
        key_columns = [self._col(table, collection, k) for k in collection.key]
        width = len(key_columns)
        if self._psycopg():
            text = self._pg_text(
                ("referrers", table.schema, table.name, column.name),
                table,
                column,
                "SELECT",
                [*key_columns, column],
            )
            for row in self._pg_rows(text, wanted, doing):
                yield tuple(row[:width]), row[width]
            return
        statement = sa.select(*key_columns, column).where(
            column.in_(sa.bindparam("values", expanding=True))
        )
        try:
            # Per statement: a connection's own execution_options would stay for what follows.
            result = self._tx().execute(
                statement,
                {"values": wanted},
                execution_options={"stream_results": True, "yield_per": REFERRER_CHUNK},
            )
            try:
                for partition in result.partitions():
                    for found in partition:
                        yield tuple(found[:width]), found[width]
            finally:
                result.close()
        except sa.exc.DBAPIError as exc:
            raise self._erase_error(exc, doing) from None


# Helpers -------------------------------------------------------------------------------------


def _coerce(column: sa.Column, values: Sequence[Any]) -> list[Any]:
    """Values in the column's Python type; those that cannot be are dropped (they match nothing).
    A reference across stores can carry "42" to an integer column, which PostgreSQL refuses."""
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        return [v for v in values if v is not None]
    out = []
    for value in values:
        if value is None or isinstance(value, bool):
            continue
        if python_type is int and not isinstance(value, int):
            text = str(value).strip()
            if not text.lstrip("-").isdigit():
                continue
            value = int(text)
        elif python_type is str and not isinstance(value, str):
            value = str(value)
        out.append(value)
    return list(dict.fromkeys(out))


def _pg_array_cast(column: sa.Column) -> str:
    """A cast for the bound array that never changes a value (no varchar(n) truncation)."""
    if isinstance(column.type, sqltypes.Integer):
        return "::bigint[]"
    if isinstance(column.type, sqltypes.String):
        return "::text[]"
    if isinstance(column.type, sqltypes.Uuid):
        return "::uuid[]"
    return ""


def _is_driver_error(exc: BaseException) -> bool:
    return (type(exc).__module__ or "").startswith("psycopg")


def _is_text(column: sa.Column) -> bool:
    return isinstance(column.type, sqltypes.String)


def _length(column: sa.Column) -> int | None:
    return getattr(column.type, "length", None)


def _key_equals(key_columns: list[sa.Column], key: tuple):
    tests = [
        c == sa.bindparam(None, v, type_=c.type) for c, v in zip(key_columns, key, strict=True)
    ]
    return tests[0] if len(tests) == 1 else sa.and_(*tests)


def _fixed_value(column: sa.Column, value: str | None, where: str) -> Any:
    if value is None:
        raise PermanentStoreError(f"{where}: the fixed mask needs a mask_value")
    if _is_text(column):
        length = _length(column)
        return value[:length] if length else value
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        python_type = str
    try:
        if python_type is int:
            return int(value)
        if python_type is decimal.Decimal:
            return decimal.Decimal(value)
        if python_type is float:
            return float(value)
        if python_type is dt.date:
            return dt.date.fromisoformat(value)
        if python_type is dt.datetime:
            return dt.datetime.fromisoformat(value)
    except (ValueError, ArithmeticError):
        pass
    raise PermanentStoreError(f"{where}: the fixed mask_value does not fit the column's type")


def _random_like(current: Any, column: sa.Column) -> Any:
    """Random data of the same kind and size class as `current`, fitting the column."""
    if isinstance(current, bool):
        return secrets.choice((True, False))
    if isinstance(current, str):
        length = max(1, len(current))
        limit = _length(column)
        if limit:
            length = min(length, limit)
        return "".join(secrets.choice(_RANDOM_TEXT) for _ in range(length))
    if isinstance(current, int):
        digits = len(str(abs(current))) or 1
        low = 10 ** (digits - 1) if digits > 1 else 0
        high = min(10**digits - 1, _int_limit(column))
        return low + secrets.randbelow(max(1, high - low + 1))
    if isinstance(current, decimal.Decimal):
        exponent = current.as_tuple().exponent
        scale = -exponent if isinstance(exponent, int) and exponent < 0 else 0
        digits = max(1, len(str(int(abs(current)))))
        raw = secrets.randbelow(10 ** (digits + scale))
        return decimal.Decimal(raw).scaleb(-scale)
    if isinstance(current, float):
        return secrets.randbelow(10**6) / 1000.0
    if isinstance(current, dt.datetime):
        day = dt.datetime(1970, 1, 1, tzinfo=current.tzinfo)
        return day + dt.timedelta(days=secrets.randbelow(_RANDOM_DATE_SPAN))
    if isinstance(current, dt.date):
        return dt.date(1970, 1, 1) + dt.timedelta(days=secrets.randbelow(_RANDOM_DATE_SPAN))
    if isinstance(current, bytes | bytearray | memoryview):
        return secrets.token_bytes(len(bytes(current)))
    if column.nullable:
        return None
    raise PermanentStoreError(
        f"column {column.name}: the random mask cannot make a value of this type; choose "
        "another strategy"
    )


def _int_limit(column: sa.Column) -> int:
    if isinstance(column.type, sqltypes.SmallInteger):
        return 2**15 - 1
    if isinstance(column.type, sqltypes.BigInteger):
        return 2**63 - 1
    return 2**31 - 1
