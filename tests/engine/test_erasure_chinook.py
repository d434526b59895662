"""Erasing Luís Gonçalves from Chinook in SQLite, PostgreSQL and MariaDB, with the discovered map
and with the invoices held for tax law: exactly his rows change, nobody else's."""

from __future__ import annotations

import pytest

from requests.engine.discovery import discover
from requests.engine.erasure import erase_person, find_remaining
from requests.engine.storemap import StoreMap
from tests.engine.chinook import LUIS_COUNTS, LUIS_EMAIL
from tests.engine.erasure_helpers import HASH_KEY, counts, rows

TAX_BASIS = "Tax law keeps invoices for 10 years (Art. 17(3)(b) GDPR)"
BILLING = ("BillingAddress", "BillingCity", "BillingState", "BillingPostalCode")


def billing(store, name: str) -> str:
    return (
        name
        if store.kind != "postgresql"
        else {
            "BillingAddress": "billing_address",
            "BillingCity": "billing_city",
            "BillingState": "billing_state",
            "BillingPostalCode": "billing_postal_code",
        }[name]
    )


@pytest.fixture
def chinook(connect, chinook_store):
    draft = discover(connect(chinook_store.kind, chinook_store.url, StoreMap()))
    return chinook_store, draft


def held_map(store, draft: StoreMap) -> StoreMap:
    """The discovered map with invoices and their lines held, billing fields masked."""
    data = draft.model_dump(mode="json", by_alias=True)
    for role in ("invoice", "invoice_line"):
        data["collections"][store[role]]["erasure"] = {"action": "hold", "basis": TAX_BASIS}
    fields = data["collections"][store["invoice"]]["fields"]
    fields[billing(store, "BillingAddress")]["mask"] = "fixed"
    fields[billing(store, "BillingAddress")]["mask_value"] = "erased"
    for name in BILLING[1:]:
        fields[billing(store, name)]["mask"] = "null"
    return StoreMap.model_validate(data)


def luis_filter(store) -> str:
    return f"{store['customer_id']} = 1"


def test_erasing_luis_deletes_one_customer_seven_invoices_38_lines_and_nothing_else(
    chinook, connect
):
    store, draft = chinook
    tables = list(draft.collections)
    others = f"{store['customer_id']} <> 1"
    before = counts(store.url, tables)
    customers = rows(store.url, store["customer"], others)
    invoices = rows(store.url, store["invoice"], others)
    employees = rows(store.url, store["employee"])
    connector = connect(store.kind, store.url, draft, name="chinook")

    result = erase_person(
        {"chinook": connector}, {"email": LUIS_EMAIL}, store="chinook", hash_key=HASH_KEY
    )

    after = counts(store.url, tables)
    removed = {
        table: before[table] - after[table] for table in tables if before[table] != after[table]
    }
    assert removed == {store[role]: n for role, n in LUIS_COUNTS.items()}
    assert {store[role]: result.collections[store[role]].deleted for role in LUIS_COUNTS} == {
        store[role]: n for role, n in LUIS_COUNTS.items()
    }
    assert result.count("masked") == result.count("kept") == result.count("held") == 0
    assert rows(store.url, store["customer"], others) == customers
    assert rows(store.url, store["invoice"], others) == invoices
    # Luís's support rep (Customer.SupportRepId -> Employee) is not his data: untouched.
    assert rows(store.url, store["employee"]) == employees
    assert find_remaining({"chinook": connector}, {"email": LUIS_EMAIL}) == {}


def test_erasing_luis_twice_changes_nothing_the_second_time_and_reports_zero(chinook, connect):
    store, draft = chinook
    connector = connect(store.kind, store.url, draft, name="chinook")
    erase_person({"chinook": connector}, {"email": LUIS_EMAIL}, store="chinook", hash_key=HASH_KEY)
    snapshot = {table: rows(store.url, table) for table in draft.collections}

    again = erase_person(
        {"chinook": connector}, {"email": LUIS_EMAIL}, store="chinook", hash_key=HASH_KEY
    )

    assert {table: rows(store.url, table) for table in draft.collections} == snapshot
    assert again.to_json()["totals"] == dict.fromkeys(
        ("deleted", "masked", "nullified", "held", "kept"), 0
    )
    assert again.statements == 0


def test_with_invoices_held_they_stay_masked_and_the_customer_is_masked_not_deleted(
    chinook, connect
):
    store, draft = chinook
    held = held_map(store, draft)
    tables = list(held.collections)
    before = counts(store.url, tables)
    others = f"{store['customer_id']} <> 1"
    customers = rows(store.url, store["customer"], others)
    invoices = rows(store.url, store["invoice"], others)
    luis_invoices = rows(store.url, store["invoice"], luis_filter(store))
    connector = connect(store.kind, store.url, held, name="chinook")

    result = erase_person(
        {"chinook": connector}, {"email": LUIS_EMAIL}, store="chinook", hash_key=HASH_KEY
    )

    assert counts(store.url, tables) == before  # nothing deleted anywhere
    invoice = result.collections[store["invoice"]]
    line = result.collections[store["invoice_line"]]
    assert (invoice.held, line.held) == (7, 38)
    assert invoice.basis == line.basis == TAX_BASIS
    assert invoice.deleted == line.deleted == 0
    # An invoice refers to the customer, so the customer cannot go: the fallback masks it.
    customer = result.collections[store["customer"]]
    assert (customer.deleted, customer.masked) == (0, 1)
    assert any("masked instead of deleted" in note for note in customer.notes)
    assert LUIS_EMAIL not in str(result.to_json())
    # His invoices: billing fields masked, everything else (amounts, dates, lines) as it was.
    masked = rows(store.url, store["invoice"], luis_filter(store))
    assert len(masked) == 7
    names = _columns(store, store["invoice"])
    for old, new in zip(luis_invoices, masked, strict=True):
        record = dict(zip(names, new, strict=True))
        assert record[billing(store, "BillingAddress")] == "erased"
        assert all(record[billing(store, n)] is None for n in BILLING[1:])
        unchanged = [n for n in names if n not in {billing(store, b) for b in BILLING}]
        assert [dict(zip(names, old, strict=True))[n] for n in unchanged] == [
            record[n] for n in unchanged
        ]
    # His customer row: email and name gone, nobody else's rows changed.
    (luis,) = rows(store.url, store["customer"], luis_filter(store))
    assert LUIS_EMAIL not in [str(v).lower() for v in luis]
    assert "Luís" not in luis and "Gonçalves" not in luis
    assert rows(store.url, store["customer"], others) == customers
    assert rows(store.url, store["invoice"], others) == invoices
    # Masking removed what identifies him: the sweep finds nothing left.
    assert find_remaining({"chinook": connector}, {"email": LUIS_EMAIL}) == {}


def test_held_records_whose_identity_is_kept_are_reported_held_by_the_sweep(chinook, connect):
    """A map that holds the customer too (identity kept): found again, but as held."""
    store, draft = chinook
    data = held_map(store, draft).model_dump(mode="json", by_alias=True)
    data["collections"][store["customer"]]["erasure"] = {"action": "hold", "basis": TAX_BASIS}
    held = StoreMap.model_validate(data)
    connector = connect(store.kind, store.url, held, name="chinook")

    result = erase_person(
        {"chinook": connector}, {"email": LUIS_EMAIL}, store="chinook", hash_key=HASH_KEY
    )
    sweep = find_remaining({"chinook": connector}, {"email": LUIS_EMAIL})

    assert result.count("held") == 46 and result.changed == 0
    assert sweep == {
        "chinook": {store[role]: {"remaining": 0, "held": n} for role, n in LUIS_COUNTS.items()}
    }


def _columns(store, table: str) -> list[str]:
    import sqlalchemy as sa

    engine = sa.create_engine(store.url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return [c["name"] for c in sa.inspect(conn).get_columns(table)]
    finally:
        engine.dispose()


def test_an_employee_is_deleted_and_the_rows_that_mention_her_only_lose_that_reference(
    chinook, connect
):
    """Jane Peacock supports 21 customers and has reports (Customer.SupportRepId and
    Employee.ReportsTo, mentions): those rows are other people's, shared with her only by the
    mention. Both columns allow null, so only that reference is cleared and her row goes;
    every other value of theirs stays (issue 9)."""
    store, draft = chinook
    tables = list(draft.collections)
    before = counts(store.url, tables)
    customer_columns = _columns(store, store["customer"])
    employee_columns = _columns(store, store["employee"])
    rep = customer_columns.index(store["support_rep_id"])
    boss = employee_columns.index(store["reports_to"])
    customers = rows(store.url, store["customer"])
    colleagues = rows(store.url, store["employee"], f"{store['employee_id']} <> 3")
    connector = connect(store.kind, store.url, draft, name="chinook")

    result = erase_person(
        {"chinook": connector},
        {"email": "jane@chinookcorp.com"},
        store="chinook",
        hash_key=HASH_KEY,
    )

    employee = result.collections[store["employee"]]
    assert (employee.deleted, employee.masked) == (1, 0)
    shared = result.collections[store["customer"]]
    # The 21 customers she was the support rep of stay: only that reference is set to null.
    assert (shared.nullified, shared.kept, shared.deleted, shared.masked) == (21, 0, 0, 0)
    assert any("mention" in note for note in shared.notes)
    assert counts(store.url, tables) == {**before, store["employee"]: before[store["employee"]] - 1}

    def without_jane(row, index):
        return tuple(None if i == index and row[i] == 3 else v for i, v in enumerate(row))

    assert rows(store.url, store["customer"]) == [without_jane(r, rep) for r in customers]
    assert rows(store.url, store["employee"], f"{store['employee_id']} <> 3") == [
        without_jane(r, boss) for r in colleagues
    ]
    assert rows(store.url, store["employee"], f"{store['employee_id']} = 3") == []
    assert find_remaining({"chinook": connector}, {"email": "jane@chinookcorp.com"}) == {}
