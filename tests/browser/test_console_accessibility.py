"""axe-core (from the npm registry, installed into tests/browser/axe/ by `make test`) checks the
staff console's pages and the person's pages in English and French, at desktop and phone widths:
no serious or critical violation. axe is injected by the test, never served by the portal."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.browser.conftest import DESKTOP, PHONE, severe_violations
from tests.browser.test_console_request_flow import file_and_verify

pytestmark = pytest.mark.slow


def _sign_in_in_any_language(page, portal) -> None:
    page.goto(portal.url("/staff/login/"))
    page.locator("#id_username").fill("dpo")
    page.locator("#id_password").fill(portal.demo_password)
    page.locator("main form button[type=submit]").click()
    page.wait_for_url(re.compile(r"/staff/$"))


def test_console_pages_have_no_serious_accessibility_violation(live_portal, new_page, axe_source):
    filed = httpx.post(
        live_portal.url("/api/v1/requests/"),
        json={"kind": "access", "identity": {"email": "ada@example.com"}},
        timeout=30,
    )
    assert filed.status_code == 201, filed.text
    reference = filed.json()["reference"]
    pages = [
        "/staff/",
        f"/staff/requests/{reference}/",
        "/staff/dashboard/",
        "/staff/users/",
        "/staff/stores/",
    ]
    found = {}
    for locale in ("en-GB", "fr-FR"):
        for viewport in (DESKTOP, PHONE):
            page = new_page(locale=locale, viewport=viewport)
            _sign_in_in_any_language(page, live_portal)
            for path in pages:
                page.goto(live_portal.url(path))
                problems = severe_violations(page, axe_source)
                if problems:
                    found[f"{path} {locale} {viewport['width']}px"] = problems
    assert found == {}


def test_public_pages_have_no_serious_accessibility_violation(live_portal, new_page, axe_source):
    person = new_page()
    reference = file_and_verify(
        person, live_portal, email="ada@example.com", kind_label="Access (a copy of my data)"
    )
    status_url = person.url
    pages = [live_portal.url("/"), live_portal.url(f"/r/{reference}/verify/"), status_url]
    found = {}
    for locale in ("en-GB", "fr-FR"):
        for viewport in (DESKTOP, PHONE):
            page = new_page(locale=locale, viewport=viewport)
            for url in pages:
                page.goto(url)
                problems = severe_violations(page, axe_source)
                if problems:
                    found[f"{url} {locale} {viewport['width']}px"] = problems
    assert found == {}
