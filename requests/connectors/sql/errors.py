"""Driver and SQLAlchemy errors of the SQL connector, in the project's words.

The driver's text can quote the password (in a DSN) or row data (in a constraint's detail), so it
is only matched, never shown: messages name the server and what failed.
"""

from __future__ import annotations

import re

import sqlalchemy as sa

from requests.engine.store import PermanentStoreError, StoreError, TransientStoreError

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


def is_driver_error(exc: BaseException) -> bool:
    """An error raised by a driver itself (psycopg's streaming cursor, statements sent to the
    driver directly), not wrapped by SQLAlchemy."""
    module = type(exc).__module__ or ""
    return module.startswith(("psycopg", "pymysql", "sqlite3"))
