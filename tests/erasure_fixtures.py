"""Helpers for the erasure tests: small SQLite stores, a stand-in engine, API shortcuts."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from django.core import mail

from requests.connectors.base import TransientStoreError
from requests.engine.erasure import DONE, StoreErasure
from requests.models import ConnectedStore
from tests.conftest import code_from

PERSON = "ada@example.com"

SHOP_MAP = """
collections:
  customers:
    key: [id]
    fields:
      email: {identity: email}
      phone: {identity: phone}
  orders:
    key: [id]
    fields:
      customer_id: {references: {collection: customers, field: id}}
    erasure: {action: hold, basis: "Tax law keeps orders for 10 years (Art. 17(3)(b))"}
"""

# The CRM's contacts are found through the shop's customer ids: the shop is erased after it.
CRM_MAP = """
collections:
  contacts:
    key: [id]
    fields:
      shop_customer_id: {references: {store: shop, collection: customers, field: id}}
"""


def sqlite_shop(path: Path) -> str:
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT, phone TEXT, name TEXT);
        CREATE TABLE orders (id INTEGER PRIMARY KEY,
                             customer_id INTEGER REFERENCES customers(id), total REAL);
        INSERT INTO customers VALUES (1, 'ada@example.com', '+442079460000', 'Ada'),
                                     (2, 'bob@example.com', NULL, 'Bob');
        INSERT INTO orders VALUES (10, 1, 9.5), (11, 1, 3.0), (12, 2, 7.0);
        """
    )
    conn.commit()
    conn.close()
    return f"sqlite:///{path}"


def sqlite_crm(path: Path) -> str:
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE contacts (id INTEGER PRIMARY KEY, shop_customer_id INTEGER, note TEXT);
        INSERT INTO contacts VALUES (100, 1, 'prefers email'), (101, 2, 'called twice');
        """
    )
    conn.commit()
    conn.close()
    return f"sqlite:///{path}"


def shop_and_crm(tmp_path: Path) -> tuple[ConnectedStore, ConnectedStore]:
    shop = ConnectedStore.objects.create(
        name="shop", kind="sqlite", url=sqlite_shop(tmp_path / "shop.sqlite"), map_yaml=SHOP_MAP
    )
    crm = ConnectedStore.objects.create(
        name="crm", kind="sqlite", url=sqlite_crm(tmp_path / "crm.sqlite"), map_yaml=CRM_MAP
    )
    return shop, crm


class FakeEngine:
    """Stands in for requests.engine.erasure in tests of the pipeline around it: records which
    store was erased when, returns the results set per store, and raises what it is told to."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.results: dict[str, StoreErasure] = {}
        self.remaining: dict[str, dict[str, dict[str, int]]] = {}
        self.fail_with: dict[str, list[Exception]] = {}
        self.progress_calls = 0
        self.sweeps = 0
        self.identities: list[dict] = []
        self.request_ids: list[str | None] = []

    def result(self, store: str, kind: str = "sqlite", **collections: dict) -> StoreErasure:
        erasure = StoreErasure(store=store, kind=kind, status=DONE)
        for name, counts in collections.items():
            target = erasure.collection(name)
            for key, value in counts.items():
                setattr(target, key, value)
        self.results[store] = erasure
        return erasure

    def erase_person(
        self,
        connectors,
        identity,
        *,
        store,
        hash_key,
        phone_region=None,
        progress=None,
        request_id=None,
    ):
        assert isinstance(hash_key, bytes) and hash_key
        assert store in connectors, f"no connector for {store}"
        self.calls.append(store)
        self.identities.append(dict(identity))
        self.request_ids.append(request_id)
        failures = self.fail_with.get(store)
        if failures:
            raise failures.pop(0)
        if progress is not None:
            for _ in range(3):
                progress()
                self.progress_calls += 1
        return self.results.get(store) or StoreErasure(store=store, kind="sqlite")

    def find_remaining(self, connectors, identity, *, phone_region=None):
        self.sweeps += 1
        return self.remaining


def down(message: str = "could not connect to the store (connection refused)") -> Exception:
    return TransientStoreError(message)


def file_erasure(public_api, file_request, **identity) -> str:
    """File an erasure through the public API and verify it with the emailed code."""
    identity.setdefault("email", PERSON)
    before = len(mail.outbox)
    reference = file_request(kind="erasure", **identity)
    assert len(mail.outbox) == before + 1, "no verification email"
    response = public_api.post(
        f"/api/v1/requests/{reference}/verify/", {"code": code_from(mail.outbox[-1])}
    )
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "in_review"
    return reference
