"""In Chromium, with PORTAL_STAFF_2FA=required: a DPO signs in with a password, sets up an
authenticator from the secret the page shows, confirms it with a code computed here, keeps the
recovery codes, then searches the queue and opens a request; signing in again asks for a code,
refuses a wrong one and takes a recovery code."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.browser.conftest import DESKTOP, PHONE, totp_code

pytestmark = pytest.mark.slow


@pytest.fixture
def live_portal_settings() -> dict[str, str]:
    return {"PORTAL_STAFF_2FA": "required"}


def _password_step(page, portal) -> None:
    page.goto(portal.url("/staff/"))
    page.wait_for_url(re.compile(r"/staff/login/"))
    page.get_by_label("Username").fill("dpo")
    page.get_by_label("Password").fill(portal.demo_password)
    page.get_by_role("button", name="Sign in").click()


def test_a_dpo_signs_in_with_a_second_factor_searches_the_queue_and_opens_a_request(
    live_portal, new_page
):
    filed = httpx.post(
        live_portal.url("/api/v1/requests/"),
        json={"kind": "access", "identity": {"email": "grace@demo.example"}},
        timeout=30,
    )
    assert filed.status_code == 201, filed.text
    reference = filed.json()["reference"]

    dpo = new_page()
    blocked = []

    def csp_refusals(message):
        if "Content Security Policy" in message.text:
            blocked.append(message.text)

    dpo.on("console", csp_refusals)
    _password_step(dpo, live_portal)

    # No authenticator yet: the password leads to setting one up, not to the console.
    dpo.wait_for_url(re.compile(r"/staff/two-factor/"))
    assert dpo.get_by_role("heading", level=1).inner_text() == "Set up two-factor sign-in"
    assert dpo.get_by_role("link", name="Queue").count() == 0
    qr_code = dpo.get_by_role("img", name="QR code holding the secret below")
    assert qr_code.evaluate("image => image.complete && image.naturalWidth > 0")
    secret = dpo.locator("#totp-secret").inner_text()
    dpo.get_by_label("Code").fill(totp_code(secret))
    dpo.get_by_role("button", name="Confirm the app").click()

    codes = [code.strip() for code in dpo.locator("#recovery-codes li").all_inner_texts()]
    assert len(set(codes)) == 10
    dpo.get_by_role("link", name="Continue to the console").click()
    dpo.wait_for_url(re.compile(r"/staff/(\?.*)?$"))

    dpo.get_by_label("Reference or email address").fill(reference)
    dpo.get_by_role("button", name="Show requests").click()
    dpo.get_by_role("row").filter(has_text=reference).get_by_role("link", name=reference).click()
    dpo.wait_for_url(re.compile(rf"/staff/requests/{re.escape(reference)}/$"))
    assert dpo.get_by_role("heading", level=1).inner_text() == f"Request {reference}"

    # Signed out, the password alone is not enough: the code step refuses a wrong code and
    # takes a recovery code, back to the page asked for.
    dpo.get_by_role("button", name="Sign out").click()
    dpo.goto(live_portal.url(f"/staff/requests/{reference}/"))
    dpo.get_by_label("Username").fill("dpo")
    dpo.get_by_label("Password").fill(live_portal.demo_password)
    dpo.get_by_role("button", name="Sign in").click()
    dpo.wait_for_url(re.compile(r"/staff/login/code/"))
    wrong = "000000" if totp_code(secret) != "000000" else "111111"
    dpo.get_by_label("Code").fill(wrong)
    dpo.get_by_role("button", name="Continue").click()
    assert "That code does not match" in dpo.get_by_role("alert").inner_text()
    assert dpo.get_by_role("link", name="Queue").count() == 0

    # The wrong code slowed down the authenticator's codes (django-otp's throttle), not the
    # recovery codes, which a staff member without their phone turns to.
    dpo.get_by_label("Code").fill(codes[0])
    dpo.get_by_role("button", name="Continue").click()
    dpo.wait_for_url(re.compile(rf"/staff/requests/{re.escape(reference)}/$"))
    assert dpo.get_by_role("heading", level=1).inner_text() == f"Request {reference}"
    assert blocked == []

    trail = live_portal.manage(
        "shell",
        "-c",
        "from requests.models import AuditEvent; "
        "print(list(AuditEvent.objects.filter(actor='staff:dpo', action__startswith="
        "'staff.').order_by('id').values_list('action', flat=True)))",
    )
    assert (
        "['staff.second_factor_enrolled', 'staff.second_factor_refused', "
        "'staff.recovery_code_used']" in trail
    )


def _severe_axe_violations(page, axe_source: str) -> list[str]:
    # evaluate() runs outside the page's Content-Security-Policy, which forbids inline scripts.
    page.evaluate(axe_source)
    violations = page.evaluate(
        "() => axe.run(document, {resultTypes: ['violations']}).then(r => r.violations)"
    )
    return [
        f"{violation['id']} ({violation['impact']})"
        for violation in violations
        if violation["impact"] in ("serious", "critical")
    ]


def test_the_two_factor_pages_have_no_serious_accessibility_violation(
    axe_source, live_portal, new_page
):
    combinations = [
        (locale, viewport) for locale in ("en-GB", "fr-FR") for viewport in (DESKTOP, PHONE)
    ]
    live_portal.manage(
        "shell",
        "-c",
        "from django.contrib.auth import get_user_model; "
        f"[get_user_model().objects.create_user(f'staff{{n}}', password='p{'a' * 20}', "
        f"is_staff=True) for n in range({len(combinations)})]",
    )
    found = {}
    for number, (locale, viewport) in enumerate(combinations):
        page = new_page(locale=locale, viewport=viewport)

        def check(name, page=page, where=f"{locale} {viewport['width']}px"):
            problems = _severe_axe_violations(page, axe_source)
            if problems:
                found[f"{name} {where}"] = problems

        def password_step(page=page, number=number):
            page.goto(live_portal.url("/staff/login/"))
            page.locator("#id_username").fill(f"staff{number}")
            page.locator("#id_password").fill("p" + "a" * 20)
            page.locator("main form button[type=submit]").click()

        password_step()
        page.wait_for_url(re.compile(r"/staff/two-factor/"))
        check("enrolment")
        page.locator("#id_code").fill("12")
        page.locator("main form button[type=submit]").click()
        check("enrolment with an error")
        page.locator("#id_code").fill(totp_code(page.locator("#totp-secret").inner_text()))
        page.locator("main form button[type=submit]").click()
        page.locator("#recovery-codes").wait_for()
        check("recovery codes")
        page.goto(live_portal.url("/staff/"))
        page.locator(".staff-nav form button[type=submit]").click()
        page.wait_for_url(re.compile(r"/staff/login/"))
        password_step()
        page.wait_for_url(re.compile(r"/staff/login/code/"))
        check("code step")
        page.locator("#id_code").fill("wrong")
        page.locator("main form button[type=submit]").click()
        check("code step with an error")
    assert found == {}
