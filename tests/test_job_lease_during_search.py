"""An erasure job keeps its lease while the engine searches, not only while it erases: a search
longer than the lease would otherwise let the reconciler hand the job to a second worker."""

from __future__ import annotations

from contextlib import ExitStack

import pytest

from requests.engine.erasure import erase_person
from requests.services.store_connections import open_connectors
from tests.engine.erasure_helpers import HASH_KEY, execute
from tests.erasure_fixtures import shop_and_crm

pytestmark = pytest.mark.django_db


def test_the_search_reports_progress_for_each_record_it_finds_before_anything_is_erased(tmp_path):
    shop, _crm = shop_and_crm(tmp_path)
    # Cy is a shop customer with many orders and no CRM contact: erasing the CRM is all search.
    execute(
        shop.url,
        "INSERT INTO customers VALUES (3, 'cy@example.com', NULL, 'Cy')",
        *(f"INSERT INTO orders VALUES ({100 + n}, 3, 1.0)" for n in range(40)),
    )
    calls = []
    with ExitStack() as stack:
        connectors = open_connectors(stack)
        result = erase_person(
            connectors,
            {"email": "cy@example.com"},
            store="crm",
            hash_key=HASH_KEY,
            progress=lambda: calls.append(1),
        )
    assert sum(c.get("deleted", 0) for c in result.to_json()["collections"].values()) == 0
    assert len(calls) >= 41  # the customer and each of the 40 orders found
