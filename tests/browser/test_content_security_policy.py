"""In Chromium, against the live portal: the public pages, the staff console (queue, request,
dashboard, stores, mail, accounts), the browsable API and the Django admin load under the Content
Security Policy without a single violation, and the policy is really enforced (an injected inline
handler is refused and reported)."""

from __future__ import annotations

import re

import pytest

from tests.conftest import code_from

pytestmark = pytest.mark.slow

INJECT_INLINE_HANDLER = """
document.body.insertAdjacentHTML(
  "beforeend", '<img src="/static/none.png" onerror="window.ran = 1">')
"""


def _watch(page) -> list[str]:
    """Chromium reports every CSP refusal as a console error naming the policy."""
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return violations


def _visit(page, url: str) -> None:
    response = page.goto(url)
    assert response is not None and response.status < 400, f"{url}: {response and response.status}"
    assert "default-src 'self'" in response.headers["content-security-policy"]
    # Styles and scripts from files: the stylesheet applied (a violation would leave it unstyled).
    page.wait_for_load_state("load")


def test_pages_staff_console_api_and_admin_load_with_no_csp_violation(live_portal, new_page):
    person = new_page()
    seen = _watch(person)
    _visit(person, live_portal.url("/"))
    assert person.evaluate("getComputedStyle(document.body).margin") == "0px"
    person.get_by_label("Access (a copy of my data)").check()
    person.get_by_label("Email address").fill("ada@demo.example")
    person.get_by_role("button", name="Send my request").click()
    person.wait_for_url(re.compile(r"/r/[^/]+/filed/$"))
    reference = person.url.rstrip("/").split("/")[-2]
    person.get_by_label("Code from the email").fill(code_from(live_portal.inbox.wait_for(1)))
    person.get_by_role("button", name="Confirm my request").click()
    person.wait_for_url(re.compile(r"/status/"))
    # The language switcher posts a form to the portal itself (form-action 'self'). The status
    # page follows the request's language and has none: switch on the filing page.
    _visit(person, live_portal.url("/"))
    person.get_by_role("button", name="Français").click()
    person.wait_for_load_state("load")
    assert person.locator("html").get_attribute("lang") == "fr"
    assert seen == [], seen

    dpo = new_page()
    seen = _watch(dpo)
    _visit(dpo, live_portal.url("/staff/login/"))
    dpo.get_by_label("Username").fill("dpo")
    dpo.get_by_label("Password").fill(live_portal.demo_password)
    dpo.get_by_role("button", name="Sign in").click()
    dpo.wait_for_url(re.compile(r"/staff/(\?.*)?$"))
    dpo.get_by_role("link", name=reference).click()
    dpo.wait_for_url(re.compile(r"/staff/requests/[^/]+/$"))
    for page in ("/staff/dashboard/", "/staff/stores/", "/staff/mail/", "/staff/users/"):
        _visit(dpo, live_portal.url(page))
    _visit(dpo, live_portal.url("/api/v1/staff/requests/"))
    assert dpo.locator("#drf_csrf").count() == 1
    # jQuery and DRF's scripts ran from their files: the format menu is wired up.
    assert dpo.evaluate("typeof window.jQuery") == "function"
    _visit(dpo, live_portal.url("/admin/"))
    _visit(dpo, live_portal.url("/admin/requests/connectedstore/"))
    # The admin's scripts ran from their files: jQuery is initialised under its own name.
    assert dpo.evaluate("typeof (window.django && window.django.jQuery)") == "function"
    assert seen == [], seen

    visitor = new_page()
    seen = _watch(visitor)
    _visit(visitor, live_portal.url("/admin/login/"))
    assert seen == []
    # The policy is enforced, and a violation would be seen: an injected inline handler is refused.
    visitor.evaluate(INJECT_INLINE_HANDLER)
    visitor.wait_for_timeout(500)
    assert visitor.evaluate("window.ran") is None
    assert any("inline event handler" in message for message in seen), seen
