"""The SQL connector's erasure transaction: one per store, on a connection of the connector's own.

PostgreSQL and MySQL/MariaDB `BEGIN` with a lock wait bound (a row locked by someone else becomes
a transient error after the connector's timeout instead of a hung worker); SQLite `BEGIN
IMMEDIATE`, which takes the write lock at once (waiting up to the timeout), so no other writer
can slip in between the checks and the deletes. Foreign keys are not relied on: the engine orders
and checks, so a SQLite file without `PRAGMA foreign_keys` ends the same. On PostgreSQL through
psycopg the hot statements run on the driver's own cursor (requests.connectors.sql.erase).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from requests.connectors.sql.connection import driver_of
from requests.connectors.sql.errors import is_driver_error
from requests.connectors.sql.tables import SqlTables
from requests.engine.store import StoreError, TransientStoreError

# Rows a referrer check reads per driver round trip while it streams.
REFERRER_CHUNK = 1000

# PostgreSQL's lock_not_available (lock_timeout) and MySQL's lock wait timeout: worth a retry.
_PG_LOCK_TIMEOUT = "55P03"


class SqlTransaction(SqlTables):
    """The erasure's transaction and the statements run in it (see the module docstring)."""

    _erase_conn: Connection | None = None

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

    # PostgreSQL through psycopg: the driver's own cursor, one per transaction's connection ------

    def _pg_cursor(self):
        conn = self._tx()
        cursor = conn.info.get("dsr_erase_cursor")
        if cursor is None or cursor.closed:
            cursor = conn.info["dsr_erase_cursor"] = driver_of(conn).cursor()
        return cursor

    def _pg_run(self, text: str, params: dict[str, Any], doing: str) -> int:
        try:
            cursor = self._pg_cursor()
            cursor.execute(text, params)
            return cursor.rowcount
        except Exception as exc:
            if is_driver_error(exc):
                raise self._erase_error(exc, doing) from None
            raise

    def _pg_rows(self, probe: str, whole: str, params: dict[str, Any], doing: str):
        """Rows of a SELECT: most answers are small, so the probe (`whole` with a LIMIT one past
        a chunk, prepared after a few runs) first; a larger answer is read again streamed, so
        memory stays one chunk."""
        try:
            cursor = self._pg_cursor()
            cursor.execute(probe, params)
            rows = cursor.fetchall()
            if len(rows) <= REFERRER_CHUNK:
                yield from rows
                return
            yield from cursor.stream(whole, params, size=REFERRER_CHUNK)
        except Exception as exc:
            if is_driver_error(exc):
                raise self._erase_error(exc, doing) from None
            raise
