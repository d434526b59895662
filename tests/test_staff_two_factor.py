"""Staff two-factor sign-in (PORTAL_STAFF_2FA) over HTTP: enrolment after the password, the code
step, wrong codes refused, throttled and counted by axes, recovery codes used once, console,
admin and session API refused until the second factor, a DPO's reset, and the audit events."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from base64 import b32decode
from datetime import timedelta
from html import unescape
from pathlib import Path

import pytest
from axes.models import AccessAttempt
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from requests.models import AuditEvent
from requests.permissions import REVIEWER, role_group

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"  # the staff_user fixture's password
LOGIN = "/staff/login/"
CODE_STEP = "/staff/login/code/"
ENROL = "/staff/two-factor/"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def required(settings):
    settings.PORTAL_STAFF_2FA = "required"


def _password(client, username="dpo", next_url=""):
    data = {"username": username, "password": PASSWORD}
    if next_url:
        data["next"] = next_url
    return client.post(LOGIN, data, REMOTE_ADDR="203.0.113.7")


def _code_now(device) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"


def _enrolled(user) -> tuple[TOTPDevice, list[str]]:
    """An account that set up its authenticator earlier, with three recovery codes."""
    device = TOTPDevice.objects.create(user=user, name="authenticator", confirmed=True)
    static = StaticDevice.objects.create(user=user, name="recovery codes", confirmed=True)
    codes = ["abcd2345", "efgh6723", "ijkl2345"]
    for code in codes:
        StaticToken.objects.create(device=static, token=code)
    return device, codes


def _time_passes(device) -> None:
    """The device's last wrong code was a minute ago: its throttle delay is over."""
    type(device).objects.filter(pk=device.pk).update(
        throttling_failure_timestamp=timezone.now() - timedelta(minutes=1)
    )


def _send_code(client, code, next_url=""):
    data = {"code": code}
    if next_url:
        data["next"] = next_url
    return client.post(CODE_STEP, data, REMOTE_ADDR="203.0.113.7")


def _actions(username="dpo") -> list[str]:
    return list(
        AuditEvent.objects.filter(actor=f"staff:{username}")
        .order_by("id")
        .values_list("action", flat=True)
    )


def test_without_an_authenticator_the_password_leads_to_enrolment(client, staff_user, required):
    response = _password(client)

    assert response.status_code == 302
    assert response["Location"].startswith(ENROL)
    assert client.get("/staff/").url.startswith(ENROL)


def test_enrolment_shows_a_secret_whose_code_confirms_it_and_ten_recovery_codes_once(
    client, staff_user, required
):
    _password(client)
    page = client.get(ENROL)
    assert page.status_code == 200
    html = page.content.decode()
    secret = unescape(re.search(r'id="totp-secret">([^<]+)<', html).group(1)).replace(" ", "")
    uri = unescape(re.search(r'id="totp-uri">([^<]+)<', html).group(1))
    assert uri.startswith("otpauth://totp/") and f"secret={secret}" in uri
    assert 'src="data:image/svg+xml' in html  # the QR code, drawn on the server
    # A reload shows the same secret, so a half-done set-up can be finished.
    assert secret in client.get(ENROL).content.decode().replace(" ", "")

    key = b32decode(secret + "=" * (-len(secret) % 8))
    code = f"{TOTP(key).token():06d}"
    confirmed = client.post(ENROL, {"code": code, "next": "/staff/dashboard/"})

    assert confirmed.status_code == 200
    codes = re.findall(
        r'<li><code class="secret">([a-z2-7]{8})</code></li>', confirmed.content.decode()
    )
    assert len(set(codes)) == 10
    assert set(StaticToken.objects.values_list("token", flat=True)) == set(codes)
    assert 'href="/staff/dashboard/"' in confirmed.content.decode()
    assert TOTPDevice.objects.get(user=staff_user).confirmed
    # Signed in for good now; the codes are never shown again.
    assert client.get("/staff/").status_code == 200
    again = client.get(ENROL).content.decode()
    assert not any(code in again for code in codes)
    event = AuditEvent.objects.get(action="staff.second_factor_enrolled")
    assert event.actor == "staff:dpo"
    assert event.details == {"username": "dpo", "recovery_codes": 10}


def test_a_wrong_code_at_enrolment_is_refused_and_nothing_is_confirmed(
    client, staff_user, required
):
    _password(client)
    client.get(ENROL)

    response = client.post(ENROL, {"code": "000000"})

    assert response.status_code == 400
    assert "does not match" in response.content.decode()
    assert not TOTPDevice.objects.filter(user=staff_user, confirmed=True).exists()
    assert not StaticToken.objects.exists()
    assert client.get("/staff/").url.startswith(ENROL)


def test_with_an_authenticator_the_password_is_followed_by_the_code_step(
    client, staff_user, required
):
    device, _codes = _enrolled(staff_user)

    response = _password(client, next_url="/staff/dashboard/")
    assert response.status_code == 302
    assert response["Location"].startswith(CODE_STEP)
    assert client.get("/staff/").url.startswith(CODE_STEP)

    step = client.get(response["Location"])
    assert step.status_code == 200
    assert 'value="/staff/dashboard/"' in step.content.decode()
    passed = _send_code(client, _code_now(device), next_url="/staff/dashboard/")

    assert passed.status_code == 302
    assert passed["Location"] == "/staff/dashboard/"
    assert client.get("/staff/").status_code == 200
    assert _actions()[-1] == "staff.second_factor_verified"


def test_the_session_key_changes_when_the_second_factor_is_passed(client, staff_user, required):
    device, _codes = _enrolled(staff_user)
    _password(client)
    before = client.session.session_key

    _send_code(client, _code_now(device))

    assert client.session.session_key != before
    assert client.get("/staff/").status_code == 200


def test_a_wrong_code_is_refused_audited_and_counted_as_a_failed_sign_in(
    client, staff_user, required
):
    device, _codes = _enrolled(staff_user)
    _password(client)

    response = _send_code(client, "123456" if _code_now(device) != "123456" else "654321")

    assert response.status_code == 400
    assert "does not match" in response.content.decode()
    assert client.get("/staff/").url.startswith(CODE_STEP)
    event = AuditEvent.objects.get(action="staff.second_factor_refused")
    assert event.actor == "staff:dpo"
    assert event.details == {"username": "dpo", "method": "authenticator", "failures": 1}
    assert AccessAttempt.objects.get(username="dpo").failures_since_start == 1


def test_the_right_code_just_after_a_wrong_one_waits_for_the_throttle(client, staff_user, required):
    device, _codes = _enrolled(staff_user)
    _password(client)
    _send_code(client, "000000" if _code_now(device) != "000000" else "111111")

    too_soon = _send_code(client, _code_now(device))

    assert too_soon.status_code == 429
    assert "wait a few seconds" in too_soon.content.decode()
    assert client.get("/staff/").url.startswith(CODE_STEP)

    _time_passes(device)
    assert _send_code(client, _code_now(device)).status_code == 302
    assert client.get("/staff/").status_code == 200


def test_wrong_codes_up_to_the_limit_lock_the_account_and_end_the_session(
    client, staff_user, required, settings
):
    device, _codes = _enrolled(staff_user)
    _password(client)
    wrong = "000000" if _code_now(device) != "000000" else "111111"
    for _attempt in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _send_code(client, wrong).status_code == 400
        _time_passes(device)

    locked = _send_code(client, wrong)

    assert locked.status_code == 429
    assert "Sign-in paused" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    # The password alone no longer opens even the code step.
    assert _password(client).status_code == 429


def test_a_recovery_code_opens_the_console_once(client, staff_user, required):
    _device, codes = _enrolled(staff_user)
    _password(client)

    passed = _send_code(client, codes[0].upper())

    assert passed.status_code == 302
    assert client.get("/staff/").status_code == 200
    event = AuditEvent.objects.filter(action="staff.recovery_code_used").get()
    assert event.actor == "staff:dpo"
    assert event.details == {"username": "dpo", "remaining": 2}

    client.post("/staff/logout/")
    _password(client)
    reused = _send_code(client, codes[0])
    assert reused.status_code == 400
    assert client.get("/staff/").url.startswith(CODE_STEP)


def test_console_admin_and_the_session_api_are_refused_until_the_second_factor(
    client, staff_user, staff_api, required
):
    staff_user.is_superuser = True
    staff_user.save()
    _enrolled(staff_user)
    _password(client)

    for path in ("/staff/", "/staff/dashboard/", "/staff/users/", "/staff/stores/", "/admin/"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.url.startswith(CODE_STEP), path
    assert client.get("/admin/requests/auditevent/").url.startswith(CODE_STEP)
    assert client.get("/api/v1/staff/requests/").status_code in (401, 403)
    # API tokens are a factor of their own and are not asked for a code.
    assert staff_api.get("/api/v1/staff/requests/").status_code == 200


def test_the_admin_password_sign_in_is_followed_by_the_code_step(client, staff_user, required):
    staff_user.is_superuser = True
    staff_user.save()
    device, _codes = _enrolled(staff_user)
    client.post("/admin/login/?next=/admin/", {"username": "dpo", "password": PASSWORD})

    response = client.get("/admin/")
    assert response.url.startswith(CODE_STEP)
    _send_code(client, _code_now(device), next_url="/admin/")
    assert client.get("/admin/").status_code == 200


def test_an_account_with_an_authenticator_cannot_enrol_another_with_its_password_alone(
    client, staff_user, required
):
    _enrolled(staff_user)
    _password(client)

    response = client.post(ENROL, {"code": "123456"})

    assert response.status_code == 302
    assert response.url.startswith(CODE_STEP)
    assert TOTPDevice.objects.filter(user=staff_user).count() == 1


def test_a_dpo_resets_a_reviewers_second_factor_and_the_reviewer_enrols_again(
    client, staff_user, django_user_model, required
):
    reviewer = django_user_model.objects.create_user(
        username="rita", password=PASSWORD, is_staff=True
    )
    reviewer.groups.add(role_group(REVIEWER))
    _enrolled(reviewer)
    device, _codes = _enrolled(staff_user)
    _password(client)
    _send_code(client, _code_now(device))
    page = client.get("/staff/users/").content.decode()
    assert "the two-factor sign-in of rita" in page

    response = client.post(
        "/staff/users/", {"action": "reset_two_factor", "user": reviewer.pk}, follow=True
    )

    assert "Two-factor sign-in of rita was reset." in response.content.decode()
    assert not TOTPDevice.objects.filter(user=reviewer).exists()
    assert not StaticDevice.objects.filter(user=reviewer).exists()
    event = AuditEvent.objects.get(action="staff.second_factor_reset")
    assert event.actor == "staff:dpo"
    assert event.details == {"username": "rita"}
    rita = client.__class__()
    assert _password(rita, username="rita")["Location"].startswith(ENROL)


def test_a_reviewer_cannot_reset_anyones_second_factor(client, staff_user, django_user_model):
    reviewer = django_user_model.objects.create_user(
        username="rita", password=PASSWORD, is_staff=True
    )
    reviewer.groups.add(role_group(REVIEWER))
    _enrolled(staff_user)
    _password(client, username="rita")

    response = client.post("/staff/users/", {"action": "reset_two_factor", "user": staff_user.pk})

    assert response.status_code == 403
    assert TOTPDevice.objects.filter(user=staff_user).exists()
    assert not AuditEvent.objects.filter(action="staff.second_factor_reset").exists()


def test_a_dpo_cannot_reset_their_own_second_factor(client, staff_user, required):
    device, _codes = _enrolled(staff_user)
    _password(client)
    _send_code(client, _code_now(device))

    response = client.post(
        "/staff/users/", {"action": "reset_two_factor", "user": staff_user.pk}, follow=True
    )

    assert "cannot reset your own" in response.content.decode()
    assert TOTPDevice.objects.filter(user=staff_user).exists()


def test_optional_asks_a_code_only_of_who_set_up_an_authenticator(
    client, staff_user, django_user_model, settings
):
    settings.PORTAL_STAFF_2FA = "optional"
    reviewer = django_user_model.objects.create_user(
        username="rita", password=PASSWORD, is_staff=True
    )
    reviewer.groups.add(role_group(REVIEWER))
    _enrolled(staff_user)

    assert _password(client)["Location"].startswith(CODE_STEP)
    rita = client.__class__()
    assert _password(rita, username="rita")["Location"] == "/staff/"
    assert rita.get("/staff/").status_code == 200
    # Setting one up is open to them.
    assert rita.get(ENROL).status_code == 200


def test_off_never_asks_for_a_code_even_with_an_authenticator(client, staff_user):
    _enrolled(staff_user)

    assert _password(client)["Location"] == "/staff/"
    assert client.get("/staff/").status_code == 200
    assert client.get(ENROL).status_code == 404


def test_no_code_or_secret_reaches_the_audit_trail(client, staff_user, required):
    device, codes = _enrolled(staff_user)
    _password(client)
    _send_code(client, "999999")
    _time_passes(device)
    _send_code(client, codes[1])

    trail = " ".join(
        str(details) for details in AuditEvent.objects.values_list("details", flat=True)
    )
    assert "999999" not in trail
    assert codes[1] not in trail
    assert device.key not in trail
    assert _actions() == ["staff.second_factor_refused", "staff.recovery_code_used"]


def _settings_value(name: str, **env: str) -> str:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PORTAL_", "DJANGO_", "DEBUG", "DATABASE_URL"))
    }
    environment.update(
        DJANGO_SETTINGS_MODULE="portal.settings", PORTAL_DATA_DIR=tempfile.mkdtemp(), **env
    )
    code = f"from django.conf import settings; print(settings.{name})"
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return result.stdout.strip().splitlines()[-1]


def test_production_settings_require_the_second_factor_and_the_demo_does_not():
    assert _settings_value("PORTAL_STAFF_2FA", PORTAL_BASE_URL="https://privacy.example") == (
        "required"
    )
    assert _settings_value("PORTAL_STAFF_2FA") == "off"
    assert (
        _settings_value(
            "PORTAL_STAFF_2FA", PORTAL_BASE_URL="https://privacy.example", PORTAL_STAFF_2FA="off"
        )
        == "off"
    )


def test_the_code_step_and_enrolment_speak_french(client, staff_user, required):
    _password(client)
    enrol = client.get(ENROL, HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Configurer la connexion à deux facteurs" in enrol
    assert "Confirmer l\u2019application" in enrol

    _enrolled(staff_user)
    step = client.get(CODE_STEP, HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "<h1>Connexion à deux facteurs</h1>" in step
    assert "codes de secours" in step


def test_optional_links_the_set_up_page_in_the_console_and_off_does_not(
    client, staff_user, settings
):
    client.force_login(staff_user)
    assert 'href="/staff/two-factor/"' not in client.get("/staff/").content.decode()

    settings.PORTAL_STAFF_2FA = "optional"
    assert 'href="/staff/two-factor/"' in client.get("/staff/").content.decode()
    assert "Set up two-factor sign-in" in client.get(ENROL).content.decode()


def test_enrolment_owed_shows_no_console_links_but_optional_set_up_does(
    client, staff_user, settings, required
):
    _password(client)
    owed = client.get(ENROL).content.decode()
    assert ">Queue</a>" not in owed
    assert ">Sign out</button>" in owed

    settings.PORTAL_STAFF_2FA = "optional"
    assert ">Queue</a>" in client.get(ENROL).content.decode()
