"""The SQL connector on real servers: clear checks, errors that never leak the password, quoting."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import uuid
from urllib.parse import urlsplit

import psycopg
import pymysql
import pytest
import sqlalchemy as sa

from requests.connectors.sql.connection import engine_url
from requests.connectors.sql.errors import translate_error
from requests.engine.finder import find_person
from requests.engine.mapfile import load_store_map
from requests.engine.store import PermanentStoreError, TransientStoreError
from requests.engine.storemap import StoreMap
from tests.servers import POSTGRES_URL, require

PASSWORD = "s3cret-Pa55word-xyz"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_sql(url: str, *statements: str) -> None:
    """Statements as the driver reads them (psycopg: a literal % is written %%)."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


# --- URLs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "url", "driver"),
    [
        ("postgresql", "postgresql://u:p@db.example/shop", "postgresql+psycopg"),
        ("postgresql", "postgres://u:p@db.example/shop", "postgresql+psycopg"),
        ("postgresql", "postgresql+psycopg://u@db.example/shop", "postgresql+psycopg"),
        ("mysql", "mysql://u:p@db.example/crm", "mysql+pymysql"),
        ("mysql", "mariadb://u:p@db.example/crm", "mariadb+pymysql"),
        ("sqlite", "sqlite:////var/lib/app.db", "sqlite"),
    ],
)
def test_urls_get_the_projects_drivers(kind, url, driver):
    assert engine_url(kind, url).drivername == driver


def test_a_url_of_another_kind_is_refused_without_showing_it():
    with pytest.raises(PermanentStoreError) as caught:
        engine_url("postgresql", f"mysql://app:{PASSWORD}@db.example/crm")
    assert "for mysql" in str(caught.value)
    assert PASSWORD not in str(caught.value)


def test_a_malformed_url_is_refused_without_showing_it():
    with pytest.raises(PermanentStoreError) as caught:
        engine_url("postgresql", f"not a url {PASSWORD}")
    assert PASSWORD not in str(caught.value)


# --- stores that are down or refuse us --------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "scheme"), [("postgresql", "postgresql"), ("mysql", "mysql"), ("mysql", "mariadb")]
)
def test_a_store_that_is_down_gets_a_clear_check_result(connect, kind, scheme):
    url = f"{scheme}://app:{PASSWORD}@127.0.0.1:{free_port()}/shop"
    connector = connect(kind, url, StoreMap(), timeout=3)

    result = connector.check()

    assert result.ok is False
    assert "connection refused" in result.message or "cannot connect" in result.message
    assert "127.0.0.1" in result.message
    assert PASSWORD not in result.message
    assert "Traceback" not in result.message


def test_finding_in_a_store_that_is_down_is_a_transient_error_naming_the_store(connect):
    url = f"postgresql://app:{PASSWORD}@127.0.0.1:{free_port()}/shop"
    store_map = load_store_map(
        "collections:\n  customer:\n    key: [id]\n    fields:\n      email: {identity: email}\n"
    )
    connector = connect("postgresql", url, store_map, timeout=3)

    with pytest.raises(TransientStoreError) as caught:
        find_person({"shop": connector}, {"email": "ada@example.com"})

    assert str(caught.value).startswith("store shop: PostgreSQL at 127.0.0.1")
    assert PASSWORD not in str(caught.value)
    assert "ada@example.com" not in str(caught.value)


def test_the_preview_reports_a_failed_store_and_goes_on(connect, tmp_path):
    down = connect(
        "postgresql",
        f"postgresql://app@127.0.0.1:{free_port()}/x",
        load_store_map(
            "collections:\n  c:\n    key: [id]\n    fields:\n      e: {identity: email}\n"
        ),
        timeout=3,
    )
    path = tmp_path / "up.db"
    url = f"sqlite:///{path}"
    import sqlite3

    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE c (id INTEGER PRIMARY KEY, e TEXT)")
        conn.execute("INSERT INTO c VALUES (1, 'ada@example.com')")
    up = connect(
        "sqlite",
        url,
        load_store_map(
            "collections:\n  c:\n    key: [id]\n    fields:\n      e: {identity: email}\n"
        ),
    )

    result = find_person(
        {"down": down, "up": up}, {"email": "ada@example.com"}, skip_failed_stores=True
    )

    assert result.count("up", "c") == 1
    assert "connection refused" in result.errors["down"]
    assert result.complete is False


def test_an_unknown_postgresql_database_is_a_permanent_error(connect):
    require("PostgreSQL", POSTGRES_URL)
    parts = urlsplit(POSTGRES_URL)
    url = f"postgresql://{parts.netloc}/no_such_db_{uuid.uuid4().hex[:8]}"
    connector = connect("postgresql", url, StoreMap())

    result = connector.check()

    assert result.ok is False
    assert "the database does not exist" in result.message


class FakePostgres:
    """Speaks just enough of the PostgreSQL protocol to ask for a password and refuse it, as a
    server with password authentication does (the test server trusts every local user)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.passwords: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn, contextlib.suppress(OSError):
                self._session(conn)

    @staticmethod
    def _read(conn, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = conn.recv(size - len(data))
            if not chunk:
                raise OSError("closed")
            data += chunk
        return data

    def _session(self, conn) -> None:
        while True:
            (length,) = struct.unpack("!I", self._read(conn, 4))
            body = self._read(conn, length - 4)
            (code,) = struct.unpack("!I", body[:4])
            if code in (80877103, 80877104):  # SSLRequest, GSSENCRequest: not here
                conn.sendall(b"N")
                continue
            break  # the startup message
        conn.sendall(b"R" + struct.pack("!II", 8, 3))  # AuthenticationCleartextPassword
        kind = self._read(conn, 1)
        (length,) = struct.unpack("!I", self._read(conn, 4))
        self.passwords.append(self._read(conn, length - 4))
        assert kind == b"p"
        fields = b"".join(
            tag + text.encode() + b"\0"
            for tag, text in (
                (b"S", "FATAL"),
                (b"V", "FATAL"),
                (b"C", "28P01"),
                (b"M", 'password authentication failed for user "app"'),
            )
        )
        conn.sendall(b"E" + struct.pack("!I", len(fields) + 5) + fields + b"\0")

    def close(self) -> None:
        self.sock.close()


def test_a_wrong_postgresql_password_gives_a_clear_message_without_the_password(connect):
    server = FakePostgres()
    try:
        url = f"postgresql://app:{PASSWORD}@127.0.0.1:{server.port}/shop?sslmode=disable"
        connector = connect("postgresql", url, StoreMap(), timeout=5)

        result = connector.check()

        assert server.passwords, "the client never sent a password"
        assert result.ok is False
        assert "authentication failed (check the user name and password)" in result.message
        assert PASSWORD not in result.message
        with pytest.raises(PermanentStoreError):
            connector.describe()
    finally:
        server.close()


@pytest.fixture
def mariadb_user(mariadb_database):
    """A MariaDB user with a password, allowed into the test database; dropped afterwards."""
    parts = sa.engine.make_url(mariadb_database)
    user = f"dsr_{uuid.uuid4().hex[:8]}"
    admin = pymysql.connect(
        host=parts.host,
        port=parts.port,
        user=parts.username,
        password=parts.password or "",
        autocommit=True,
    )
    try:
        with admin.cursor() as cursor:
            cursor.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, "right-password"))
            cursor.execute(f"GRANT SELECT ON `{parts.database}`.* TO %s@'%%'", (user,))
        yield parts, user
    finally:
        with admin.cursor() as cursor:
            cursor.execute("DROP USER IF EXISTS %s@'%%'", (user,))
        admin.close()


def test_a_wrong_mariadb_password_gives_a_clear_message_without_the_password(connect, mariadb_user):
    parts, user = mariadb_user
    url = f"mysql://{user}:{PASSWORD}@{parts.host}:{parts.port}/{parts.database}"
    connector = connect("mysql", url, StoreMap(), timeout=5)

    result = connector.check()

    assert result.ok is False
    assert "authentication failed (check the user name and password)" in result.message
    assert PASSWORD not in result.message
    right = connect("mysql", url.replace(PASSWORD, "right-password"), StoreMap(), timeout=5)
    assert right.check().ok


def test_a_missing_sqlite_file_is_reported_and_not_created(connect, tmp_path):
    path = tmp_path / "nowhere" / "shop.db"
    connector = connect("sqlite", f"sqlite:///{path}", StoreMap())

    result = connector.check()

    assert result.ok is False
    assert "cannot be opened" in result.message
    assert not path.exists()


def test_a_statement_that_runs_too_long_is_a_transient_error(connect, postgres_database):
    run_sql(
        postgres_database,
        "CREATE TABLE customer (id INTEGER PRIMARY KEY, email TEXT)",
        "INSERT INTO customer VALUES (1, 'ada@example.com')",
    )
    store_map = load_store_map(
        "collections:\n  customer:\n    key: [id]\n    fields:\n      email: {identity: email}\n"
    )
    connector = connect(
        "postgresql", postgres_database, store_map, options={"statement_timeout": 0.5}
    )
    connector.check()  # reflect the table before it is locked
    locker = psycopg.connect(postgres_database.replace("+psycopg", ""))
    try:
        locker.execute("LOCK TABLE customer IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(TransientStoreError) as caught:
            find_person({"shop": connector}, {"email": "ada@example.com"})
    finally:
        locker.rollback()
        locker.close()
    assert "timed out" in str(caught.value)
    # The connection that failed was dropped; the next search works.
    assert find_person({"shop": connector}, {"email": "ada@example.com"}).total == 1


def test_driver_errors_are_sorted_into_transient_and_permanent():
    where, doing = "X", "y"
    deadlock = sa.exc.OperationalError(
        "SELECT", {}, pymysql.err.OperationalError(1213, "Deadlock; row 'ada@example.com'")
    )
    denied = sa.exc.OperationalError(
        "SELECT", {}, pymysql.err.OperationalError(1045, "Access denied")
    )
    gone = sa.exc.OperationalError(
        "SELECT", {}, pymysql.err.OperationalError(2006, "MySQL server has gone away")
    )
    pg_deadlock = sa.exc.OperationalError("SELECT", {}, psycopg.errors.DeadlockDetected("deadlock"))
    pg_missing = sa.exc.ProgrammingError("SELECT", {}, psycopg.errors.UndefinedTable("relation x"))

    assert isinstance(translate_error(deadlock, where=where, doing=doing), TransientStoreError)
    assert "ada@example.com" not in str(translate_error(deadlock, where=where, doing=doing))
    assert isinstance(translate_error(denied, where=where, doing=doing), PermanentStoreError)
    assert isinstance(translate_error(gone, where=where, doing=doing), TransientStoreError)
    assert isinstance(translate_error(pg_deadlock, where=where, doing=doing), TransientStoreError)
    assert isinstance(translate_error(pg_missing, where=where, doing=doing), PermanentStoreError)


# --- what the map names -------------------------------------------------------------------


def test_check_names_the_collection_of_a_missing_table_and_a_missing_column(connect, tmp_path):
    import sqlite3

    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE Customer (id INTEGER PRIMARY KEY, email TEXT)")
    store_map = load_store_map(
        """\
collections:
  customers:
    location: Customer
    key: [id]
    fields:
      email: {identity: email}
      phone: {identity: phone}
  invoices:
    location: invoice
    key: [id]
"""
    )
    connector = connect("sqlite", f"sqlite:///{path}", store_map)

    result = connector.check()

    assert result.ok is False
    assert "collection customers: column 'phone' not found in table 'Customer'" in result.problems
    assert any(
        p.startswith("collection invoices: table 'invoice' not found") for p in result.problems
    )


# --- quoted and case-sensitive names ------------------------------------------------------------

QUOTED_MAP = """\
collections:
  customers:
    location: Customer
    key: [Id]
    fields:
      E-Mail: {identity: email}
  lines:
    location: Order Lines
    key: [Line No]
    fields:
      Customer Id:
        references: {collection: customers, field: Id}
"""


def test_quoted_and_mixed_case_names_work_in_postgresql(connect, postgres_database):
    run_sql(
        postgres_database,
        'CREATE TABLE "Customer" ("Id" INTEGER PRIMARY KEY, "E-Mail" TEXT)',
        "CREATE TABLE customer (id INTEGER PRIMARY KEY, email TEXT)",
        'CREATE TABLE "Order Lines" ("Line No" INTEGER PRIMARY KEY, '
        '"Customer Id" INTEGER REFERENCES "Customer", "Discount %%" NUMERIC)',
        """INSERT INTO "Customer" VALUES (1, 'Ada@Example.com'), (2, 'bob@example.com')""",
        "INSERT INTO customer VALUES (1, 'ada@example.com')",
        """INSERT INTO "Order Lines" VALUES (10, 1, 5), (11, 1, 0), (12, 2, 0)""",
    )
    connector = connect("postgresql", postgres_database, load_store_map(QUOTED_MAP))

    result = find_person({"shop": connector}, {"email": "ada@example.com"})

    assert connector.check().ok
    assert result.counts == {"shop": {"customers": 1, "lines": 2}}
    assert result.samples["shop"]["lines"][0]["Discount %"] is not None


def test_case_sensitive_table_names_work_in_mariadb(connect, mariadb_database):
    run_sql(
        mariadb_database,
        "CREATE TABLE `Customer` (`Id` INTEGER PRIMARY KEY, `E-Mail` VARCHAR(200))",
        # Another table whose name differs only by case: MariaDB on Linux keeps them apart.
        "CREATE TABLE `customer` (`Id` INTEGER PRIMARY KEY, `E-Mail` VARCHAR(200))",
        "CREATE TABLE `Order Lines` (`Line No` INTEGER PRIMARY KEY, `Customer Id` INTEGER, "
        "FOREIGN KEY (`Customer Id`) REFERENCES `Customer` (`Id`))",
        "INSERT INTO `Customer` VALUES (1, 'Ada@Example.com'), (2, 'bob@example.com')",
        "INSERT INTO `customer` VALUES (7, 'ada@example.com')",
        "INSERT INTO `Order Lines` VALUES (10, 1), (11, 1), (12, 2)",
    )
    connector = connect("mysql", mariadb_database, load_store_map(QUOTED_MAP))

    records = []
    result = find_person({"crm": connector}, {"email": "ADA@example.com"}, sink=records.append)

    assert result.counts == {"crm": {"customers": 1, "lines": 2}}
    assert [r.key for r in records if r.collection == "customers"] == [(1,)]


def test_a_table_named_with_the_wrong_case_gets_a_hint(connect, mariadb_database):
    run_sql(mariadb_database, "CREATE TABLE `Invoice` (`Id` INTEGER PRIMARY KEY)")
    connector = connect(
        "mysql", mariadb_database, load_store_map("collections:\n  invoice:\n    key: [Id]\n")
    )

    result = connector.check()

    assert result.ok is False
    assert "did you mean 'Invoice'?" in result.problems[0]


# --- comparisons ------------------------------------------------------------------------------


def test_a_field_marked_match_exact_is_compared_as_stored(connect, postgres_database):
    run_sql(
        postgres_database,
        "CREATE TABLE customer (id INTEGER PRIMARY KEY, email TEXT)",
        "INSERT INTO customer VALUES (1, 'Ada@Example.com'), (2, 'bob@example.com')",
    )
    exact = "collections:\n  customer:\n    key: [id]\n    fields:\n"
    exact += "      email: {identity: email, match: exact}\n"
    connector = connect("postgresql", postgres_database, load_store_map(exact))

    # The store is said to hold normalised emails: Bob's is found, Ada's capitals are not.
    assert find_person({"s": connector}, {"email": "BOB@example.com"}).total == 1
    assert find_person({"s": connector}, {"email": "ada@example.com"}).total == 0


def test_check_warns_when_a_large_table_is_searched_without_an_index(connect, postgres_database):
    run_sql(
        postgres_database,
        "CREATE TABLE customer (id INTEGER PRIMARY KEY, email TEXT)",
        "INSERT INTO customer SELECT g, 'user' || g || '@example.com' "
        "FROM generate_series(1, 20000) g",
        "ANALYZE customer",
        "CREATE TABLE small (id INTEGER PRIMARY KEY, email TEXT)",
    )
    text = "collections:\n"
    for table in ("customer", "small"):
        text += f"  {table}:\n    key: [id]\n    fields:\n      email: {{identity: email}}\n"
    connector = connect("postgresql", postgres_database, load_store_map(text))

    before = connector.check()
    run_sql(postgres_database, "CREATE INDEX customer_email ON customer (lower(email))")
    after = connector.check()

    assert before.ok and after.ok
    (warning,) = before.warnings
    assert warning.startswith("table customer: email is searched as lower(email)")
    assert after.warnings == []
