"""A SQL store's erasure is one transaction of set-based statements: it fails whole (a refusing
trigger, a killed connection, a lock held elsewhere, the caller aborting) and it costs about one
statement per batch of keys, not one per record."""

from __future__ import annotations

import math
import sqlite3
import threading
import time

import pytest
import sqlalchemy as sa

from requests.engine.erasure import ERASE_BATCH, erase_person
from requests.engine.store import PermanentStoreError, TransientStoreError
from requests.engine.storemap import StoreMap
from tests.engine.erasure_helpers import HASH_KEY, counts, engine_for, execute, rows

EMAIL = "many@example.com"
OTHER = "other@example.com"
TABLES = ("customers", "orders")

SCHEMA = [
    """CREATE TABLE customers (
        id INTEGER PRIMARY KEY, email VARCHAR(200) NOT NULL, name VARCHAR(100))""",
    """CREATE TABLE orders (
        id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, note VARCHAR(64),
        FOREIGN KEY (customer_id) REFERENCES customers (id))""",
]

MAP = {
    "collections": {
        "customers": {
            "key": ["id"],
            "fields": {"email": {"identity": "email"}, "name": {"identity": "name"}},
        },
        "orders": {
            "key": ["id"],
            "fields": {
                "customer_id": {"references": {"collection": "customers", "field": "id"}},
                "note": {"mask": "hash"},
            },
        },
    }
}


def make_store(kind: str, url: str, orders: int) -> None:
    """Customer 1 (the person) with `orders` orders; customer 2 with five of their own."""
    execute(url, *SCHEMA)
    engine = engine_for(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text("INSERT INTO customers VALUES (:id, :email, :name)"),
                [{"id": 1, "email": EMAIL, "name": "Many"}, {"id": 2, "email": OTHER, "name": "O"}],
            )
            conn.execute(
                sa.text("INSERT INTO orders VALUES (:id, :customer, :note)"),
                [{"id": i, "customer": 1, "note": f"order {i}"} for i in range(1, orders + 1)]
                + [{"id": orders + i, "customer": 2, "note": "theirs"} for i in range(1, 6)],
            )
    finally:
        engine.dispose()


def store_url(request, tmp_path, kind: str) -> str:
    if kind == "sqlite":
        path = tmp_path / "orders.sqlite"
        sqlite3.connect(path).close()
        return f"sqlite:///{path}"
    if kind == "postgresql":
        return request.getfixturevalue("postgres_database")
    return request.getfixturevalue("mariadb_database")


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def store(request, tmp_path):
    """(kind, url) of a store whose person has 2,500 orders: three batches."""
    kind = request.param
    url = store_url(request, tmp_path, kind)
    make_store(kind, url, 2500)
    return kind, url


def snapshot(url):
    return {table: rows(url, table) for table in TABLES}


def erase(connector, **kwargs):
    return erase_person(
        {"shop": connector}, {"email": EMAIL}, store="shop", hash_key=HASH_KEY, **kwargs
    )


REFUSE = {
    "sqlite": [
        """CREATE TRIGGER refuse BEFORE DELETE ON customers WHEN old.id = 1
           BEGIN SELECT RAISE(ABORT, 'customer 1 may not go'); END"""
    ],
    "postgresql": [
        """CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN RAISE EXCEPTION 'customer 1 may not go'; END $$""",
        """CREATE TRIGGER refuse BEFORE DELETE ON customers FOR EACH ROW
           WHEN (old.id = 1) EXECUTE FUNCTION refuse()""",
    ],
    "mysql": [
        """CREATE TRIGGER refuse BEFORE DELETE ON customers FOR EACH ROW BEGIN
           IF OLD.id = 1 THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'no'; END IF; END"""
    ],
}


def test_a_statement_failing_at_the_end_rolls_back_the_whole_store_as_a_permanent_error(
    connect, store
):
    """The customer goes last (after 2,500 orders in three batches); its DELETE is refused."""
    kind, url = store
    execute(url, *REFUSE[kind])
    before = snapshot(url)
    connector = connect(kind, url, StoreMap.model_validate(MAP), name="shop")

    with pytest.raises(PermanentStoreError) as failure:
        erase(connector)

    assert snapshot(url) == before
    assert failure.value.transient is False
    assert "erasing records of collection customers" in str(failure.value)
    assert EMAIL not in str(failure.value) and "may not go" not in str(failure.value)


def test_an_exception_from_progress_stops_the_erasure_and_rolls_it_back(connect, store):
    kind, url = store
    before = snapshot(url)
    connector = connect(kind, url, StoreMap.model_validate(MAP), name="shop")
    calls = []

    class LeaseLost(Exception):
        pass

    def progress():
        calls.append(1)
        if len(calls) == 2:
            raise LeaseLost

    with pytest.raises(LeaseLost):
        erase(connector, progress=progress)

    assert snapshot(url) == before
    # The connector is usable afterwards: the next run erases everything.
    assert erase(connector).collections["orders"].deleted == 2500


def _kill_when_running(url: str, done: threading.Event, killed: list) -> None:
    """From another connection: terminate the backend running the customer's DELETE."""
    engine = engine_for(url)
    deadline = time.monotonic() + 20
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            while time.monotonic() < deadline and not done.is_set():
                if url.startswith("postgresql"):
                    pid = conn.exec_driver_sql(
                        "SELECT pid FROM pg_stat_activity WHERE state = 'active' "
                        "AND query LIKE 'DELETE FROM customers%%' AND pid <> pg_backend_pid()"
                    ).scalar()
                    if pid:
                        conn.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")
                else:
                    pid = conn.exec_driver_sql(
                        "SELECT ID FROM information_schema.PROCESSLIST "
                        # MariaDB shows the statement the trigger is running.
                        "WHERE INFO LIKE 'DO SLEEP%%' AND ID <> CONNECTION_ID()"
                    ).scalar()
                    if pid:
                        conn.exec_driver_sql(f"KILL CONNECTION {int(pid)}")
                if pid:
                    killed.append(pid)
                    return
                time.sleep(0.05)
    finally:
        engine.dispose()


SLOW = {
    "postgresql": [
        """CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN PERFORM pg_sleep(30); RETURN old; END $$""",
        """CREATE TRIGGER slow BEFORE DELETE ON customers FOR EACH ROW
           WHEN (old.id = 1) EXECUTE FUNCTION slow()""",
    ],
    "mysql": [
        """CREATE TRIGGER slow BEFORE DELETE ON customers FOR EACH ROW BEGIN
           IF OLD.id = 1 THEN DO SLEEP(30); END IF; END"""
    ],
}


@pytest.mark.parametrize("kind", ["postgresql", "mysql"])
def test_a_connection_killed_during_a_slow_statement_is_transient_and_nothing_changed(
    connect, request, tmp_path, kind
):
    url = store_url(request, tmp_path, kind)
    make_store(kind, url, 2500)
    execute(url, *SLOW[kind])
    before = snapshot(url)
    connector = connect(kind, url, StoreMap.model_validate(MAP), name="shop")
    done, killed = threading.Event(), []
    killer = threading.Thread(target=_kill_when_running, args=(url, done, killed))
    killer.start()
    started = time.monotonic()
    try:
        with pytest.raises(TransientStoreError) as failure:
            erase(connector)
    finally:
        done.set()
        killer.join()

    assert killed, "the erasure's DELETE was never seen running"
    assert time.monotonic() - started < 20  # ended by the kill, not by the 30 s sleep
    assert failure.value.transient is True
    assert snapshot(url) == before
    # A retry (what the job does next) succeeds from scratch once the trigger is gone.
    execute(url, "DROP TRIGGER slow" + (" ON customers" if kind == "postgresql" else ""))
    retry = erase(connector)
    assert (retry.collections["orders"].deleted, retry.collections["customers"].deleted) == (
        2500,
        1,
    )


def test_a_row_locked_by_another_transaction_is_a_transient_error_after_the_timeout(
    connect, request, tmp_path
):
    url = store_url(request, tmp_path, "postgresql")
    make_store("postgresql", url, 10)
    before = snapshot(url)
    connector = connect("postgresql", url, StoreMap.model_validate(MAP), name="shop", timeout=2)
    engine = engine_for(url)
    try:
        with engine.connect() as other:
            other.exec_driver_sql("SELECT * FROM customers WHERE id = 1 FOR UPDATE").all()
            started = time.monotonic()
            with pytest.raises(TransientStoreError, match="locked by another transaction"):
                erase(connector)
            waited = time.monotonic() - started
            other.rollback()
    finally:
        engine.dispose()

    assert 1.5 < waited < 10
    assert snapshot(url) == before


def statement_log(connector) -> list[tuple[str, bool]]:
    """Every statement the connector sends from now on, as (text, executemany): through
    SQLAlchemy's events, and for PostgreSQL through psycopg's cursors too, because the SQL
    connector sends its hot statements to the driver directly."""
    log: list[tuple[str, bool]] = []
    if connector.family == "postgresql":
        import psycopg

        class Counting(psycopg.Cursor):
            def execute(self, query, params=None, **kwargs):
                log.append((str(query), False))
                return super().execute(query, params, **kwargs)

            def executemany(self, query, params_seq, **kwargs):
                log.append((str(query), True))
                return super().executemany(query, params_seq, **kwargs)

            def stream(self, query, params=None, **kwargs):
                log.append((str(query), False))
                return super().stream(query, params, **kwargs)

        sa.event.listen(
            connector.engine, "connect", lambda raw, _: setattr(raw, "cursor_factory", Counting)
        )
        connector.engine.dispose()  # every connection from here on is a new, counting one
    else:
        sa.event.listen(
            connector.engine,
            "before_cursor_execute",
            lambda conn, cursor, sql, params, context, many: log.append((sql, many)),
        )
    return log


@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "mysql"])
def test_ten_thousand_orders_take_about_one_statement_per_batch_not_one_per_order(
    connect, request, tmp_path, kind
):
    url = store_url(request, tmp_path, kind)
    make_store(kind, url, 10_000)
    connector = connect(kind, url, StoreMap.model_validate(MAP), name="shop")
    statements = statement_log(connector)

    result = erase(connector)

    deletes = [sql for sql, _ in statements if sql.lstrip().upper().startswith("DELETE")]
    batches = math.ceil(10_000 / ERASE_BATCH)
    assert result.collections["orders"].deleted == 10_000
    assert len(deletes) == batches + 1  # the orders' batches, then the customer
    assert not any(many for _, many in statements)
    assert not [sql for sql, _ in statements if sql.lstrip().upper().startswith("UPDATE")]
    assert counts(url, TABLES) == {"customers": 1, "orders": 5}


@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "mysql"])
def test_masking_ten_thousand_orders_with_a_keyed_hash_reads_and_writes_once_per_batch(
    connect, request, tmp_path, kind
):
    url = store_url(request, tmp_path, kind)
    make_store(kind, url, 10_000)
    data = {**MAP, "collections": dict(MAP["collections"])}
    data["collections"]["orders"] = {
        **MAP["collections"]["orders"],
        "erasure": {"action": "hold", "basis": "accounting records (Art. 17(3)(b))"},
    }
    connector = connect(kind, url, StoreMap.model_validate(data), name="shop")
    log = statement_log(connector)

    result = erase(connector)
    statements = [sql for sql, _ in log]

    updates = [sql for sql in statements if sql.lstrip().upper().startswith("UPDATE")]
    assert len(updates) == math.ceil(10_000 / ERASE_BATCH) + 1  # orders' batches, the customer
    assert result.collections["orders"].held == 10_000
    assert result.collections["customers"].masked == 1
    notes = {note for (_, _, note) in rows(url, "orders", "customer_id = 1")}
    assert len(notes) == 10_000 and all(len(n) == 64 for n in notes)
    assert "order 1" not in notes
    assert {note for (_, _, note) in rows(url, "orders", "customer_id = 2")} == {"theirs"}
