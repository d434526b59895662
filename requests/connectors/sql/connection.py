"""The SQL connector's connections: URLs and drivers, the engine, and the pool of connections a
connector reads through.

URLs: `postgresql://` and `postgres://` use psycopg 3, `mysql://` and `mariadb://` use PyMySQL,
`sqlite:///path/to/file.db` opens an existing file (never creates an empty one). Every connection
is in autocommit: lookups only read, and the erasure begins and ends its own transaction.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url

from requests.connectors.sql.errors import translate_error
from requests.engine.store import (
    Connector,
    PermanentStoreError,
    StoreError,
    TransientStoreError,
)
from requests.engine.storemap import StoreMap

# A lookup may legitimately stream a person's millions of rows; beyond this the server gives up.
DEFAULT_STATEMENT_TIMEOUT = 600.0

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


def driver_of(conn: Connection) -> Any:
    """The DB-API connection under a SQLAlchemy connection, for the statements sent to the driver
    directly."""
    driver = conn.connection.driver_connection
    if driver is None:  # only once the pool has let it go, which an open Connection never has
        raise TransientStoreError("the database connection was closed")
    return driver


class SqlConnection(Connector):
    """What every part of the SQL connector shares: the engine, idle connections (one per result
    stream open at once, kept warm between lookups and erasures), and error translation."""

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

    # Connections ---------------------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = self._create_engine()
        return self._engine

    def _create_engine(self) -> Engine:
        kwargs: dict[str, Any] = {
            # Costs no round trip on the warm path: lookups reuse the connections in `_idle`,
            # which never go back to the pool; only a checkout from the pool (a connector's
            # first, or one after a connection broke) pings. A kept connection the server
            # dropped fails its lookup, is invalidated, and the worker drops the connector.
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

    def _psycopg(self) -> bool:
        """PostgreSQL through psycopg: the hot statements go to the driver directly (see
        requests.connectors.sql.statements)."""
        return self.family == "postgresql" and self._url.get_driver_name() == "psycopg"


def _sqlite_functions(dbapi_connection, _record) -> None:
    # SQLite's lower() folds ASCII only; Python's agrees with the normal form of every value.
    dbapi_connection.create_function(
        "dsr_lower", 1, lambda v: v.lower() if isinstance(v, str) else v, deterministic=True
    )
