"""The finder on Chinook, with the discovered map as it is: the same answer in every engine."""

from __future__ import annotations

import pytest

from requests.engine.discovery import discover
from requests.engine.finder import find_person
from requests.engine.graph import Node
from requests.engine.ownership import classify
from requests.engine.storemap import StoreMap
from tests.engine.chinook import LUIS_COUNTS, LUIS_EMAIL


@pytest.fixture
def chinook(connect, chinook_store):
    """A connector to Chinook with the map discovery drafted, untouched."""
    draft = discover(connect(chinook_store.kind, chinook_store.url, StoreMap()))
    return chinook_store, connect(chinook_store.kind, chinook_store.url, draft, name="chinook")


def luis_counts(store, result) -> dict[str, int]:
    return {role: result.count("chinook", store[role]) for role in LUIS_COUNTS}


def test_finder_returns_one_customer_seven_invoices_and_38_lines(chinook):
    store, connector = chinook

    result = find_person({"chinook": connector}, {"email": LUIS_EMAIL})

    assert luis_counts(store, result) == LUIS_COUNTS
    assert result.total == 46
    assert result.count("chinook", store["employee"]) == 0


def test_finder_trims_and_ignores_case_of_the_email(chinook):
    store, connector = chinook

    result = find_person({"chinook": connector}, {"email": "LUISG@Embraer.com.br "})

    assert luis_counts(store, result) == LUIS_COUNTS


def test_finder_streams_every_record_with_its_key_to_the_sink(chinook):
    store, connector = chinook
    records = []

    find_person({"chinook": connector}, {"email": LUIS_EMAIL}, sink=records.append)

    by_collection = {}
    for record in records:
        by_collection.setdefault(record.collection, set()).add(record.key)
    assert {name: len(keys) for name, keys in by_collection.items()} == {
        store[role]: count for role, count in LUIS_COUNTS.items()
    }
    (customer,) = [r for r in records if r.collection == store["customer"]]
    assert customer.key == (1,)
    assert customer.data[store["email"]] == LUIS_EMAIL


def test_finder_keeps_only_a_small_sample_per_collection(chinook):
    store, connector = chinook

    result = find_person({"chinook": connector}, {"email": LUIS_EMAIL}, sample_size=3)

    assert len(result.samples["chinook"][store["invoice_line"]]) == 3
    assert len(result.samples["chinook"][store["customer"]]) == 1
    preview = result.to_json()
    assert preview["stores"]["chinook"]["collections"][store["invoice"]]["count"] == 7


def test_finder_matches_a_phone_typed_differently_from_the_stored_one(chinook):
    """Stored as `+55 (12) 3923-5555`; typed in another international form."""
    store, connector = chinook

    result = find_person({"chinook": connector}, {"phone": "0055 12 3923 5555"})

    assert luis_counts(store, result) == LUIS_COUNTS


def test_the_customers_an_employee_supports_are_only_shared_rows_that_lead_nowhere(chinook):
    """Jane Peacock supports Luís and many others: those customers are not her data. They only
    mention her (support_rep_id), so she may see that they do, with everything else withheld,
    and nothing of theirs (invoices) is reached through them."""
    store, connector = chinook
    found = []

    result = find_person(
        {"chinook": connector}, {"email": "jane@chinookcorp.com"}, sink=found.append
    )
    ownership = classify({"chinook": connector}, {"email": "jane@chinookcorp.com"})

    assert result.count("chinook", store["employee"]) == 1
    assert result.count("chinook", store["invoice"]) == 0
    customers = [r for r in found if r.collection == store["customer"]]
    assert customers and all(r.via == "mention" for r in customers)
    counts = ownership.counts()["chinook"]
    assert counts[store["customer"]]["alone"] == 0
    assert counts[store["customer"]]["reasons"] == {"mention": len(customers)}
    assert counts[store["employee"]]["alone"] == 1
    # What her package would show of a customer: the reference to her row, nothing else.
    sample = customers[0]
    withheld = ownership.withheld(Node("chinook", sample.collection), sample.key, sample.data)
    assert set(sample.data) - set(withheld) == {store["support_rep_id"]}


def test_an_unknown_email_finds_nothing_in_one_lookup_per_email_field(chinook):
    _, connector = chinook

    result = find_person({"chinook": connector}, {"email": "nobody@example.org"})

    assert result.total == 0
    assert result.lookups == 2  # customer.email and employee.email, nothing to follow
