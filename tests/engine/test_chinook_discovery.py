"""Discovery on Chinook in SQLite, PostgreSQL and MariaDB drafts a usable map without hand edits."""

from __future__ import annotations

from requests.engine.discovery import discover
from requests.engine.mapfile import dump_store_map, load_store_map
from requests.engine.storemap import Follow, RefKind, StoreMap


def discovered(connect, store) -> StoreMap:
    connector = connect(store.kind, store.url, StoreMap())
    return discover(connector)


def test_discovery_proposes_the_customer_email_as_an_email_identity(connect, chinook_store):
    draft = discovered(connect, chinook_store)

    customer = draft.collections[chinook_store["customer"]]
    assert customer.fields[chinook_store["email"]].identity == "email"
    assert customer.key == [chinook_store["customer_id"]]


def test_discovery_proposes_the_phone_columns_as_phone_identities(connect, chinook_store):
    draft = discovered(connect, chinook_store)

    for table in ("customer", "employee"):
        collection = draft.collections[chinook_store[table]]
        assert collection.fields[chinook_store["phone"]].identity == "phone"
    # Fax numbers are personal data but nobody is identified by one.
    fax = draft.collections[chinook_store["customer"]].fields.get(
        "fax" if chinook_store.kind == "postgresql" else "Fax"
    )
    assert fax is not None and fax.identity is None


def test_discovery_turns_foreign_keys_into_references_followed_to_children(connect, chinook_store):
    draft = discovered(connect, chinook_store)
    s = chinook_store

    invoice_ref = draft.collections[s["invoice"]].fields[s["customer_id"]].references
    assert (invoice_ref.collection, invoice_ref.field) == (s["customer"], s["customer_id"])
    assert invoice_ref.follow == Follow.CHILDREN
    assert not invoice_ref.inferred and not invoice_ref.nullable

    line_ref = draft.collections[s["invoice_line"]].fields[s["invoice_id"]].references
    assert (line_ref.collection, line_ref.field) == (s["invoice"], s["invoice_id"])
    assert line_ref.follow == Follow.CHILDREN


def test_discovery_makes_references_between_people_mentions(connect, chinook_store):
    """A customer's support rep and an employee's manager are other people, not their data."""
    draft = discovered(connect, chinook_store)
    s = chinook_store

    support_rep = draft.collections[s["customer"]].fields[s["support_rep_id"]].references
    assert support_rep.collection == s["employee"]
    assert support_rep.kind == RefKind.MENTION
    assert support_rep.nullable  # the column allows NULL: erasure may clear it

    manager = draft.collections[s["employee"]].fields[s["reports_to"]].references
    assert manager.kind == RefKind.MENTION
    assert any(s["support_rep_id"] in note for note in draft.notes)


def test_discovered_map_dumps_to_yaml_that_loads_back_unchanged(connect, chinook_store):
    draft = discovered(connect, chinook_store)

    text = dump_store_map(draft)

    assert load_store_map(text) == draft
    assert len(draft.collections) == 11


def test_discovery_reports_progress_once_per_table(connect, chinook_store):
    calls = []
    connector = connect(chinook_store.kind, chinook_store.url, StoreMap())

    discover(connector, progress=lambda done, total, table: calls.append((done, total, table)))

    assert [done for done, _, _ in calls] == list(range(1, 12))
    assert {total for _, total, _ in calls} == {11}
    assert chinook_store["invoice_line"] in {table for _, _, table in calls}
