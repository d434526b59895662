"""The job state machine (requests.models.jobs, requests.services.jobs): explicit states with
what a held job is held for, one table of allowed moves, every move audited, and one path for
holding and releasing jobs that the start and staff's retry share."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from requests import tasks
from requests.engine import erasure as engine
from requests.models import AuditEvent, Job, JobState
from requests.models.jobs import JOB_TRANSITIONS, job_can_move
from requests.services import job_claims
from tests.access_fixtures import approve
from tests.erasure_fixtures import FakeEngine, file_erasure, shop_and_crm

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake(monkeypatch, tmp_path, settings):
    settings.DATA_DIR = tmp_path / "data"
    settings.PORTAL_JOB_RETRY_BASE = 0
    stand_in = FakeEngine()
    monkeypatch.setattr(engine, "erase_person", stand_in.erase_person)
    monkeypatch.setattr(engine, "find_remaining", stand_in.find_remaining)
    return stand_in


@pytest.fixture
def stores(tmp_path):
    return shop_and_crm(tmp_path)


def _jobs(reference):
    return {job.store.name: job for job in Job.objects.filter(request__reference=reference)}


def test_every_state_has_its_moves_in_one_table_and_finished_work_never_runs_again():
    assert set(JOB_TRANSITIONS) == set(JobState.values)
    assert job_can_move(JobState.HELD, JobState.QUEUED)
    assert not job_can_move(JobState.HELD, JobState.RUNNING)  # a held job is never claimed
    assert not job_can_move(JobState.DONE, JobState.RUNNING)
    assert not job_can_move(JobState.DONE, JobState.QUEUED)
    assert JOB_TRANSITIONS[JobState.FAILED] == {JobState.HELD, JobState.QUEUED}


def test_a_held_job_says_what_it_is_held_for_and_nothing_claims_it(
    fake, stores, public_api, file_request, staff_api, django_capture_on_commit_callbacks
):
    reference = file_erasure(public_api, file_request)
    with django_capture_on_commit_callbacks(execute=False):
        staff_api.post(f"/api/v1/staff/requests/{reference}/approve/")
    shop = _jobs(reference)["shop"]
    assert (shop.state, shop.held_for) == (JobState.HELD, "order")
    assert job_claims.job_claim(job_id=shop.pk) is None
    held = AuditEvent.objects.get(request__reference=reference, action="job.held")
    assert held.details == {"store": "shop", "kind": "erasure", "held_for": "order"}


def test_each_move_of_a_job_is_in_the_audit_trail(
    fake, stores, public_api, file_request, staff_api, django_capture_on_commit_callbacks
):
    reference = file_erasure(public_api, file_request)
    approve(staff_api, django_capture_on_commit_callbacks, reference)
    actions = [
        (event.action, event.details.get("store"))
        for event in AuditEvent.objects.filter(request__reference=reference).order_by("id")
        if event.action.startswith("job.")
    ]
    assert actions == [
        ("job.held", "shop"),
        ("job.claimed", "crm"),
        ("job.done", "crm"),
        ("job.released", "shop"),
        ("job.claimed", "shop"),
        ("job.done", "shop"),
    ]


def test_a_staff_retry_after_two_dependent_stores_both_failed_keeps_their_order(
    fake, stores, public_api, file_request, staff_api, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    # The sweep finds records left in both stores: both jobs fail.
    fake.remaining = {
        "crm": {"contacts": {"remaining": 1, "held": 0}},
        "shop": {"orders": {"remaining": 1, "held": 0}},
    }
    reference = file_erasure(public_api, file_request)
    detail = approve(staff_api, capture, reference)
    assert detail["status"] == "needs_attention"
    assert {name: job.state for name, job in _jobs(reference).items()} == {
        "crm": JobState.FAILED,
        "shop": JobState.FAILED,
    }

    fake.remaining = {}
    fake.calls.clear()
    with capture(execute=False):
        assert staff_api.post(f"/api/v1/staff/requests/{reference}/retry/").status_code == 200
    # The shop's records are found through the CRM's: the shop waits for the CRM again.
    after = _jobs(reference)
    assert (after["crm"].state, after["shop"].state) == (JobState.QUEUED, JobState.HELD)
    assert after["shop"].held_for == "order"
    assert job_claims.job_claim(job_id=after["shop"].pk) is None
    retried = AuditEvent.objects.filter(request__reference=reference).order_by("-id")
    assert [(e.action, e.details.get("store"), e.actor) for e in retried[:4]][::-1] == [
        ("request.retried", None, "staff:dpo"),
        ("job.restarted", "crm", "staff:dpo"),
        ("job.held", "shop", "staff:dpo"),
        ("request.erasure_ordered", None, "system"),
    ]

    with capture(execute=True):
        tasks.job_run.delay(after["crm"].pk)
    assert fake.calls == ["crm", "shop"]
    assert staff_api.get(f"/api/v1/staff/requests/{reference}/").json()["status"] == "completed"


def test_a_job_claimed_again_and_again_without_finishing_fails_with_the_reason(
    fake, stores, public_api, file_request, staff_api, django_capture_on_commit_callbacks, settings
):
    settings.PORTAL_JOB_MAX_ATTEMPTS = 3
    reference = file_erasure(public_api, file_request)
    with django_capture_on_commit_callbacks(execute=False):
        staff_api.post(f"/api/v1/staff/requests/{reference}/approve/")
    crm = _jobs(reference)["crm"]
    for attempt in (1, 2, 3):
        claimed = job_claims.job_claim(job_id=crm.pk)
        assert claimed is not None and claimed.attempts == attempt
        # Its worker dies: the lease runs out without a renewal.
        Job.objects.filter(pk=crm.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert job_claims.job_claim(job_id=crm.pk) is None
    crm.refresh_from_db()
    assert crm.state == JobState.FAILED
    assert "claimed 3 times without finishing" in crm.error
    detail = staff_api.get(f"/api/v1/staff/requests/{reference}/").json()
    assert detail["status"] == "needs_attention"
    assert "claimed 3 times" in detail["attention_reason"]


def test_the_completion_event_counts_the_stores_not_their_states(
    fake, stores, public_api, file_request, staff_api, django_capture_on_commit_callbacks
):
    reference = file_erasure(public_api, file_request)
    approve(staff_api, django_capture_on_commit_callbacks, reference)
    completed = AuditEvent.objects.get(request__reference=reference, action="request.completed")
    # Two stores, both done: one distinct state, two stores.
    assert completed.details["stores"] == 2


def test_a_staff_retry_sends_again_the_jobs_whose_messages_came_while_the_request_needed_staff(
    fake, stores, tmp_path, public_api, file_request, staff_api, django_capture_on_commit_callbacks
):
    from requests.engine.store import PermanentStoreError
    from requests.models import ConnectedStore

    ConnectedStore.objects.create(
        name="mailer", kind="sqlite", url=f"sqlite:///{tmp_path / 'mailer.sqlite'}",
        map_yaml="collections:\n  subscribers:\n    fields:\n      email: {identity: email}\n",
    )  # fmt: skip
    capture = django_capture_on_commit_callbacks
    fake.fail_with["crm"] = [PermanentStoreError("table contacts does not exist in crm")]
    reference = file_erasure(public_api, file_request)
    with capture(execute=False):
        staff_api.post(f"/api/v1/staff/requests/{reference}/approve/")
    queued = _jobs(reference)
    with capture(execute=True):
        tasks.job_run.delay(queued["crm"].pk)  # fails: the request needs staff
        tasks.job_run.delay(queued["mailer"].pk)  # arrives now: not claimed, not run
    assert _jobs(reference)["mailer"].state == JobState.QUEUED
    assert fake.calls == ["crm"]

    with capture(execute=True):
        assert staff_api.post(f"/api/v1/staff/requests/{reference}/retry/").status_code == 200
    assert sorted(fake.calls) == ["crm", "crm", "mailer", "shop"]
    assert staff_api.get(f"/api/v1/staff/requests/{reference}/").json()["status"] == "completed"
