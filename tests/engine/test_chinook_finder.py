"""The finder on Chinook, with the discovered map as it is: the same answer in every engine."""

from __future__ import annotations

import pytest

from requests.engine.discovery import discover
from requests.engine.finder import find_person
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


def test_searching_an_employee_does_not_return_the_customers_they_support(chinook):
    """Jane Peacock supports Luís and many others: those customers are not her data."""
    store, connector = chinook

    result = find_person({"chinook": connector}, {"email": "jane@chinookcorp.com"})

    assert result.count("chinook", store["employee"]) == 1
    assert result.count("chinook", store["customer"]) == 0
    assert result.count("chinook", store["invoice"]) == 0
    # Nor her manager or the employees who report to her.
    assert result.total == 1


def test_an_unknown_email_finds_nothing_in_one_lookup_per_email_field(chinook):
    _, connector = chinook

    result = find_person({"chinook": connector}, {"email": "nobody@example.org"})

    assert result.total == 0
    assert result.lookups == 2  # customer.email and employee.email, nothing to follow
