"""A person with 30,000 orders and 30,000 order lines: streamed, batched, in bounded memory.

Customer 1 (heavy@example.com) has 30,000 orders with a line each, customer 3 (light@) 3,000,
customer 2 ten: the finder's memory for the heavy one must not exceed the light one's by much.
"""

from __future__ import annotations

import math
import sqlite3
import tracemalloc

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from requests.engine.finder import find_person
from requests.engine.mapfile import load_store_map
from requests.engine.store import FIND_BATCH

ORDERS = 30_000
LIGHT = 3_000
ALL_ORDERS = ORDERS + 10 + LIGHT
SHOP_MAP = """\
collections:
  customer:
    key: [id]
    fields:
      email: {identity: email}
  orders:
    key: [id]
    fields:
      customer_id: {references: {collection: customer, field: id}}
  order_line:
    key: [id]
    fields:
      order_id: {references: {collection: orders, field: id}}
"""
SCHEMA = [
    "CREATE TABLE customer (id INTEGER PRIMARY KEY, email VARCHAR(200) NOT NULL)",
    "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, note VARCHAR(200))",
    "CREATE INDEX orders_customer ON orders (customer_id)",
    "CREATE TABLE order_line (id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL, sku VARCHAR(40))",
    "CREATE INDEX order_line_order ON order_line (order_id)",
]


def owner(order_id: int) -> int:
    return 1 if order_id <= ORDERS else 2 if order_id <= ORDERS + 10 else 3


def sqlite_shop(path) -> str:
    with sqlite3.connect(path) as conn:
        for statement in SCHEMA:
            conn.execute(statement)
        conn.executemany(
            "INSERT INTO customer VALUES (?, ?)",
            [(1, "Heavy@Example.com"), (2, "other@x.org"), (3, "light@example.com")],
        )
        conn.executemany(
            "INSERT INTO orders VALUES (?, ?, ?)",
            [(i, owner(i), f"order {i} of a long history") for i in range(1, ALL_ORDERS + 1)],
        )
        conn.executemany(
            "INSERT INTO order_line VALUES (?, ?, ?)",
            [(i, i, "SKU-0001") for i in range(1, ALL_ORDERS + 1)],
        )
    return f"sqlite:///{path}"


def mysql_shop(url: str) -> str:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for statement in SCHEMA:
            conn.exec_driver_sql(statement)
        conn.exec_driver_sql(
            "INSERT INTO customer VALUES (1, 'Heavy@Example.com'), (2, 'other@x.org'), "
            "(3, 'light@example.com')"
        )
        orders = sa.table("orders", sa.column("id"), sa.column("customer_id"), sa.column("note"))
        lines = sa.table("order_line", sa.column("id"), sa.column("order_id"), sa.column("sku"))
        ids = range(1, ALL_ORDERS + 1)
        conn.execute(
            orders.insert(),
            [
                {"id": i, "customer_id": owner(i), "note": f"order {i} of a long history"}
                for i in ids
            ],
        )
        conn.execute(lines.insert(), [{"id": i, "order_id": i, "sku": "SKU-0001"} for i in ids])
    engine.dispose()
    return url


def postgres_shop(url: str) -> str:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for statement in SCHEMA:
            conn.exec_driver_sql(statement)
        conn.exec_driver_sql(
            "INSERT INTO customer VALUES (1, 'Heavy@Example.com'), (2, 'other@x.org'), "
            "(3, 'light@example.com')"
        )
        conn.exec_driver_sql(
            "INSERT INTO orders SELECT g, CASE WHEN g <= %(n)s THEN 1 WHEN g <= %(n)s + 10 "
            "THEN 2 ELSE 3 END, 'order ' || g || ' of a long history' "
            "FROM generate_series(1, %(all)s) g",
            {"n": ORDERS, "all": ALL_ORDERS},
        )
        conn.exec_driver_sql(
            "INSERT INTO order_line SELECT g, g, 'SKU-0001' FROM generate_series(1, %(all)s) g",
            {"all": ALL_ORDERS},
        )
    engine.dispose()
    return url


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def heavy_shop(request, tmp_path, connect):
    if request.param == "sqlite":
        url = sqlite_shop(tmp_path / "shop.db")
    elif request.param == "postgresql":
        url = postgres_shop(request.getfixturevalue("postgres_database"))
    else:
        url = mysql_shop(request.getfixturevalue("mariadb_database"))
    connector = connect(request.param, url, load_store_map(SHOP_MAP), name="shop")
    assert connector.check().ok  # tables reflected before anything is counted
    return connector


class CountingSink:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.keys: set = set()

    def __call__(self, record) -> None:
        self.counts[record.collection] = self.counts.get(record.collection, 0) + 1
        if record.collection == "order_line":
            self.keys.add(record.key)


def test_every_record_is_streamed_to_the_sink_exactly_once(heavy_shop):
    sink = CountingSink()

    result = find_person({"shop": heavy_shop}, {"email": "heavy@example.com"}, sink=sink)

    expected = {"customer": 1, "orders": ORDERS, "order_line": ORDERS}
    assert sink.counts == expected
    assert result.counts == {"shop": expected}
    assert len(sink.keys) == ORDERS
    assert len(result.samples["shop"]["order_line"]) == 5


def test_lookups_are_batched_not_one_per_record(heavy_shop):
    statements: list[str] = []
    if heavy_shop.kind != "postgresql":  # psycopg's own streaming cursor bypasses the events
        event.listen(
            heavy_shop.engine,
            "before_cursor_execute",
            lambda conn, cursor, statement, *args: statements.append(statement),
        )

    result = find_person({"shop": heavy_shop}, {"email": "heavy@example.com"})

    # One lookup for the customer, one for the orders, and the 30,000 order ids in batches.
    batches = math.ceil(ORDERS / FIND_BATCH)
    assert 2 + batches <= result.lookups <= 2 + batches + 1
    if heavy_shop.kind != "postgresql":
        selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
        assert len(selects) == result.lookups
        # Placeholders of the largest IN list: ? for SQLite, %(name)s for PyMySQL.
        assert max(s.count("?") + s.count("%(") for s in selects) == FIND_BATCH


def peak_memory(connector, email: str) -> tuple[int, dict[str, int]]:
    counts: dict[str, int] = {}

    def counting(record):  # keeps nothing per record
        counts[record.collection] = counts.get(record.collection, 0) + 1

    find_person({"shop": connector}, {"email": email}, sink=counting)  # warm: statements cached
    counts.clear()
    tracemalloc.start()
    try:
        find_person({"shop": connector}, {"email": email}, sink=counting)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, counts


def test_memory_stays_flat_while_streaming_tens_of_thousands_of_records(heavy_shop):
    """Holding the 60,000 rows would take tens of megabytes, and holding the 30,000 order ids
    until the orders end about a megabyte more than for 3,000: the walk holds a batch at a time."""
    light_peak, light = peak_memory(heavy_shop, "light@example.com")
    heavy_peak, heavy = peak_memory(heavy_shop, "heavy@example.com")

    assert light["order_line"] == LIGHT and heavy["order_line"] == ORDERS
    assert heavy_peak < 4_000_000, f"peak {heavy_peak / 1e6:.2f} MB"
    assert heavy_peak - light_peak < 400_000, (
        f"10x the records took {(heavy_peak - light_peak) / 1e6:.2f} MB more"
    )
