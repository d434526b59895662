"""A loop of non-nullable references on real PostgreSQL: a customer who must name a first order
(customer.first_order_id, NOT NULL) and orders that must name their customer. When every foreign
key of the loop is DEFERRABLE, erasure defers them to the commit and deletes the person's rows in
the loop; when one is not, it masks them as before. Other people's rows are untouched either way.
"""

from __future__ import annotations

import pytest

from requests.engine.erasure import erase_person
from requests.engine.mapfile import load_store_map
from tests.engine.erasure_helpers import HASH_KEY, execute, rows

LOOP_MAP = """\
collections:
  customer:
    key: [id]
    fields:
      email: {identity: email}
      first_order_id: {references: {collection: orders, field: id}}
  orders:
    key: [id]
    fields:
      customer_id: {references: {collection: customer, field: id}}
      note: {categories: [user.content]}
"""


def schema(deferrable: str) -> list[str]:
    return [
        """CREATE TABLE customer (id INTEGER PRIMARY KEY, email VARCHAR(120) NOT NULL,
            first_order_id INTEGER NOT NULL)""",
        """CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL,
            note VARCHAR(60))""",
        f"""ALTER TABLE customer ADD CONSTRAINT customer_first_order FOREIGN KEY
            (first_order_id) REFERENCES orders (id) {deferrable}""",
        """ALTER TABLE orders ADD CONSTRAINT orders_customer FOREIGN KEY (customer_id)
            REFERENCES customer (id) DEFERRABLE INITIALLY IMMEDIATE""",
        # One transaction (erasure_helpers.execute): orders name customers not yet there.
        "SET CONSTRAINTS ALL DEFERRED",
        """INSERT INTO orders VALUES (10, 1, 'ada first'), (11, 1, 'ada second'),
            (20, 2, 'bob first')""",
        """INSERT INTO customer VALUES (1, 'ada@example.com', 10),
            (2, 'bob@example.com', 20)""",
    ]


def erase(connect, url):
    connector = connect("postgresql", url, load_store_map(LOOP_MAP), name="shop")
    return erase_person(
        {"shop": connector}, {"email": "ada@example.com"}, store="shop", hash_key=HASH_KEY
    )


@pytest.fixture
def database(postgres_database):
    return postgres_database


def test_a_loop_whose_foreign_keys_are_all_deferrable_is_deleted(connect, database):
    execute(database, *schema("DEFERRABLE INITIALLY IMMEDIATE"))
    bob = (rows(database, "customer", "id = 2"), rows(database, "orders", "customer_id = 2"))

    result = erase(connect, database)

    assert rows(database, "customer", "id = 1") == []
    assert rows(database, "orders", "customer_id = 1") == []
    assert (
        rows(database, "customer", "id = 2"),
        rows(database, "orders", "customer_id = 2"),
    ) == bob
    assert result.collections["customer"].deleted == 1
    assert result.collections["orders"].deleted == 2
    assert result.collections["orders"].masked == 0
    assert any("deferred" in n for n in result.collections["customer"].notes)


def test_a_loop_with_a_foreign_key_that_is_not_deferrable_is_masked(connect, database):
    execute(database, *schema("NOT DEFERRABLE"))
    bob = (rows(database, "customer", "id = 2"), rows(database, "orders", "customer_id = 2"))

    result = erase(connect, database)

    # Ada's rows stay, with her personal fields overwritten; Bob's are as they were.
    (ada,) = rows(database, "customer", "id = 1")
    assert ada[1] != "ada@example.com"
    assert [r[2] for r in rows(database, "orders", "customer_id = 1")] == [None, None]
    assert (
        rows(database, "customer", "id = 2"),
        rows(database, "orders", "customer_id = 2"),
    ) == bob
    assert result.collections["customer"].deleted == 0
    assert any("in a loop" in n for n in result.collections["customer"].notes)
