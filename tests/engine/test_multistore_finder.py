"""One request, five stores: the finder follows references across them to every record of a person.

The project's own fixture: a shop in PostgreSQL (customers, orders, order lines), a CRM in MariaDB
keyed by the shop's customer id, sessions and carts in Redis, an uploads folder with a folder per
customer, and a help desk reached over the webhook protocol. Two customers share nothing but
look alike: ids 12 and 123 (one a prefix of the other), emails differing only by the name.
"""

from __future__ import annotations

import copy
import json
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
import sqlalchemy as sa

from requests.connectors.registry import connector_for
from requests.engine.finder import find_person
from requests.engine.storemap import StoreMap
from tests.engine.webhook_server import WebhookService

SECRET = "multistore-signing-secret"
REDIS_DB = 13

ADA, BOB = 12, 123
ADA_EMAIL, BOB_EMAIL = "ada@example.com", "bob@example.com"

SHOP_SQL = [
    """CREATE TABLE customers (
        id INTEGER PRIMARY KEY, email VARCHAR(200) NOT NULL, first_name VARCHAR(100))""",
    """CREATE TABLE orders (
        id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers (id),
        total NUMERIC(10, 2) NOT NULL)""",
    """CREATE TABLE order_lines (
        id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL REFERENCES orders (id),
        sku VARCHAR(40) NOT NULL, quantity INTEGER NOT NULL)""",
    # Ada typed her email with capitals at sign-up; the portal must still find her.
    f"""INSERT INTO customers VALUES
        ({ADA}, 'Ada@Example.com', 'Ada'), ({BOB}, '{BOB_EMAIL}', 'Bob'),
        (1, 'one@example.com', 'Uno')""",
    """INSERT INTO orders VALUES
        (1001, 12, 30.00), (1002, 12, 12.50), (1003, 123, 99.99), (1004, 1, 5.00)""",
    """INSERT INTO order_lines VALUES
        (1, 1001, 'TEA', 1), (2, 1001, 'CUP', 2), (3, 1001, 'POT', 1),
        (4, 1002, 'TEA', 3), (5, 1002, 'BAG', 1),
        (6, 1003, 'MUG', 1), (7, 1003, 'TEA', 1), (8, 1003, 'CUP', 1), (9, 1003, 'BAG', 2),
        (10, 1004, 'TEA', 1)""",
]

CRM_SQL = [
    # The CRM knows people only by the shop's customer id: a reference across stores.
    """CREATE TABLE contacts (
        id INTEGER PRIMARY KEY, shop_customer_id INTEGER NOT NULL, full_name VARCHAR(200),
        phone VARCHAR(40))""",
    """CREATE TABLE notes (
        id INTEGER PRIMARY KEY, contact_id INTEGER NOT NULL, body TEXT,
        FOREIGN KEY (contact_id) REFERENCES contacts (id))""",
    """INSERT INTO contacts VALUES
        (501, 12, 'Ada Lovelace', '+442079460000'), (502, 123, 'Bob Example', '+442079460001')""",
    """INSERT INTO notes VALUES
        (1, 501, 'called about a refund'), (2, 501, 'sent a voucher'), (3, 501, 'happy now'),
        (4, 502, 'asked for an invoice')""",
]


def _run(url: str, statements: list[str]) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(sa.text(statement))
    finally:
        engine.dispose()


MAPS = {
    "shop": {
        "collections": {
            "customers": {
                "key": ["id"],
                "fields": {"email": {"identity": "email"}, "first_name": {}},
            },
            "orders": {
                "key": ["id"],
                "fields": {
                    "customer_id": {"references": {"collection": "customers", "field": "id"}}
                },
            },
            "order_lines": {
                "key": ["id"],
                "fields": {"order_id": {"references": {"collection": "orders", "field": "id"}}},
            },
        }
    },
    "crm": {
        "collections": {
            "contacts": {
                "key": ["id"],
                "fields": {
                    "shop_customer_id": {
                        "references": {"store": "shop", "collection": "customers", "field": "id"}
                    },
                    "phone": {},
                },
            },
            "notes": {
                "key": ["id"],
                "fields": {"contact_id": {"references": {"collection": "contacts", "field": "id"}}},
            },
        }
    },
    # Redis key patterns get a unique prefix per test (see `stores`).
    "sessions": {
        "collections": {
            "sessions": {
                "location": "session:{customer_id}:*",
                "key": ["key"],
                "fields": {
                    "customer_id": {
                        "references": {"store": "shop", "collection": "customers", "field": "id"}
                    }
                },
            },
            "carts": {
                "location": "cart:{email}",
                "key": ["key"],
                "fields": {"email": {"identity": "email"}},
                "options": {"ignore_case": True},
            },
        }
    },
    "uploads": {
        "collections": {
            "files": {
                "location": "{customer_id}/",
                "key": ["path"],
                "fields": {
                    "customer_id": {
                        "references": {"store": "shop", "collection": "customers", "field": "id"}
                    }
                },
            }
        }
    },
    "helpdesk": {
        "collections": {
            "tickets": {
                "key": ["id"],
                "fields": {"email": {"identity": "email"}},
            },
            "surveys": {
                "key": ["id"],
                "fields": {
                    "customer_id": {
                        "references": {"store": "shop", "collection": "customers", "field": "id"}
                    }
                },
            },
        }
    },
}

HELPDESK = {
    "tickets": [
        {"id": 1, "email": ADA_EMAIL, "subject": "Refund"},
        {"id": 2, "email": "ADA@example.com", "subject": "Where is my parcel"},
        {"id": 3, "email": BOB_EMAIL, "subject": "Invoice"},
    ],
    "surveys": [
        {"id": 71, "customer_id": ADA, "score": 9},
        {"id": 72, "customer_id": BOB, "score": 4},
    ],
}


@pytest.fixture
def redis_store(redis_server_url):
    parts = urlsplit(redis_server_url)
    url = urlunsplit((parts.scheme, parts.netloc, f"/{REDIS_DB}", "", ""))
    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    prefix = f"ms{uuid.uuid4().hex[:10]}"
    client.hset(f"{prefix}:session:{ADA}:web", mapping={"ip": "192.0.2.1", "agent": "firefox"})
    client.set(f"{prefix}:session:{ADA}:app", json.dumps({"device": "phone"}))
    client.set(f"{prefix}:session:{BOB}:web", json.dumps({"device": "laptop"}))
    client.set(f"{prefix}:session:1:web", "{}")
    client.sadd(f"{prefix}:cart:Ada@Example.com", "TEA", "POT")
    client.sadd(f"{prefix}:cart:{BOB_EMAIL}", "MUG")
    try:
        yield url, prefix
    finally:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture
def uploads(tmp_path):
    root = tmp_path / "uploads"
    for relative in [f"{ADA}/passport.png", f"{ADA}/letters/complaint.pdf", f"{BOB}/id.png"]:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"content of " + relative.encode())
    return root


@pytest.fixture
def helpdesk():
    with WebhookService(SECRET, json.loads(json.dumps(HELPDESK))) as service:
        yield service


@pytest.fixture
def stores(postgres_database, mariadb_database, redis_store, uploads, helpdesk):
    """name -> (kind, url, map, options) for the five connected stores, filled with data."""
    _run(postgres_database, SHOP_SQL)
    _run(mariadb_database, CRM_SQL)
    redis_url, prefix = redis_store
    maps = copy.deepcopy(MAPS)
    for collection in maps["sessions"]["collections"].values():
        collection["location"] = f"{prefix}:{collection['location']}"
    return {
        "shop": ("postgresql", postgres_database, StoreMap.model_validate(maps["shop"]), {}),
        "crm": ("mysql", mariadb_database, StoreMap.model_validate(maps["crm"]), {}),
        "sessions": ("redis", redis_url, StoreMap.model_validate(maps["sessions"]), {}),
        "uploads": (
            "files",
            uploads.as_uri(),
            StoreMap.model_validate(maps["uploads"]),
            {"allowed_roots": [str(uploads.parent)]},
        ),
        "helpdesk": (
            "webhook",
            helpdesk.url,
            StoreMap.model_validate(maps["helpdesk"]),
            {"secret": SECRET, "allow_private": True},
        ),
    }


@pytest.fixture
def connectors(stores):
    made = {
        name: connector_for(kind, url, store_map, name=name, timeout=10, options=options)
        for name, (kind, url, store_map, options) in stores.items()
    }
    try:
        yield made
    finally:
        for connector in made.values():
            connector.close()


def keys_by_collection(records) -> dict[tuple[str, str], set]:
    out: dict[tuple[str, str], set] = {}
    for record in records:
        out.setdefault((record.store, record.collection), set()).add(record.key)
    return out


def test_one_request_finds_the_person_in_every_store_through_cross_store_references(
    connectors, redis_store, helpdesk
):
    _, prefix = redis_store
    records = []

    result = find_person(connectors, {"email": "  ADA@example.COM "}, sink=records.append)

    assert result.complete, result.errors
    assert result.counts == {
        "shop": {"customers": 1, "orders": 2, "order_lines": 5},
        "crm": {"contacts": 1, "notes": 3},
        "sessions": {"sessions": 2, "carts": 1},
        "uploads": {"files": 2},
        "helpdesk": {"tickets": 2, "surveys": 1},
    }
    assert keys_by_collection(records) == {
        ("shop", "customers"): {(ADA,)},
        ("shop", "orders"): {(1001,), (1002,)},
        ("shop", "order_lines"): {(1,), (2,), (3,), (4,), (5,)},
        ("crm", "contacts"): {(501,)},
        ("crm", "notes"): {(1,), (2,), (3,)},
        ("sessions", "sessions"): {(f"{prefix}:session:12:web",), (f"{prefix}:session:12:app",)},
        ("sessions", "carts"): {(f"{prefix}:cart:Ada@Example.com",)},
        ("uploads", "files"): {("12/passport.png",), ("12/letters/complaint.pdf",)},
        ("helpdesk", "tickets"): {(1,), (2,)},
        ("helpdesk", "surveys"): {(71,)},
    }
    everything = json.dumps([r.data for r in records], default=str).lower()
    assert "bob" not in everything and "uno" not in everything
    # The help desk was asked by email and, through the shop, by customer id; every call signed.
    asked = [c["payload"]["identities"] for c in helpdesk.calls]
    assert {"email": ["ada@example.com"]} in asked and {"customer_id": [ADA]} in asked
    assert all(c["signature_ok"] for c in helpdesk.calls)


def test_the_other_customer_gets_only_their_own_records(connectors):
    records = []

    result = find_person(connectors, {"email": BOB_EMAIL}, sink=records.append)

    assert result.counts == {
        "shop": {"customers": 1, "orders": 1, "order_lines": 4},
        "crm": {"contacts": 1, "notes": 1},
        "sessions": {"sessions": 1, "carts": 1},
        "uploads": {"files": 1},
        "helpdesk": {"tickets": 1, "surveys": 1},
    }
    everything = json.dumps([r.data for r in records], default=str).lower()
    assert "ada" not in everything


def test_a_store_that_fails_is_reported_and_the_other_stores_are_still_searched(
    connectors, helpdesk
):
    helpdesk.fail_with = 503

    result = find_person(connectors, {"email": ADA_EMAIL}, skip_failed_stores=True)

    assert not result.complete
    assert set(result.errors) == {"helpdesk"}
    assert "HTTP 503" in result.errors["helpdesk"]
    assert result.counts["shop"] == {"customers": 1, "orders": 2, "order_lines": 5}
    assert result.counts["crm"] == {"contacts": 1, "notes": 3}
    assert result.counts["uploads"] == {"files": 2}
