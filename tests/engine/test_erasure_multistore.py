"""Erasing one person from five stores (the finder's multi-store fixture: a shop in PostgreSQL, a
CRM in MariaDB keyed by the shop's customer ids, sessions and carts in Redis, an uploads folder,
a help desk over the webhook protocol) plus a manual payroll system, store by store in
`store_order`: every record of Ada goes, Bob keeps all of his."""

# The fixtures come from the finder's multi-store test and are used by name as arguments.
# ruff: noqa: F811

from __future__ import annotations

import pytest

from requests.connectors.registry import connector_for
from requests.engine.erasure import DONE, MANUAL, PENDING, erase_person, find_remaining, store_order
from requests.engine.finder import find_person
from requests.engine.storemap import StoreMap
from tests.engine.erasure_helpers import HASH_KEY
from tests.engine.test_multistore_finder import (  # noqa: F401 - fixtures used by name
    ADA_EMAIL,
    BOB_EMAIL,
    connectors,
    helpdesk,
    redis_store,
    stores,
    uploads,
)

REQUEST = "DSR-ERASE1"
PAYROLL = StoreMap.model_validate(
    {
        "system": "Payroll (on-premises)",
        "owner": "payroll-lead@example.com",
        "collections": {"payslips": {"categories": ["financial"]}},
    }
)


@pytest.fixture
def everything(connectors):
    payroll = connector_for("manual", "manual://payroll", PAYROLL, name="payroll")
    return {**connectors, "payroll": payroll}


def erase_all(everything, identity) -> dict:
    maps = {name: c.store_map for name, c in everything.items()}
    return {
        name: erase_person(everything, identity, store=name, hash_key=HASH_KEY, request_id=REQUEST)
        for name in store_order(maps)
    }


def test_stores_whose_records_are_found_through_the_shop_are_erased_before_it(everything):
    order = store_order({name: c.store_map for name, c in everything.items()})

    assert order[-1] == "shop"
    assert set(order) == set(everything)


def test_erasing_ada_store_by_store_removes_every_record_of_hers_and_none_of_bobs(
    everything, helpdesk, uploads
):
    bob_before = find_person(everything, {"email": BOB_EMAIL}).counts

    results = erase_all(everything, {"email": ADA_EMAIL})

    deleted = {
        name: {c: e.deleted for c, e in result.collections.items() if e.deleted}
        for name, result in results.items()
    }
    assert deleted == {
        "crm": {"contacts": 1, "notes": 3},
        "sessions": {"sessions": 2, "carts": 1},
        "uploads": {"files": 2},
        "helpdesk": {"tickets": 2, "surveys": 1},
        "shop": {"customers": 1, "orders": 2, "order_lines": 5},
        "payroll": {},
    }
    assert {name: r.status for name, r in results.items()} == {
        **dict.fromkeys(("crm", "sessions", "uploads", "helpdesk", "shop"), DONE),
        "payroll": MANUAL,
    }
    assert "by hand" in results["payroll"].notes[0]
    assert find_remaining(everything, {"email": ADA_EMAIL}) == {}
    assert find_person(everything, {"email": BOB_EMAIL}).counts == bob_before
    assert not (uploads / "12").exists() and (uploads / "123" / "id.png").exists()
    # The help desk was told who (email, and the shop's customer id) for every collection.
    erases = [c["payload"] for c in helpdesk.calls if c["payload"]["action"] == "erase"]
    assert {e["collection"] for e in erases} == {"tickets", "surveys"}
    assert all(e["request_id"] == REQUEST for e in erases)
    assert all(e["identities"] == {"email": [ADA_EMAIL], "customer_id": [12]} for e in erases)


def test_a_webhook_that_erases_later_is_reported_pending_with_the_job_to_poll(everything, helpdesk):
    helpdesk.pending_erase = True

    result = erase_person(
        everything, {"email": ADA_EMAIL}, store="helpdesk", hash_key=HASH_KEY, request_id=REQUEST
    )

    assert result.status == PENDING
    # One erasure per collection, each its own job at the service.
    assert sorted(result.jobs) == [f"job-{REQUEST}-surveys", f"job-{REQUEST}-tickets"]
    assert sorted(result.to_json()["jobs"]) == sorted(result.jobs)
    later = everything["helpdesk"].status(result.jobs[0], request_id=REQUEST)
    assert later["status"] == "done"


def test_erasing_the_shop_while_the_crm_still_holds_her_records_keeps_nothing_of_bob(everything):
    """Out of order (the shop first): the CRM's contact of Ada refers to her customer row; it is
    her own record in a collection that is deleted, so it does not keep the customer."""
    result = erase_person(everything, {"email": ADA_EMAIL}, store="shop", hash_key=HASH_KEY)

    assert result.collections["customers"].deleted == 1
    assert find_person(everything, {"email": BOB_EMAIL}).counts["shop"] == {
        "customers": 1,
        "orders": 1,
        "order_lines": 4,
    }
