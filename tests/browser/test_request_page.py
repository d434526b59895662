"""In Chromium, against the running portal and its worker: a DPO opens an erasure request's page,
finds the identity masked and reveals it, reads the preview of the demo shop (counts, what
erasure will do, a sample opened in place), approves, and reads the timeline's sentences, in
English and then in French, until the worker has completed the request; on a phone the page
keeps to the screen's width."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.browser.conftest import PHONE
from tests.browser.test_console_request_flow import sign_in
from tests.conftest import code_from

pytestmark = pytest.mark.slow

# Reloads of the request page until the worker has finished, each a real page load.
WORKER_WAIT_SECONDS = 60


def _file_and_verify(portal, *, email: str, phone: str) -> str:
    filed = httpx.post(
        portal.url("/api/v1/requests/"),
        json={"kind": "erasure", "identity": {"email": email, "phone": phone}},
        timeout=30,
    )
    assert filed.status_code == 201, filed.text
    reference = filed.json()["reference"]
    code = code_from(portal.inbox.wait_for(1))
    verified = httpx.post(
        portal.url(f"/api/v1/requests/{reference}/verify/"), json={"code": code}, timeout=30
    )
    assert verified.status_code == 200, verified.text
    return reference


def test_a_dpo_reveals_the_identity_reads_the_preview_approves_and_reads_the_timeline(
    live_portal, new_page
):
    reference = _file_and_verify(live_portal, email="grace@demo.example", phone="+14155550100")
    dpo = new_page()
    sign_in(dpo, live_portal, username="dpo", password=live_portal.demo_password)
    dpo.goto(live_portal.url(f"/staff/requests/{reference}/"))

    # The identity is masked until revealed; the reveal names the DPO in the timeline.
    identity = dpo.get_by_role("region", name="Identity given")
    assert "g***@demo.example" in identity.inner_text()
    assert "grace@demo.example" not in dpo.locator("main").inner_text()
    identity.get_by_role("button", name="Reveal the identity").click()
    identity = dpo.get_by_role("region", name="Identity given")
    assert "grace@demo.example" in identity.inner_text()
    assert "+14155550100" in identity.inner_text()

    # The preview: the shop's collections with counts and what erasure will do to each.
    preview = dpo.get_by_role("region", name="Preview: what each store holds")
    customers = preview.get_by_role("row").filter(has=dpo.locator("th", has_text="customers"))
    orders = preview.get_by_role("row").filter(
        has=dpo.locator("th", has_text=re.compile("^orders"))
    )
    assert re.search(r"\b1\b", customers.locator("td.numeric").inner_text())
    assert "Held: Accounting law requires orders to be kept for 10 years" in orders.inner_text()
    sample = customers.locator("details")
    assert not sample.locator("table").is_visible()
    sample.locator("summary").click()
    assert "grace@demo.example" in sample.locator("table").inner_text()

    dpo.get_by_role("button", name="Approve the request").click()
    assert "processing has started" in dpo.get_by_role("status").first.inner_text()

    status = dpo.locator("dt:text-is('Status') + dd")
    for _ in range(WORKER_WAIT_SECONDS * 2):
        if status.inner_text().strip() == "Completed":
            break
        dpo.wait_for_timeout(500)
        dpo.reload()
    assert status.inner_text().strip() == "Completed", live_portal.log_tail()

    timeline = dpo.get_by_role("region", name="Timeline")
    text = timeline.inner_text()
    for sentence in (
        "Request for erasure filed, with Email address, Phone number.",
        "The person confirmed their email address with a code sent by email.",
        "Identity shown in clear: Email address, Phone number.",
        "Request approved; processing started.",
        "demo-shop: erasure done.",
        "Request completed; the person is told.",
    ):
        assert sentence in text, text
    assert not re.search(r"\b(request|job|identity)\.[a-z_]+", text)
    counts = timeline.get_by_role("table", name="Records in demo-shop")
    assert counts.get_by_role("columnheader").all_inner_texts()[:3] == [
        "Collection",
        "Deleted",
        "Masked",
    ]

    # The same page in French, through the language switcher.
    dpo.get_by_role("button", name="Français").click()
    french = dpo.get_by_role("region", name="Historique").inner_text()
    assert "Demande d\N{RIGHT SINGLE QUOTATION MARK}effacement déposée" in french
    assert "Demande approuvée ; le traitement a commencé." in french
    assert "demo-shop : effacement terminé." in french

    # On a phone the page keeps to the screen: tables stack or scroll inside themselves.
    phone = new_page(viewport=PHONE)
    sign_in(phone, live_portal, username="dpo", password=live_portal.demo_password)
    phone.goto(live_portal.url(f"/staff/requests/{reference}/"))
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
