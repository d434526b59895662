"""Discovery beyond declared foreign keys: names, content, partitions, and who owns what."""

from __future__ import annotations

import sqlite3

import sqlalchemy as sa

from requests.engine.discovery import (
    ColumnInfo,
    TableInfo,
    discover,
    draft_map,
    identity_from_content,
    identity_from_name,
    words,
)
from requests.engine.finder import find_person
from requests.engine.storemap import Follow, RefKind, StoreMap

# A legacy shop without a single declared foreign key.
LEGACY = [
    "CREATE TABLE customers (id INTEGER PRIMARY KEY, contact TEXT, mobile_no TEXT, "
    "full_name TEXT, zip TEXT)",
    "CREATE TABLE orders (order_id INTEGER PRIMARY KEY, CustomerId INTEGER, total NUMERIC)",
    "CREATE TABLE order_item (id INTEGER PRIMARY KEY, orderid INTEGER, product_code TEXT)",
    "CREATE TABLE categories (id INTEGER PRIMARY KEY, id_category INTEGER, label TEXT)",
    "CREATE TABLE audit_log (id INTEGER PRIMARY KEY, customer_id TEXT, at TEXT)",
    "INSERT INTO customers VALUES "
    "(1, 'ada@example.com', '+44 20 7946 0000', 'Ada Lovelace', '12227-000'), "
    "(2, 'bob@example.com', '+44 20 7946 0001', 'Bob Example', '70174'), "
    "(3, 'cy@example.org', '+33 6 12 34 56 78', 'Cy Young', 'T6G 2C7'), "
    "(4, 'di@example.net', NULL, 'Di Prince', '10010')",
    "INSERT INTO orders VALUES (10, 1, 5), (11, 1, 7), (12, 2, 9)",
    "INSERT INTO order_item VALUES (100, 10, 'TEA'), (101, 11, 'CUP'), (102, 12, 'MUG')",
]


def legacy_sqlite(path) -> str:
    with sqlite3.connect(path) as conn:
        for statement in LEGACY:
            conn.execute(statement)
    return f"sqlite:///{path}"


def test_column_names_are_split_into_words_whatever_their_style():
    assert words("SupportRepId") == ["support", "rep", "id"]
    assert words("e_mail") == ["e", "mail"]
    assert words("Order Lines") == ["order", "lines"]
    assert words("HTTPStatus") == ["http", "status"]


def test_identity_columns_are_recognised_by_name():
    def kind(name, family="text"):
        return identity_from_name(ColumnInfo(name, family))

    assert kind("Email") == "email"
    assert kind("e_mail") == "email"
    assert kind("contact_email_address") == "email"
    assert kind("mail") == "email"
    assert kind("email_verified", "other") is None
    assert kind("mobile_no") == "phone"
    assert kind("Telephone") == "phone"
    assert kind("cell") == "phone"
    assert kind("phone", "integer") == "phone"
    assert kind("full_name") == "name"
    assert kind("phone_verified") is None
    assert kind("mail_count", "integer") is None


def test_identity_columns_are_recognised_by_content():
    emails = ColumnInfo(
        "contact", "text", samples=["a@x.org", "b@y.com", "c@z.net", "d@w.io", "n/a"]
    )
    phones = ColumnInfo(
        "c3", "text", samples=["+44 20 7946 0000", "+33 6 12 34 56 78", "+1 202 555 0143"]
    )
    postcodes = ColumnInfo("zip", "text", samples=["12227-000", "70174", "10010", "75001"])
    national = ColumnInfo("n", "text", samples=["020 7946 0000", "06 12 34 56 78", "0612345678"])

    assert identity_from_content(emails) == "email"
    assert identity_from_content(phones) == "phone"
    assert identity_from_content(postcodes) is None
    # Without a country code a number could be anything (an order number, a postcode).
    assert identity_from_content(national) is None


def test_references_are_inferred_from_names_where_no_foreign_key_is_declared(connect, tmp_path):
    draft = discover(connect("sqlite", legacy_sqlite(tmp_path / "legacy.db"), StoreMap()))

    orders = draft.collections["orders"].fields["CustomerId"].references
    assert (orders.collection, orders.field, orders.inferred) == ("customers", "id", True)
    assert orders.follow == Follow.CHILDREN
    items = draft.collections["order_item"].fields["orderid"].references
    assert (items.collection, items.field, items.inferred) == ("orders", "order_id", True)
    # A text customer_id cannot point at an integer key: nothing is guessed.
    assert "customer_id" not in draft.collections["audit_log"].fields
    # A table's own id is no reference; a self-reference is a mention, not ownership.
    category = draft.collections["categories"].fields["id_category"].references
    assert category.collection == "categories" and category.kind == RefKind.MENTION
    assert any("inferred from its name" in note for note in draft.notes)


def test_identity_fields_are_proposed_from_names_and_content(connect, tmp_path):
    draft = discover(connect("sqlite", legacy_sqlite(tmp_path / "legacy.db"), StoreMap()))

    assert draft.collections["customers"].identity_fields() == {
        "contact": "email",  # by content
        "mobile_no": "phone",  # by name
        "full_name": "name",
    }


def test_the_draft_finds_a_person_through_inferred_references(connect, tmp_path):
    url = legacy_sqlite(tmp_path / "legacy.db")
    draft = discover(connect("sqlite", url, StoreMap()))

    result = find_person({"legacy": connect("sqlite", url, draft)}, {"email": "ADA@example.com"})

    assert result.counts["legacy"] == {"customers": 1, "orders": 2, "order_item": 2}


def table(name, *columns, pk=("id",), fks=()):
    from requests.engine.discovery import ForeignKeyInfo

    return TableInfo(
        name=name,
        columns=[ColumnInfo(n, f, nullable=nullable) for n, f, nullable in columns],
        primary_key=list(pk),
        foreign_keys=[ForeignKeyInfo([c], t, [r]) for c, t, r in fks],
    )


def test_references_between_people_are_mentions_but_ownership_is_ownership():
    users = table("users", ("id", "integer", False), ("email", "text", True))
    profiles = table(
        "profiles",
        ("id", "integer", False),
        ("user_id", "integer", False),
        ("phone", "text", True),
        fks=[("user_id", "users", "id")],
    )
    referrals = table(
        "users_referrals",
        ("id", "integer", False),
        ("referred_by", "integer", True),
        ("email", "text", True),
        fks=[("referred_by", "users", "id")],
    )

    draft = draft_map([users, profiles, referrals])

    # Both hold identities, but `user_id` names the table: the profile is the user's.
    assert draft.collections["profiles"].fields["user_id"].references.kind == RefKind.OWNER
    # `referred_by` is a relationship with another person.
    assert draft.collections["users_referrals"].fields["referred_by"].references.kind == (
        RefKind.MENTION
    )


def test_partitions_of_a_postgresql_table_are_discovered_as_their_parent(
    connect, postgres_database
):
    engine = sa.create_engine(postgres_database)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE customer (id INTEGER PRIMARY KEY, email TEXT)")
        conn.exec_driver_sql(
            "CREATE TABLE events (id BIGINT, customer_id INTEGER REFERENCES customer, "
            "at DATE NOT NULL, PRIMARY KEY (id, at)) PARTITION BY RANGE (at)"
        )
        conn.exec_driver_sql(
            "CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') "
            "TO ('2025-01-01')"
        )
        conn.exec_driver_sql(
            "CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') "
            "TO ('2026-01-01')"
        )
        conn.exec_driver_sql("INSERT INTO customer VALUES (1, 'ada@example.com')")
        conn.exec_driver_sql(
            "INSERT INTO events VALUES (1, 1, '2024-03-01'), (2, 1, '2025-03-01'), "
            "(3, NULL, '2025-04-01')"
        )
    engine.dispose()

    draft = discover(connect("postgresql", postgres_database, StoreMap()))

    assert set(draft.collections) == {"customer", "events"}
    ref = draft.collections["events"].fields["customer_id"].references
    assert ref.collection == "customer"
    result = find_person(
        {"pg": connect("postgresql", postgres_database, draft)}, {"email": "ada@example.com"}
    )
    assert result.counts["pg"] == {"customer": 1, "events": 2}
