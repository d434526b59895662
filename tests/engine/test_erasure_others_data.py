"""Other people's data is never collateral: records of the person that someone else's records
still refer to are kept, masked or unlinked per the map's fallback, in every engine, whether the
database enforces its foreign keys (PostgreSQL, MariaDB) or not (SQLite without the pragma).

The shop: Ada (1) shares her address (10) with Bob (2); Bob paid for one of Ada's orders (101,
payment 500, through `payments.order_id`, a reference the finder does not follow: the payment
is Bob's); Bob replied to Ada's reply (comment 3 -> 2 -> 1). Cy (3) shares nothing.
"""

from __future__ import annotations

import pytest

from requests.engine.erasure import erase_person, find_remaining
from requests.engine.storemap import StoreMap
from tests.engine.erasure_helpers import HASH_KEY, fresh_database, rows

ADA_EMAIL = "ada@example.com"

SCHEMA = [
    """CREATE TABLE addresses (
        id INTEGER PRIMARY KEY, street VARCHAR(100) NOT NULL, city VARCHAR(60))""",
    """CREATE TABLE customers (
        id INTEGER PRIMARY KEY, email VARCHAR(200) NOT NULL UNIQUE, name VARCHAR(100) NOT NULL,
        address_id INTEGER NULL, FOREIGN KEY (address_id) REFERENCES addresses (id))""",
    """CREATE TABLE orders (
        id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, delivery_name VARCHAR(100),
        total NUMERIC(10, 2) NOT NULL, FOREIGN KEY (customer_id) REFERENCES customers (id))""",
    """CREATE TABLE payments (
        id INTEGER PRIMARY KEY, order_id INTEGER NULL, payer_id INTEGER NOT NULL,
        amount NUMERIC(10, 2) NOT NULL, FOREIGN KEY (order_id) REFERENCES orders (id),
        FOREIGN KEY (payer_id) REFERENCES customers (id))""",
    """CREATE TABLE comments (
        id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, parent_id INTEGER NULL,
        body VARCHAR(500), FOREIGN KEY (customer_id) REFERENCES customers (id),
        FOREIGN KEY (parent_id) REFERENCES comments (id))""",
    "INSERT INTO addresses VALUES (10, '1 Shared Street', 'London'), (11, '9 Own Road', 'Leeds')",
    """INSERT INTO customers VALUES (1, 'Ada@Example.com', 'Ada Lovelace', 10),
        (2, 'bob@example.com', 'Bob Example', 10), (3, 'cy@example.com', 'Cy Other', 11)""",
    """INSERT INTO orders VALUES (100, 1, 'Ada L.', 30.00), (101, 1, 'Ada L.', 12.50),
        (102, 2, 'Bob E.', 99.99), (103, 3, 'Cy O.', 5.00)""",
    """INSERT INTO payments VALUES (500, 101, 2, 12.50), (501, 100, 1, 30.00),
        (502, 102, 2, 99.99), (503, 103, 3, 5.00)""",
    "INSERT INTO comments VALUES (1, 1, NULL, 'first'), (2, 1, 1, 'me again'), (3, 2, 2, 'hi Ada')",
]

TABLES = ("addresses", "customers", "orders", "payments", "comments")


def shop_map(*, addresses="keep", orders="mask", order_link_nullable=True) -> StoreMap:
    return StoreMap.model_validate(
        {
            "collections": {
                "addresses": {
                    "key": ["id"],
                    "fields": {
                        "street": {"categories": ["user.contact.address"]},
                        "city": {"categories": ["user.contact.address"]},
                    },
                    "erasure": {"fallback": addresses},
                },
                "customers": {
                    "key": ["id"],
                    "fields": {
                        "email": {"identity": "email"},
                        "name": {"identity": "name"},
                        "address_id": {
                            "references": {
                                "collection": "addresses",
                                "field": "id",
                                "follow": "parent",
                                "nullable": True,
                            }
                        },
                    },
                },
                "orders": {
                    "key": ["id"],
                    "fields": {
                        "customer_id": {"references": {"collection": "customers", "field": "id"}},
                        "delivery_name": {"categories": ["user.name"]},
                    },
                    "erasure": {"fallback": orders},
                },
                "payments": {
                    "key": ["id"],
                    "fields": {
                        # Who paid is the payment's subject; the order paid for is not.
                        "payer_id": {"references": {"collection": "customers", "field": "id"}},
                        "order_id": {
                            "references": {
                                "collection": "orders",
                                "field": "id",
                                "follow": "none",
                                "nullable": order_link_nullable,
                            }
                        },
                    },
                },
                "comments": {
                    "key": ["id"],
                    "fields": {
                        "customer_id": {"references": {"collection": "customers", "field": "id"}},
                        "parent_id": {
                            "references": {
                                "collection": "comments",
                                "field": "id",
                                "follow": "none",
                                "nullable": True,
                            }
                        },
                        "body": {"categories": ["user.content"]},
                    },
                },
            }
        }
    )


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def shop(request, tmp_path):
    """(kind, url) of the shop, in a SQLite file (foreign keys not enforced), PostgreSQL or
    MariaDB (enforced)."""
    return fresh_database(request.param, request, tmp_path, "shop", *SCHEMA)


def erase(connect, shop, store_map):
    kind, url = shop
    connector = connect(kind, url, store_map, name="shop")
    result = erase_person(
        {"shop": connector}, {"email": ADA_EMAIL}, store="shop", hash_key=HASH_KEY
    )
    return connector, result


# The keys of Bob's and Cy's rows, per table.
BOB_ROWS = {"customers": (2,), "orders": (102,), "payments": (500, 502), "comments": (3,)}
CY_ROWS = {"addresses": (11,), "customers": (3,), "orders": (103,), "payments": (503,)}


def others(url, keys_by_table):
    return {table: [row(url, table, key) for key in keys] for table, keys in keys_by_table.items()}


def row(url, table, key):
    (found,) = rows(url, table, "id = :id", {"id": key})
    return found


def test_shared_and_paid_for_records_of_the_person_stay_and_the_others_records_are_untouched(
    connect, shop
):
    _, url = shop
    bob, cy = others(url, BOB_ROWS), others(url, CY_ROWS)
    shared_address = row(url, "addresses", 10)

    connector, result = erase(connect, shop, shop_map(addresses="keep", orders="mask"))

    # Bob's and Cy's rows, all of them, exactly as before; the shared address kept as it was.
    assert others(url, BOB_ROWS) == bob
    assert others(url, CY_ROWS) == cy
    assert row(url, "addresses", 10) == shared_address
    addresses = result.collections["addresses"]
    assert (addresses.kept, addresses.deleted) == (1, 0)
    assert any(
        n.startswith("kept: 1 shared record(s), never erased") and "shared_parent" in n
        for n in addresses.notes
    )
    # The order Bob paid for is masked, not deleted; Ada's other order and payment are gone.
    orders = result.collections["orders"]
    assert (orders.deleted, orders.masked) == (1, 1)
    assert any(n.startswith("masked instead of deleted: 1 record(s)") for n in orders.notes)
    assert rows(url, "orders", "customer_id = 1") == [row(url, "orders", 101)]
    order = row(url, "orders", 101)
    assert order[2] is None and float(order[3]) == 12.50  # delivery name masked, total kept
    assert result.collections["payments"].deleted == 1
    assert rows(url, "payments", "id = 501") == []
    # Her reply to herself went; the comment Bob replied to stays, its body masked.
    comments = result.collections["comments"]
    assert (comments.deleted, comments.masked) == (1, 1)
    assert rows(url, "comments", "id = 1") == []
    assert row(url, "comments", 2)[3] is None
    # Her customer row is still referred to by her masked order: masked, not deleted.
    customer = row(url, "customers", 1)
    assert result.collections["customers"].masked == 1
    assert "ada@" not in str(customer).lower() and "lovelace" not in str(customer).lower()
    assert "ada@" not in str(result.to_json()).lower()
    assert find_remaining({"shop": connector}, {"email": ADA_EMAIL}) == {}


def test_the_nullify_fallback_unlinks_the_other_customers_payment_and_deletes_the_order(
    connect, shop
):
    _, url = shop
    payment = row(url, "payments", 500)

    _, result = erase(connect, shop, shop_map(addresses="keep", orders="nullify"))

    orders = result.collections["orders"]
    assert (orders.deleted, orders.nullified, orders.masked) == (1, 1, 0)
    assert any("setting 1 reference(s) to null" in note for note in orders.notes)
    assert rows(url, "orders", "customer_id = 1") == []
    # Bob's payment stays whole but for the link to the order that no longer exists.
    assert row(url, "payments", 500) == (500, None, *payment[2:])
    # Nothing of Ada's keeps her customer row now, except her reply Bob answered (masked).
    assert result.collections["customers"].masked == 1


def test_nullify_masks_instead_when_the_reference_may_not_be_null(connect, shop):
    _, url = shop
    payment = row(url, "payments", 500)

    _, result = erase(
        connect, shop, shop_map(addresses="keep", orders="nullify", order_link_nullable=False)
    )

    orders = result.collections["orders"]
    assert (orders.nullified, orders.masked) == (0, 1)
    assert any("needs every such reference nullable" in note for note in orders.notes)
    assert row(url, "payments", 500) == payment
    assert row(url, "orders", 101)[2] is None


def test_a_shared_address_is_never_masked_whatever_the_fallback_says(connect, shop):
    """`fallback: mask` on addresses applies to addresses that are the person's alone: the
    address Ada shares with Bob is his too, so it stays exactly as it was (issue 9)."""
    _, url = shop
    bob = row(url, "customers", 2)
    shared_address = row(url, "addresses", 10)

    _, result = erase(connect, shop, shop_map(addresses="mask", orders="mask"))

    assert row(url, "customers", 2) == bob
    assert row(url, "addresses", 10) == shared_address
    assert (result.collections["addresses"].masked, result.collections["addresses"].kept) == (0, 1)
