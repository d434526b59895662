"""In Chromium, end to end, with two-factor sign-in required for staff: a person files and
verifies an erasure request on the public pages, and two others access requests (one in French);
a DPO signs in with a second factor, finds Ada's request by searching the queue for her email,
opens it, reads the preview (the demo shop's customers: one record), approves it and the access
requests; the worker erases the demo shop's records and builds the packages; the DPO sees the
request completed, opens its certificate, which axe-core checks with each package's index.html in
English and French, and finds it counted on the dashboard."""

from __future__ import annotations

import re
import time
import zipfile

import httpx
import pytest

from tests.browser.conftest import severe_violations, totp_code
from tests.conftest import body_of, code_from

pytestmark = pytest.mark.slow

# Reloads of the request page until the worker has finished, each a real page load.
WORKER_WAIT_SECONDS = 60


@pytest.fixture
def live_portal_settings() -> dict[str, str]:
    return {"PORTAL_STAFF_2FA": "required"}


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


def sign_in(page, portal, *, username: str, password: str) -> bool:
    """Sign in on the console; where a second factor is required and none is set up yet, set up
    an authenticator from the page's secret and confirm it with its code. True when a second
    factor was asked for."""
    page.goto(portal.url("/staff/"))
    page.wait_for_url(re.compile(r"/staff/login/"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/staff/((\?.*)?|two-factor/.*)$"))
    if "/staff/two-factor/" not in page.url:
        return False
    page.get_by_label("Code").fill(totp_code(page.locator("#totp-secret").inner_text()))
    page.get_by_role("button", name="Confirm the app").click()
    page.get_by_role("link", name="Continue to the console").click()
    page.wait_for_url(re.compile(r"/staff/(\?.*)?$"))
    return True


def _file_and_verify_by_api(portal, *, email: str, language: str) -> str:
    filed = httpx.post(
        portal.url("/api/v1/requests/"),
        json={"kind": "access", "identity": {"email": email}, "language": language},
        timeout=30,
    )
    assert filed.status_code == 201, filed.text
    reference = filed.json()["reference"]
    deadline = time.monotonic() + 30
    while True:
        mine = [message for message in portal.inbox.messages if message["To"] == email]
        if mine:
            break
        assert time.monotonic() < deadline, f"no code reached {email}"
        portal.inbox.wait_for(len(portal.inbox.messages) + 1, timeout=30)
    verified = httpx.post(
        portal.url(f"/api/v1/requests/{reference}/verify/"),
        json={"code": code_from(mine[0])},
        timeout=30,
    )
    assert verified.status_code == 200, verified.text
    return reference


def _wait_until_completed(page, portal, reference: str) -> None:
    page.goto(portal.url(f"/staff/requests/{reference}/"))
    status = page.locator("dt:text-is('Status') + dd")
    for _ in range(WORKER_WAIT_SECONDS * 2):
        if status.inner_text().strip() == "Completed":
            return
        page.wait_for_timeout(500)
        page.reload()
    assert status.inner_text().strip() == "Completed", portal.log_tail()


def _landmarks(page) -> list[str]:
    return page.evaluate(
        "() => ['header', 'main', 'footer'].filter(tag => document.querySelector(`body > ${tag}`))"
    )


def test_a_person_files_an_erasure_and_a_dpo_approves_it_in_the_browser_until_it_completes(
    live_portal, new_page, screenshot, axe_source, tmp_path
):
    person = new_page()
    reference = file_and_verify(
        person, live_portal, email="ada@demo.example", kind_label="Erasure (delete my data)"
    )
    assert "reviewing your request" in person.locator("main").inner_text()
    screenshot(person, "status-page")
    # Others' access requests, through the public API, so the queue is not Ada's alone; their
    # packages are checked below, one in each language.
    packages = {
        "en": _file_and_verify_by_api(live_portal, email="grace@demo.example", language="en"),
        "fr": _file_and_verify_by_api(live_portal, email="alan@demo.example", language="fr"),
    }

    dpo = new_page()
    assert sign_in(dpo, live_portal, username="dpo", password=live_portal.demo_password)
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

    # The preview, read before deciding: the demo shop holds one customer record of Ada's.
    preview = dpo.get_by_role("region", name="Preview: what each store holds")
    assert "demo-shop" in preview.inner_text()
    customers = preview.get_by_role("row").filter(has=dpo.locator("th", has_text="customers"))
    assert customers.locator("td.numeric").inner_text().strip() == "1"
    assert customers.locator("td[data-label=Erasure]").inner_text().strip()
    screenshot(dpo, "request-before")

    dpo.get_by_role("button", name="Approve the request").click()
    assert "processing has started" in dpo.get_by_role("status").inner_text()
    for access_reference in packages.values():
        dpo.goto(live_portal.url(f"/staff/requests/{access_reference}/"))
        dpo.get_by_role("button", name="Approve the request").click()
        assert "processing has started" in dpo.get_by_role("status").inner_text()

    _wait_until_completed(dpo, live_portal, reference)
    screenshot(dpo, "request-after")

    dpo.get_by_role("link", name="What was erased, held and kept").click()
    certificate = dpo.locator("body").inner_text()
    assert reference in certificate
    assert "demo-shop" in certificate
    certificate_url = dpo.url
    # The same DPO in a French browser: the session's cookies in a context whose locale is French.
    french = new_page(locale="fr-FR")
    french.context.add_cookies(dpo.context.cookies())
    french.goto(certificate_url)
    heading = french.locator("h1").inner_text()
    assert heading == "Certificat d\N{RIGHT SINGLE QUOTATION MARK}effacement"
    found = {}
    for language, page in (("en", dpo), ("fr", french)):
        assert page.evaluate("document.documentElement.lang") == language
        assert _landmarks(page) == ["header", "main", "footer"]
        found[f"certificate {language}"] = severe_violations(page, axe_source)

    # Each package as the person gets it: the ZIP the worker built, its report opened from disk.
    for language, access_reference in packages.items():
        _wait_until_completed(dpo, live_portal, access_reference)
        package_url = f"/api/v1/staff/requests/{access_reference}/package/"
        download = dpo.request.get(live_portal.url(package_url))
        assert download.status == 200, download.text()
        archive = tmp_path / f"package-{language}.zip"
        archive.write_bytes(download.body())
        folder = tmp_path / f"package-{language}"
        with zipfile.ZipFile(archive) as package:
            package.extractall(folder)
        (index,) = folder.rglob("index.html")
        report = new_page()
        report.goto(index.as_uri())
        assert report.evaluate("document.documentElement.lang") == language
        assert _landmarks(report) == ["header", "main", "footer"]
        found[f"package index.html {language}"] = severe_violations(report, axe_source)
    assert found == {name: [] for name in found}

    # The dashboard counts the answers, within the day: Ada's erasure and the two packages.
    dpo.goto(live_portal.url("/staff/dashboard/"))
    median = dpo.get_by_role("region", name="Median days to close")
    assert median.locator(".tile__figure").inner_text() == "0.0"
    assert "over 3 requests answered" in median.inner_text()
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
