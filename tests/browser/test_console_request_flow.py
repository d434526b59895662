"""In Chromium, end to end: a person files and verifies an erasure request on the public pages; a
DPO signs in, finds it by searching the queue for the person's email, opens it and approves; the
worker erases the demo shop's records; the DPO sees the request completed, opens its certificate
and finds it counted on the dashboard."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.conftest import body_of, code_from

pytestmark = pytest.mark.slow

# Reloads of the request page until the worker has finished, each a real page load.
WORKER_WAIT_SECONDS = 60


def file_and_verify(page, portal, *, email: str, kind_label: str) -> str:
    page.goto(portal.url("/"))
    page.get_by_label(kind_label).check()
    page.get_by_label("Email address").fill(email)
    page.get_by_role("button", name="Send my request").click()
    page.wait_for_url(re.compile(r"/r/[^/]+/filed/$"))
    reference = page.locator("strong.reference").inner_text().strip()

    message = portal.inbox.wait_for(1)
    assert message["To"] == email
    page.get_by_label("Code from the email").fill(code_from(message))
    page.get_by_role("button", name="Confirm my request").click()
    page.wait_for_url(re.compile(rf"/r/{re.escape(reference)}/status/"))
    return reference


def sign_in(page, portal, *, username: str, password: str) -> None:
    page.goto(portal.url("/staff/"))
    page.wait_for_url(re.compile(r"/staff/login/"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/staff/(\?.*)?$"))


def test_a_person_files_an_erasure_and_a_dpo_approves_it_in_the_browser_until_it_completes(
    live_portal, new_page, screenshot
):
    person = new_page()
    reference = file_and_verify(
        person, live_portal, email="ada@demo.example", kind_label="Erasure (delete my data)"
    )
    assert "reviewing your request" in person.locator("main").inner_text()
    screenshot(person, "status-page")
    # Others' requests, filed through the public API, so the queue is not Ada's alone.
    for kind, email in [("access", "grace@demo.example"), ("access", "alan@example.com")]:
        filed = httpx.post(
            live_portal.url("/api/v1/requests/"),
            json={"kind": kind, "identity": {"email": email}},
            timeout=30,
        )
        assert filed.status_code == 201, filed.text

    dpo = new_page()
    sign_in(dpo, live_portal, username="dpo", password=live_portal.demo_password)
    assert dpo.locator("tbody tr").count() == 3
    screenshot(dpo, "queue")
    dpo.get_by_label("Reference or email address").fill("Ada@Demo.Example")
    dpo.get_by_role("button", name="Show requests").click()
    assert dpo.locator("tbody tr").count() == 1
    queue_row = dpo.get_by_role("row").filter(has_text=reference)
    assert "In review" in queue_row.inner_text()
    queue_row.get_by_role("link", name=reference).click()
    dpo.wait_for_url(re.compile(rf"/staff/requests/{re.escape(reference)}/$"))
    assert dpo.get_by_role("heading", level=1).inner_text() == f"Request {reference}"
    screenshot(dpo, "request-before")

    dpo.get_by_role("button", name="Approve the request").click()
    assert "processing has started" in dpo.get_by_role("status").inner_text()

    status = dpo.locator("dt:text-is('Status') + dd")
    for _ in range(WORKER_WAIT_SECONDS * 2):
        if status.inner_text().strip() == "Completed":
            break
        dpo.wait_for_timeout(500)
        dpo.reload()
    assert status.inner_text().strip() == "Completed", live_portal.log_tail()
    screenshot(dpo, "request-after")

    dpo.get_by_role("link", name="What was erased, held and kept").click()
    certificate = dpo.locator("body").inner_text()
    assert reference in certificate
    assert "demo-shop" in certificate

    # The dashboard counts the answer: one request closed, within the day.
    dpo.goto(live_portal.url("/staff/dashboard/"))
    median = dpo.get_by_role("region", name="Median days to close")
    assert median.locator(".tile__figure").inner_text() == "0.0"
    assert "over 1 request answered" in median.inner_text()
    assert dpo.locator("svg.chart__svg rect.chart__bar--erasure").count() == 12
    screenshot(dpo, "dashboard")


def test_a_dpo_rejects_a_request_with_a_legal_reason_and_the_person_gets_it_by_email(
    live_portal, new_page
):
    # The person's browser asks for French: the decision reaches them in French, though the DPO
    # works in English.
    person = new_page(locale="fr-FR")
    person.goto(live_portal.url("/"))
    person.get_by_label("Accès (une copie de mes données)").check()
    person.get_by_label("Adresse e-mail").fill("grace@example.com")
    person.get_by_role("button", name="Envoyer ma demande").click()
    person.wait_for_url(re.compile(r"/r/[^/]+/filed/$"))
    reference = person.locator("strong.reference").inner_text().strip()
    person.get_by_label("Code reçu par e-mail").fill(code_from(live_portal.inbox.wait_for(1)))
    person.get_by_role("button", name="Confirmer ma demande").click()
    person.wait_for_url(re.compile(rf"/r/{re.escape(reference)}/status/"))

    dpo = new_page()
    sign_in(dpo, live_portal, username="dpo", password=live_portal.demo_password)
    dpo.get_by_role("link", name=reference).click()
    reject = dpo.locator("form.action--danger")
    reject.get_by_role("button", name="Reject the request").click()
    assert "Choose the legal reason for the refusal." in reject.inner_text()

    reject = dpo.locator("form.action--danger")
    reject.get_by_label("Legal reason").select_option(value="manifestly_unfounded")
    reject.get_by_label("Message to the person").fill("Votre demande ne concerne pas nos services.")
    reject.get_by_role("button", name="Reject the request").click()
    assert "the person is told" in dpo.get_by_role("status").inner_text()
    assert dpo.locator("dt:text-is('Status') + dd").inner_text().strip() == "Rejected"

    message = live_portal.inbox.wait_for(2)
    body = body_of(message)
    assert message["To"] == "grace@example.com"
    assert "Demande manifestement infondée (art. 12(5))" in body
    assert "Votre demande ne concerne pas nos services." in body
    assert "réclamation" in body
    assert f"/r/{reference}/status/" in body
