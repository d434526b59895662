"""The DPOs' daily digest: overdue requests, those due this week, those needing attention and
manual tasks past their due date, with links to the console, sent once a day by Celery beat to
every DPO with an email address, each in their language, never with a person's identity."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.utils import timezone

from requests import clock
from requests.models import AuditEvent, DataRequest, DigestClaim, StaffProfile
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
    assert event.details["sent"] == 2
    assert event.details["overdue"] == 1
    assert DigestClaim.objects.get().day == today


def test_the_digest_goes_once_a_day_and_not_at_all_on_a_quiet_day(people):
    today = clock.today()
    assert staff_digest_send(today=today) == 0  # nothing to report
    assert mail.outbox == []

    make("late@example.com", due_in=-1)
    assert staff_digest_send(today=today) == 2
    assert staff_digest_send(today=today) == 0  # a second delivery of the day's task
    assert len(mail.outbox) == 2
    assert staff_digest_send(today=today + timedelta(days=1)) == 2
    assert len(mail.outbox) == 4


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


def test_no_digest_is_sent_when_it_is_turned_off(people, settings):
    settings.PORTAL_DIGEST_ENABLED = False
    make("late@example.com", due_in=-1)

    assert digest_task.apply().get() == 0
    assert mail.outbox == []
    assert not DigestClaim.objects.exists()


def test_each_dpo_reads_the_digest_in_their_own_language(people):
    StaffProfile.objects.create(user=people["dora"], language="fr")
    late = make("late@example.com", due_in=-2)

    assert staff_digest_send(today=clock.today()) == 2

    by_address = {message.to[0]: message for message in mail.outbox}
    french = by_address["dora@staff.example"]
    assert french.subject.startswith("Demandes sur les données personnelles aujourd")
    assert f"En retard : 1 demande\n- {late.reference} (Accès" in french.body
    assert "En attente d\N{RIGHT SINGLE QUOTATION MARK}une décision : 1 demande." in french.body
    english = by_address["root@staff.example"]  # no profile: the portal's default language
    assert english.subject == "Privacy requests today: 1 overdue, 0 needing attention"
    assert f"Overdue: 1 request\n- {late.reference} (Access" in english.body


def test_manual_tasks_past_their_due_date_are_listed_with_their_store(people, settings, tmp_path):
    from requests.models import ConnectedStore, Job, JobState

    settings.PORTAL_MANUAL_TASK_DAYS = 3
    request = make("task@example.com", due_in=20, status=Status.PROCESSING)
    store = ConnectedStore.objects.create(name="billing-desk", kind="manual", url="")
    job = Job.objects.create(
        request=request, store=store, kind=request.kind, state=JobState.WAITING
    )
    Job.objects.filter(pk=job.pk).update(
        started_at=timezone.now() - timedelta(days=5), error="Ask Jane Roe in billing"
    )

    assert staff_digest_send(today=clock.today()) == 2

    body = mail.outbox[0].body
    section = body.split("Tasks past their due date: 1 task")[1]
    assert (
        f"- {request.reference} (Access (a copy of my data), Processing), to confirm by hand in "
        "billing-desk, due "
    ) in section
    assert "Jane Roe" not in body  # staff's instructions stay on the request page
    assert AuditEvent.objects.get(action="digest.sent").details["late_tasks"] == 1


def test_nothing_that_identifies_a_person_is_in_the_digest(people):
    identity = {"email": "secret.person@example.com", "phone": "+33612345678", "name": "Zoe Q"}
    filed = lifecycle.request_file(kind="erasure", identity=identity)
    verified = lifecycle.request_mark_verified(request=filed, method="code")
    DataRequest.objects.filter(pk=verified.pk).update(due_on=clock.today() - timedelta(days=1))

    assert staff_digest_send(today=clock.today()) == 2

    for message in mail.outbox:
        for value in identity.values():
            assert value not in message.subject
            assert value not in message.body
        assert verified.reference in message.body
    event = AuditEvent.objects.get(action="digest.sent")
    assert not any(value in str(event.details) for value in identity.values())


@pytest.mark.django_db(transaction=True)
def test_two_deliveries_of_the_days_task_at_once_send_one_digest(people):
    import threading

    from django.db import connection

    if connection.vendor == "sqlite":
        pytest.skip(
            "concurrent deliveries need PostgreSQL (tests/servers.py): SQLite has one writer"
        )
    make("late@example.com", due_in=-1)
    today = clock.today()
    barrier = threading.Barrier(2)
    results: list[int] = []

    def deliver() -> None:
        from django.db import connection as thread_connection

        try:
            barrier.wait(timeout=30)
            results.append(staff_digest_send(today=today))
        finally:
            thread_connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(results) == [0, 2]
    digests = [m for m in mail.outbox if m.subject.startswith("Privacy requests today")]
    assert sorted(message.to[0] for message in digests) == [
        "dora@staff.example",
        "root@staff.example",
    ]
    assert DigestClaim.objects.filter(day=today).count() == 1
    assert AuditEvent.objects.filter(action="digest.sent").count() == 1
