"""The DPOs' daily digest: overdue requests, those due this week and those needing attention, with
links to the console, sent once a day by Celery beat to every DPO with an email address."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail

from requests import clock
from requests.models import AuditEvent, DataRequest
from requests.permissions import DPO, REVIEWER, role_group
from requests.services import lifecycle
from requests.services.digest import staff_digest_send
from requests.states import Status
from requests.tasks import staff_digest_send as digest_task

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(django_user_model):
    """Who should get the digest (a DPO, a superuser) and who should not (a reviewer, a DPO
    without an address, an inactive DPO)."""
    made = {}
    for username, role, flags in [
        ("dora", DPO, {}),
        ("root", None, {"is_superuser": True}),
        ("rita", REVIEWER, {}),
        ("nomail", DPO, {"email": ""}),
        ("gone", DPO, {"is_active": False}),
    ]:
        flags.setdefault("email", f"{username}@staff.example")
        user = django_user_model.objects.create_user(username, is_staff=True, **flags)
        if role:
            user.groups.add(role_group(role))
        made[username] = user
    return made


def make(email: str, *, due_in: int | None = None, status: str | None = None):
    filed = lifecycle.request_file(kind="access", identity={"email": email})
    verified = lifecycle.request_mark_verified(request=filed, method="code")
    changes = {}
    if due_in is not None:
        changes["due_on"] = clock.today() + timedelta(days=due_in)
    if status:
        changes["status"] = status
    if changes:
        DataRequest.objects.filter(pk=verified.pk).update(**changes)
    return verified


def test_dpos_get_the_overdue_the_due_this_week_and_those_needing_attention(people):
    today = clock.today()
    late = make("late@example.com", due_in=-2)
    this_week = make("week@example.com", due_in=6 - today.weekday())
    make("later@example.com", due_in=40)
    stuck = make("stuck@example.com", due_in=20, status=Status.NEEDS_ATTENTION)

    sent = staff_digest_send(today=today)

    assert sent == 2
    assert sorted(message.to[0] for message in mail.outbox) == [
        "dora@staff.example",
        "root@staff.example",
    ]
    message = mail.outbox[0]
    body = message.body
    assert message.subject == "Privacy requests today: 1 overdue, 1 needing attention"
    assert "Overdue: 1 request\n- " + late.reference in body
    assert f"Due this week: 1 request\n- {this_week.reference}" in body
    assert stuck.reference in body.split("Needing attention")[1]
    assert f"{settings.PORTAL_BASE_URL}/staff/requests/{late.reference}/" in body
    assert "Waiting for a decision: 3 requests." in body  # the late, this week's, the later one
    for address in ("late@example.com", "week@example.com", "stuck@example.com"):
        assert address not in body
    event = AuditEvent.objects.get(action="digest.sent")
    assert event.details["recipients"] == 2
    assert event.details["overdue"] == 1


def test_the_digest_goes_once_a_day_and_not_at_all_on_a_quiet_day(people):
    today = clock.today()
    assert staff_digest_send(today=today) == 0  # nothing to report
    assert mail.outbox == []

    make("late@example.com", due_in=-1)
    assert staff_digest_send(today=today) == 2
    assert staff_digest_send(today=today) == 0  # a second delivery of the day's task
    assert staff_digest_send(today=today + timedelta(days=1)) == 2


def test_beat_runs_the_digest_task_daily_at_the_configured_hour(people):
    from celery.schedules import crontab

    entry = settings.CELERY_BEAT_SCHEDULE["staff-digest"]
    assert entry["task"] == "requests.tasks.staff_digest_send"
    assert entry["schedule"] == crontab(hour=settings.PORTAL_DIGEST_HOUR, minute=0)

    make("late@example.com", due_in=-1)
    assert digest_task.apply().get() == 2


def test_an_hour_that_does_not_exist_stops_the_portal_at_start(tmp_path):
    import subprocess
    import sys

    from tests.processes import ROOT, portal_env

    result = subprocess.run(
        [sys.executable, "-c", "import portal.settings"],
        cwd=ROOT,
        env=portal_env(PORTAL_DATA_DIR=str(tmp_path), PORTAL_DIGEST_HOUR="24"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "PORTAL_DIGEST_HOUR must be an hour from 0 to 23, got 24" in result.stderr
