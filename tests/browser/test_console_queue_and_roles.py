"""In Chromium: the queue on a phone keeps its column names; a DPO makes a reviewer account on the
staff accounts page, and the reviewer signs in with it and is refused that page."""

from __future__ import annotations

import httpx
import pytest

from tests.browser.conftest import PHONE
from tests.browser.test_console_request_flow import sign_in

pytestmark = pytest.mark.slow


def _file_through_the_api(portal, email: str) -> str:
    response = httpx.post(
        portal.url("/api/v1/requests/"),
        json={"kind": "access", "identity": {"email": email}},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return response.json()["reference"]


def test_the_queue_keeps_its_column_names_on_a_phone(live_portal, new_page, screenshot):
    reference = _file_through_the_api(live_portal, "phone@example.com")
    dpo = new_page(viewport=PHONE)
    sign_in(dpo, live_portal, username="dpo", password=live_portal.demo_password)

    row = dpo.get_by_role("row").filter(has_text=reference)
    assert dpo.locator("thead").is_hidden()
    labels = row.locator("th, td").evaluate_all(
        "cells => cells.map(cell => getComputedStyle(cell, '::before').content)"
    )
    assert labels == [
        '"Reference"',
        '"Kind"',
        '"Status"',
        '"Received"',
        '"Due"',
        '"Assigned to"',
        '"Select"',
    ]
    # Stacked, not squeezed: the row is no wider than the phone's screen.
    assert row.bounding_box()["width"] <= PHONE["width"]
    screenshot(dpo, "queue-phone")


def test_a_dpo_makes_a_reviewer_who_then_cannot_open_the_staff_accounts_page(
    live_portal, new_page, screenshot
):
    dpo = new_page()
    sign_in(dpo, live_portal, username="dpo", password=live_portal.demo_password)
    dpo.get_by_role("link", name="Staff accounts").click()
    dpo.get_by_label("Username").fill("rita")
    dpo.get_by_label("Role", exact=True).select_option(label="Reviewer")
    dpo.get_by_role("button", name="Create the account").click()
    password = dpo.locator("#first-password").inner_text().strip()
    screenshot(dpo, "staff-accounts")
    assert dpo.get_by_label("Role of rita").input_value() == "reviewer"

    reviewer = new_page()
    sign_in(reviewer, live_portal, username="rita", password=password)
    assert "Signed in as rita (Reviewer)" in reviewer.locator("header").inner_text()
    assert reviewer.get_by_role("link", name="Staff accounts").count() == 0
    refused = reviewer.goto(live_portal.url("/staff/users/"))
    assert refused.status == 403
