"""Rows of a table with no key all have the key `()`: ownership tells them apart by their content
(and how many times the same content came), so every one of the person's rows is in the package
and the counts, not only the first. Erasure still refuses to erase them one by one.

The shop: customers; `visits` (no key) points at the customer only, so its rows are the
customer's as they arrive; `shared_notes` (no key) points at a customer and at an order, so its
rows have two owners and are held until ownership is decided.
"""

from __future__ import annotations

import pytest

from requests.engine.erasure import erase_person, find_remaining
from requests.engine.graph import Node
from requests.engine.ownership import ALONE, SHARED, classify, find_owned
from requests.engine.store import PermanentStoreError
from requests.engine.storemap import StoreMap
from tests.engine.erasure_helpers import HASH_KEY, counts, fresh_database

ANN = "ann.keyless@example.org"
BO = "bo.keyless@example.org"

SCHEMA = [
    "CREATE TABLE customer (id INTEGER PRIMARY KEY, email VARCHAR(100) NOT NULL)",
    """CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL,
        FOREIGN KEY (customer_id) REFERENCES customer (id))""",
    """CREATE TABLE visits (customer_id INTEGER NOT NULL, page VARCHAR(100),
        FOREIGN KEY (customer_id) REFERENCES customer (id))""",
    """CREATE TABLE shared_notes (customer_id INTEGER NOT NULL, order_id INTEGER NOT NULL,
        note VARCHAR(100),
        FOREIGN KEY (customer_id) REFERENCES customer (id),
        FOREIGN KEY (order_id) REFERENCES orders (id))""",
    f"INSERT INTO customer VALUES (1, '{ANN}'), (2, '{BO}')",
    "INSERT INTO orders VALUES (10, 1), (20, 2)",
    # Ann's two visits, one of them twice to the same page (rows identical in every column).
    "INSERT INTO visits VALUES (1, '/home'), (1, '/cart'), (1, '/cart'), (2, '/home')",
    # Ann's notes on her own order (two), Bo's note on Ann's order, Ann's note on Bo's order.
    """INSERT INTO shared_notes VALUES (1, 10, 'gift wrap'), (1, 10, 'ring twice'),
        (2, 10, 'bo on ann'), (1, 20, 'ann on bo')""",
]


def _map(**no_key) -> StoreMap:
    ref = {"references": {"collection": "customer", "field": "id"}}
    return StoreMap.model_validate(
        {
            "collections": {
                "customer": {"key": ["id"], "fields": {"email": {"identity": "email"}}},
                "orders": {"key": ["id"], "fields": {"customer_id": ref}},
                "visits": {"key": [], "fields": {"customer_id": ref}},
                "shared_notes": {
                    "key": [],
                    "fields": {
                        "customer_id": ref,
                        "order_id": {"references": {"collection": "orders", "field": "id"}},
                    },
                },
            }
        }
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def shop(request, tmp_path, connect):
    kind, url = fresh_database(request.param, request, tmp_path, "keyless", *SCHEMA)
    return url, {"shop": connect(kind, url, _map(), name="shop")}


def test_the_package_holds_every_row_of_a_keyless_table(shop):
    _, stores = shop
    found = []

    find_owned(stores, {"email": ANN}, sink=found.append)

    visits = sorted(r.data["page"] for r in found if r.collection == "visits")
    assert visits == ["/cart", "/cart", "/home"]
    notes = sorted(
        (r.data["note"], r.data["customer_id"]) for r in found if r.collection == "shared_notes"
    )
    # Her two notes on her order in full; the two shared ones with the other's part withheld.
    assert [n for n, _ in notes] == ["ann on bo", "bo on ann", "gift wrap", "ring twice"]
    assert all(str(BO) not in str(r.data) for r in found)


def test_the_counts_tell_the_keyless_rows_apart(shop):
    _, stores = shop

    counts_ = classify(stores, {"email": ANN}).counts()["shop"]

    assert counts_["visits"][ALONE] == 3
    assert counts_["shared_notes"][ALONE] == 2
    assert counts_["shared_notes"][SHARED] == 2


def test_erasure_still_refuses_a_keyless_table_and_changes_nothing(shop):
    url, stores = shop
    before = counts(url, ["customer", "orders", "visits", "shared_notes"])

    with pytest.raises(PermanentStoreError, match="no key"):
        erase_person(stores, {"email": ANN}, store="shop", hash_key=HASH_KEY)

    assert counts(url, ["customer", "orders", "visits", "shared_notes"]) == before
    remaining = find_remaining(stores, {"email": ANN})["shop"]
    assert remaining["visits"]["remaining"] == 3


# A keyless table that owns the rows it points at (`follow: parent`): an address belongs to the
# deliveries pointing at it, and is the person's alone only when every one of them is hers.
PARENT_SCHEMA = [
    "CREATE TABLE customer (id INTEGER PRIMARY KEY, email VARCHAR(100) NOT NULL)",
    "CREATE TABLE address (id INTEGER PRIMARY KEY, street VARCHAR(100))",
    """CREATE TABLE delivery (customer_id INTEGER NOT NULL, address_id INTEGER NOT NULL,
        FOREIGN KEY (customer_id) REFERENCES customer (id),
        FOREIGN KEY (address_id) REFERENCES address (id))""",
    f"INSERT INTO customer VALUES (1, '{ANN}'), (2, '{BO}')",
    "INSERT INTO address VALUES (5, 'ann street'), (6, 'shared street'), (7, 'bo street')",
    "INSERT INTO delivery VALUES (1, 5), (1, 5), (1, 6), (2, 6), (2, 7)",
]
PARENT_MAP = {
    "collections": {
        "customer": {"key": ["id"], "fields": {"email": {"identity": "email"}}},
        "address": {"key": ["id"], "fields": {"street": {}}},
        "delivery": {
            "key": [],
            "fields": {
                "customer_id": {"references": {"collection": "customer", "field": "id"}},
                "address_id": {
                    "references": {"collection": "address", "field": "id", "follow": "parent"}
                },
            },
        },
    }
}


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_row_owned_through_a_keyless_tables_parent_reference(kind, request, tmp_path, connect):
    kind, url = fresh_database(kind, request, tmp_path, "parent", *PARENT_SCHEMA)
    stores = {"shop": connect(kind, url, StoreMap.model_validate(PARENT_MAP), name="shop")}

    ownership = classify(stores, {"email": ANN})

    found = ownership.counts()["shop"]
    assert found["delivery"][ALONE] == 3
    assert ownership.of(Node("shop", "address"), (5,)) == ALONE
    assert ownership.of(Node("shop", "address"), (6,)) == SHARED
    assert ownership.of(Node("shop", "address"), (7,)) is None
