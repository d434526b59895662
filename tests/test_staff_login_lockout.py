"""Staff sign-in (console and admin) locks after repeated wrong passwords, is audited without
the password or the username in clear, and opens again after the cool-off."""

import json
import logging
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.utils import timezone

from requests.models import AuditEvent

pytestmark = pytest.mark.django_db

RIGHT = "correct horse battery"  # the staff_user fixture's password
CONSOLE = "/staff/login/"
ADMIN = "/admin/login/"


def _sign_in(client, url, password, *, username="dpo", remote="203.0.113.10"):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=remote)


def _signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_fifty_wrong_passwords_then_the_right_one_is_refused_on_the_console(client, staff_user):
    for attempt in range(50):
        _sign_in(client, CONSOLE, f"wrong-{attempt}")

    response = _sign_in(client, CONSOLE, RIGHT)

    assert response.status_code == 429
    assert int(response["Retry-After"]) == 15 * 60
    assert "Sign-in paused" in response.content.decode()
    assert not _signed_in(client)


def test_the_admin_sign_in_is_locked_the_same_way(client, staff_user, settings):
    staff_user.is_superuser = True
    staff_user.save()
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(client, ADMIN, f"wrong-{attempt}")

    response = _sign_in(client, ADMIN, RIGHT)

    assert response.status_code == 429
    assert not _signed_in(client)
    # Locked for the console too: it is the account that is locked, not the page.
    assert _sign_in(client, CONSOLE, RIGHT).status_code == 429


def test_guesses_spread_over_many_addresses_still_lock_the_account(client, staff_user, settings):
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(client, CONSOLE, "wrong", remote=f"198.51.100.{attempt + 1}")

    response = _sign_in(client, CONSOLE, RIGHT, remote="192.0.2.200")

    assert response.status_code == 429
    assert not _signed_in(client)


def test_a_few_wrong_passwords_below_the_limit_do_not_lock(client, staff_user, settings):
    for attempt in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _sign_in(client, CONSOLE, f"wrong-{attempt}").status_code == 200

    response = _sign_in(client, CONSOLE, RIGHT)

    assert response.status_code == 302
    assert _signed_in(client)


def test_the_lockout_is_audited_once_without_the_password_or_the_username(
    client, staff_user, caplog
):
    caplog.set_level(logging.INFO)
    for attempt in range(50):
        _sign_in(client, CONSOLE, f"guess-{attempt}")
    _sign_in(client, CONSOLE, RIGHT)

    events = list(AuditEvent.objects.filter(action="staff.login_locked_out"))
    assert len(events) == 1
    details = events[0].details
    assert details["user_id"] == staff_user.pk
    assert len(details["username_hash"]) == 64
    as_text = json.dumps(details)
    for secret in ("dpo", "guess-", RIGHT):
        assert secret not in as_text
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "AXES" in logged  # the lockout was logged ...
    for secret in ("dpo", "203.0.113.10", "guess-", RIGHT):
        assert secret not in logged  # ... naming nobody


def test_sign_in_works_again_after_the_cool_off(client, staff_user, settings):
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(client, CONSOLE, f"wrong-{attempt}")
    assert _sign_in(client, CONSOLE, RIGHT).status_code == 429

    # The cool-off passes: move the recorded failures back past it rather than waiting.
    AccessAttempt.objects.update(
        attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1)
    )
    response = _sign_in(client, CONSOLE, RIGHT)

    assert response.status_code == 302
    assert _signed_in(client)


def test_the_cool_off_is_a_setting(client, staff_user, settings):
    settings.AXES_COOLOFF_TIME = timedelta(minutes=2)
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(client, CONSOLE, f"wrong-{attempt}")

    locked = _sign_in(client, CONSOLE, RIGHT)
    assert locked.status_code == 429
    assert locked["Retry-After"] == "120"
    # Failures older than the two minutes no longer count.
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=2, seconds=1))
    assert _sign_in(client, CONSOLE, RIGHT).status_code == 302
