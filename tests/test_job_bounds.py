"""Bounded work around jobs: the reconciler takes a page of requests per run and the next page on
the next run; the staff task list is counted and paged in the database; an unexpected error is
logged and kept without its message."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from requests.models import ConnectedStore, DataRequest, Job, JobState
from requests.services import jobs, lifecycle, processing
from requests.services.erasure import recipients
from requests.states import Status

pytestmark = pytest.mark.django_db

MANUAL_MAP = "system: Paper files\ncollections:\n  folders: {}\n"


def _processing(n: int, email: str = "ada@example.org") -> list[DataRequest]:
    out = []
    for i in range(n):
        request = lifecycle.request_file(kind="erasure", identity={"email": f"{i}.{email}"})
        DataRequest.objects.filter(pk=request.pk).update(status=Status.PROCESSING)
        out.append(DataRequest.objects.get(pk=request.pk))
    return out


def _age(requests, seconds: int) -> None:
    past = timezone.now() - timedelta(seconds=seconds)
    DataRequest.objects.filter(pk__in=[r.pk for r in requests]).update(updated_at=past)


def test_the_reconciler_moves_on_a_page_of_requests_per_run_and_the_next_page_next_time(
    monkeypatch, settings
):
    monkeypatch.setattr(jobs, "RECONCILE_BATCH", 2)
    requests = _processing(5)
    _age(requests, 3600)
    runs = [jobs.jobs_reconcile()["advanced"] for _ in range(4)]
    assert runs == [2, 2, 1, 0]


def test_the_reconciler_leaves_alone_a_request_waiting_for_a_handed_over_job():
    store = ConnectedStore.objects.create(name="paper", kind="manual", map_yaml=MANUAL_MAP)
    (request,) = _processing(1)
    Job.objects.create(request=request, store=store, kind="erasure", state=JobState.WAITING)
    _age([request], 3600)
    assert jobs.jobs_reconcile()["advanced"] == 0


def test_the_staff_task_list_is_counted_filtered_and_paged_in_the_database(settings):
    settings.PORTAL_MANUAL_TASK_DAYS = 10
    store = ConnectedStore.objects.create(name="paper", kind="manual", map_yaml=MANUAL_MAP)
    requests = _processing(5)
    now = timezone.now()
    for i, request in enumerate(requests):
        # Tasks 0 and 1 were handed over 20 days ago: overdue.
        handed = now - timedelta(days=20 if i < 2 else 1)
        Job.objects.create(
            request=request, store=store, kind="erasure", state=JobState.WAITING,
            started_at=handed, error="erase by hand",
        )  # fmt: skip
    count, first = recipients.staff_tasks(limit=2)
    _, second = recipients.staff_tasks(limit=2, offset=2)
    _, third = recipients.staff_tasks(limit=2, offset=4)
    assert count == 5 and [len(first), len(second), len(third)] == [2, 2, 1]
    references = [t["request"] for t in first + second + third]
    assert sorted(references) == sorted(r.reference for r in requests)
    late_count, late = recipients.staff_tasks(overdue=True)
    on_time_count, on_time = recipients.staff_tasks(overdue=False)
    assert (late_count, on_time_count) == (2, 3)
    assert all(t["overdue"] for t in late) and not any(t["overdue"] for t in on_time)
    assert recipients.staff_tasks(limit=10_000)[1] == recipients.staff_tasks(limit=200)[1]


def test_the_staff_task_api_pages_and_refuses_a_bad_limit(staff_api):
    response = staff_api.get("/api/v1/staff/tasks/?limit=5&offset=0")
    assert response.status_code == 200
    assert response.json()["limit"] == 5
    assert staff_api.get("/api/v1/staff/tasks/?limit=0").status_code == 400
    assert staff_api.get("/api/v1/staff/tasks/?offset=-1").status_code == 400


def test_an_unexpected_error_is_logged_and_kept_without_its_message(
    monkeypatch, caplog, django_capture_on_commit_callbacks
):
    store = ConnectedStore.objects.create(name="paper", kind="manual", map_yaml=MANUAL_MAP)
    (request,) = _processing(1, email="grace@example.org")
    job = Job.objects.create(request=request, store=store, kind="erasure")

    email = request.identity["email"]

    def broken(_job):
        raise ValueError(f"no row for {email} in contacts")

    monkeypatch.setitem(processing.EXECUTORS, "erasure", broken)
    with caplog.at_level(logging.INFO), django_capture_on_commit_callbacks(execute=False):
        processing.job_execute(job_id=job.pk)
    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert job.error == "internal error (ValueError)"
    assert "grace@" not in caplog.text
    assert "ValueError (message of 42 characters" in caplog.text
    assert "in broken" in caplog.text  # where it was raised is still logged
