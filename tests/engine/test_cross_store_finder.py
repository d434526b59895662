"""One person across two SQL stores: a shop in PostgreSQL and a CRM in MariaDB that knows the
shop's customers only by their id (kept as text), with phones as people typed them."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from requests.engine.finder import find_person
from requests.engine.mapfile import load_store_map

SHOP = [
    "CREATE TABLE customers (id INTEGER PRIMARY KEY, email VARCHAR(200), full_name VARCHAR(200))",
    "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL "
    "REFERENCES customers (id))",
    "INSERT INTO customers VALUES (12, 'ada@example.com', 'Ada Lovelace'), "
    "(123, 'bob@example.com', 'Bob Example'), (1, 'cy@example.com', 'Ada Lovelace-Byron')",
    "INSERT INTO orders VALUES (1001, 12), (1002, 12), (1003, 123)",
]
CRM = [
    "CREATE TABLE contacts (id INTEGER PRIMARY KEY, shop_customer_id VARCHAR(20), "
    "phone VARCHAR(40))",
    "CREATE TABLE notes (id INTEGER PRIMARY KEY, contact_id INTEGER NOT NULL, body TEXT, "
    "FOREIGN KEY (contact_id) REFERENCES contacts (id))",
    # Ada's phone as a British clerk typed it; Bob's in international form with dots.
    "INSERT INTO contacts VALUES (501, '12', '020 7946 0000'), (502, '123', '+44.20.7946.0001'), "
    "(503, NULL, '+44 20 7946 0000 ext')",
    "INSERT INTO notes VALUES (1, 501, 'refund'), (2, 501, 'voucher'), (3, 502, 'invoice')",
]
SHOP_MAP = """\
collections:
  customers:
    key: [id]
    fields:
      email: {identity: email}
      full_name: {identity: name}
  orders:
    key: [id]
    fields:
      customer_id: {references: {collection: customers, field: id}}
"""
CRM_MAP = """\
collections:
  contacts:
    key: [id]
    fields:
      shop_customer_id:
        references: {store: shop, collection: customers, field: id, follow: both}
      phone: {identity: phone}
  notes:
    key: [id]
    fields:
      contact_id: {references: {collection: contacts, field: id}}
"""


def run(url: str, statements: list[str]) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)
    engine.dispose()


@pytest.fixture
def stores(connect, postgres_database, mariadb_database):
    run(postgres_database, SHOP)
    run(mariadb_database, CRM)
    names = {"shop", "crm"}
    return {
        "shop": connect("postgresql", postgres_database, load_store_map(SHOP_MAP), name="shop"),
        "crm": connect(
            "mysql", mariadb_database, load_store_map(CRM_MAP, store_names=names), name="crm"
        ),
    }


def test_an_email_in_the_shop_finds_the_crm_records_through_the_cross_store_reference(stores):
    records = []

    result = find_person(stores, {"email": "Ada@Example.com"}, sink=records.append)

    assert result.counts == {
        "shop": {"customers": 1, "orders": 2},
        "crm": {"contacts": 1, "notes": 2},
    }
    assert {(r.store, r.collection, r.key) for r in records if r.store == "crm"} == {
        ("crm", "contacts", (501,)),
        ("crm", "notes", (1,)),
        ("crm", "notes", (2,)),
    }


def test_a_phone_typed_nationally_in_the_crm_finds_the_person_in_both_stores(stores):
    result = find_person(stores, {"phone": "+44 20 7946 0000"}, phone_region="GB")

    assert result.counts == {
        "shop": {"customers": 1, "orders": 2},
        "crm": {"contacts": 1, "notes": 2},
    }


def test_without_a_default_region_a_national_number_cannot_be_read(stores):
    result = find_person(stores, {"phone": "+44 20 7946 0000"})

    assert result.total == 0


def test_a_name_matches_whatever_its_spacing_and_case_but_only_as_a_whole(stores):
    result = find_person(stores, {"name": "  ada   LOVELACE "})

    assert result.count("shop", "customers") == 1
    assert result.count("shop", "orders") == 2


def test_each_store_counts_only_its_own_collections(stores):
    result = find_person(stores, {"email": "bob@example.com"})

    assert result.counts["crm"] == {"contacts": 1, "notes": 1}
    assert result.counts["shop"] == {"customers": 1, "orders": 1}
