"""One store that cannot be searched never fails another store's access job (issue 9): the job
of the store that works finishes with its rows; the broken store's own job says why."""

from __future__ import annotations

import pytest

from requests.engine.ownership import find_owned
from requests.engine.store import PermanentStoreError
from requests.engine.storemap import StoreMap
from tests.engine.erasure_helpers import fresh_database

GOOD = [
    "CREATE TABLE customer (id INTEGER PRIMARY KEY, email VARCHAR(100) NOT NULL)",
    "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL)",
    "INSERT INTO customer VALUES (1, 'zoe.contain@example.org'), (2, 'yan@example.org')",
    "INSERT INTO orders VALUES (10, 1), (11, 1), (12, 2)",
]
GOOD_MAP = {
    "collections": {
        "customer": {"key": ["id"], "fields": {"email": {"identity": "email"}}},
        "orders": {
            "key": ["id"],
            "fields": {"customer_id": {"references": {"collection": "customer", "field": "id"}}},
        },
    }
}
# A map naming a table the database does not hold: every search of this store fails.
BROKEN_MAP = {
    "collections": {
        "newsletter": {"key": ["id"], "fields": {"email": {"identity": "email"}}},
    }
}


@pytest.fixture
def stores(request, tmp_path, connect):
    _, good = fresh_database("sqlite", request, tmp_path, "good", *GOOD)
    _, broken = fresh_database("sqlite", request, tmp_path, "broken", "CREATE TABLE x (id INT)")
    return {
        "good": connect("sqlite", good, StoreMap.model_validate(GOOD_MAP), name="good"),
        "broken": connect("sqlite", broken, StoreMap.model_validate(BROKEN_MAP), name="broken"),
    }


def test_the_working_stores_job_gets_its_rows_while_another_store_cannot_be_searched(stores):
    found = []

    find_owned(stores, {"email": "zoe.contain@example.org"}, sink=found.append, required="good")

    assert sorted((r.collection, r.key) for r in found) == [
        ("customer", (1,)),
        ("orders", (10,)),
        ("orders", (11,)),
    ]


def test_the_broken_stores_own_job_fails_naming_it(stores):
    with pytest.raises(PermanentStoreError) as caught:
        find_owned(stores, {"email": "zoe.contain@example.org"}, sink=[].append, required="broken")

    assert "broken" in str(caught.value)
    assert "zoe" not in str(caught.value)
