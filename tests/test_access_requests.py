"""Access requests with other work around them: an erasure of the same person waits for the copy,
manual systems are confirmed by staff, and repeated requests are flagged, never refused."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.db.models import F

from requests import storage, tasks
from requests.models import AccessPackage, AuditEvent, DataRequest, Job
from requests.services import access, jobs, processing
from requests.services.jobs import JobOutcome
from tests.access_fixtures import FakeFinder, approve, file_and_verify, files_store, open_zip

pytestmark = pytest.mark.django_db

MANUAL_MAP = """
system: Payroll (paper files)
owner: payroll-lead@example.com
collections:
  payslips:
    categories: [salary]
    info: {purposes: [Paying you], legal_basis: legal obligation, retention: 6 years}
"""


@pytest.fixture
def finder(monkeypatch, tmp_path, settings):
    settings.DATA_DIR = tmp_path / "data"
    fake = FakeFinder()
    monkeypatch.setattr(access, "_find_into", fake)
    files_store("shop", tmp_path / "shop")
    fake.add("shop", "customers", {"id": 12, "email": "ada@example.com"})
    fake.add("shop", "orders", {"id": 1001, "customer_id": 12}, {"id": 1002, "customer_id": 12})
    return fake


@pytest.fixture
def erasures(monkeypatch):
    """A stand-in erasure executor that notes, for each run, whether the access package existed."""
    runs: list[dict] = []

    def execute(job):
        runs.append(
            {
                "request": job.request.reference,
                "access_packages": AccessPackage.objects.count(),
            }
        )
        return JobOutcome(counts={"customers": {"deleted": 1}})

    monkeypatch.setitem(processing.EXECUTORS, "erasure", execute)
    # Nothing was erased: the erasure's own finish (sweep, certificate) is tested elsewhere.
    monkeypatch.setitem(processing.FINALISERS, "erasure", lambda request: {})
    return runs


def _detail(staff_api, reference):
    return staff_api.get(f"/api/v1/staff/requests/{reference}/").json()


def test_an_erasure_approved_while_the_access_is_open_waits_for_the_package(
    finder, erasures, public_api, file_request, staff_api, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    access_ref = file_and_verify(public_api, file_request, kind="access")
    erasure_ref = file_and_verify(public_api, file_request, kind="erasure")

    detail = approve(staff_api, capture, erasure_ref)
    assert detail["status"] == "processing"
    assert [(job["state"], job["held_for"]) for job in detail["jobs"]] == [("held", "access")]
    assert access_ref in detail["jobs"][0]["error"]
    assert erasures == []
    # Nothing runs them: a delivered task, the advance and the reconciler leave them held.
    job = Job.objects.get(request__reference=erasure_ref)
    with capture(execute=True):
        tasks.job_run.delay(job.pk)
        tasks.request_process.delay(job.request_id)
        jobs.jobs_reconcile()
    job.refresh_from_db()
    assert (job.state, job.attempts) == ("held", 0)
    assert erasures == []

    approve(staff_api, capture, access_ref)
    assert _detail(staff_api, access_ref)["status"] == "completed"
    assert erasures == [{"request": erasure_ref, "access_packages": 1}]
    assert _detail(staff_api, erasure_ref)["status"] == "completed"
    actions = list(
        AuditEvent.objects.filter(request__reference=erasure_ref).values_list("action", flat=True)
    )
    assert actions.index("request.held_for_access") < actions.index("request.released_for_erasure")
    # The person's copy holds the records the erasure then removed.
    package = AccessPackage.objects.get(request__reference=access_ref)
    assert package.counts == {"shop": {"customers": 1, "orders": 2}}


def test_an_erasure_held_for_an_access_request_that_is_then_rejected_is_released(
    finder,
    erasures,
    public_api,
    file_request,
    staff_api,
    django_capture_on_commit_callbacks,
    settings,
):
    capture = django_capture_on_commit_callbacks
    access_ref = file_and_verify(public_api, file_request, kind="access")
    erasure_ref = file_and_verify(public_api, file_request, kind="erasure")
    approve(staff_api, capture, erasure_ref)
    with capture(execute=True):
        staff_api.post(
            f"/api/v1/staff/requests/{access_ref}/reject/", {"reason": "excessive"}, format="json"
        )
    assert erasures == []
    settings.PORTAL_JOB_REQUEUE_AFTER = timedelta(0)
    with capture(execute=True):
        jobs.jobs_reconcile()
    assert [run["request"] for run in erasures] == [erasure_ref]
    assert _detail(staff_api, erasure_ref)["status"] == "completed"


def test_an_unverified_access_request_does_not_hold_an_erasure(
    finder, erasures, public_api, file_request, staff_api, django_capture_on_commit_callbacks
):
    file_request(kind="access")  # never verified: perhaps not the person's own
    erasure_ref = file_and_verify(public_api, file_request, kind="erasure")
    approve(staff_api, django_capture_on_commit_callbacks, erasure_ref)
    assert [run["request"] for run in erasures] == [erasure_ref]


def test_another_persons_access_request_does_not_hold_an_erasure(
    finder, erasures, public_api, file_request, staff_api, django_capture_on_commit_callbacks
):
    file_and_verify(public_api, file_request, kind="access", email="bob@example.com")
    erasure_ref = file_and_verify(public_api, file_request, kind="erasure")
    approve(staff_api, django_capture_on_commit_callbacks, erasure_ref)
    assert [run["request"] for run in erasures] == [erasure_ref]


def test_a_manual_system_waits_for_staff_and_their_note_reaches_the_report(
    finder, public_api, file_request, staff_api, django_capture_on_commit_callbacks, settings
):
    from requests.models import ConnectedStore

    ConnectedStore.objects.create(name="payroll", kind="manual", map_yaml=MANUAL_MAP)
    capture = django_capture_on_commit_callbacks
    reference = file_and_verify(public_api, file_request)
    detail = approve(staff_api, capture, reference)
    assert detail["status"] == "processing"
    payroll = next(job for job in detail["jobs"] if job["store"] == "payroll")
    assert payroll["state"] == "waiting"
    assert "Payroll (paper files)" in payroll["error"]
    assert "/jobs/payroll/confirm/" in payroll["error"]

    url = f"/api/v1/staff/requests/{reference}/jobs/payroll/confirm/"
    assert staff_api.post(url, {}, format="json").status_code == 400
    shop = staff_api.post(
        f"/api/v1/staff/requests/{reference}/jobs/shop/confirm/", {"note": "x"}, format="json"
    )
    assert shop.status_code == 400 and shop.json()["error"]["code"] == "not_manual"
    with capture(execute=True):
        response = staff_api.post(
            url, {"note": "Three payslips found; copies sent by post."}, format="json"
        )
    assert response.status_code == 200, response.content
    confirmed_job = next(job for job in response.json()["jobs"] if job["store"] == "payroll")
    assert confirmed_job["state"] == "done"
    assert _detail(staff_api, reference)["status"] == "completed"
    again = staff_api.post(url, {"note": "again"}, format="json")
    assert again.status_code == 409

    package = AccessPackage.objects.get(request__reference=reference)
    html = open_zip((settings.DATA_DIR / package.path).read_bytes()).read("index.html").decode()
    assert "Payroll (paper files)" in html
    assert "Three payslips found; copies sent by post." in html
    assert "Paying you" in html and "6 years" in html
    confirmed = AuditEvent.objects.get(request__reference=reference, action="job.confirmed")
    assert confirmed.details == {"store": "payroll", "kind": "access"}
    assert "payslips" not in repr(confirmed.details)


def test_repeated_requests_are_flagged_to_staff_but_never_refused(
    finder, public_api, file_request, staff_api, settings
):
    settings.PORTAL_EXCESSIVE_REQUESTS_PER_YEAR = 4
    references = [file_and_verify(public_api, file_request) for _ in range(4)]
    other = file_and_verify(public_api, file_request, email="bob@example.com")
    details = [_detail(staff_api, reference) for reference in references]
    assert [d["status"] for d in details] == ["in_review"] * 4
    assert [d["earlier_requests"] for d in details] == [0, 1, 2, 3]
    assert [d["possibly_excessive"] for d in details] == [False, False, False, True]
    assert _detail(staff_api, other)["earlier_requests"] == 0
    # An erasure by the same person is a different kind: not counted towards the flag.
    erasure = file_and_verify(public_api, file_request, kind="erasure")
    assert _detail(staff_api, erasure)["possibly_excessive"] is False
    assert _detail(staff_api, erasure)["earlier_requests"] == 4


def test_every_request_gets_the_whole_history_with_no_look_back_window(
    finder, public_api, file_request, staff_api, django_capture_on_commit_callbacks
):
    # The finder is given the identity, never a date range: old records are in the package too.
    finder.add("shop", "orders", {"id": 1, "customer_id": 12, "placed_on": "1999-01-01"})
    reference = file_and_verify(public_api, file_request)
    approve(staff_api, django_capture_on_commit_callbacks, reference)
    package = AccessPackage.objects.get(request__reference=reference)
    assert package.counts["shop"]["orders"] == 3
    assert "ready" in mail.outbox[-1].subject.lower()
    assert DataRequest.objects.get(reference=reference).status == "completed"


def test_a_worker_that_lost_its_jobs_lease_stops_writing_and_leaves_the_job_to_its_new_owner(
    finder,
    public_api,
    file_request,
    staff_api,
    django_capture_on_commit_callbacks,
    settings,
    monkeypatch,
):
    settings.PORTAL_JOB_LEASE = timedelta(0)  # look at the lease at the first check
    finder.add("shop", "orders", *[{"id": i, "customer_id": 12} for i in range(2500)])
    reference = file_and_verify(public_api, file_request)

    def taken_over(identity, connectors, sink):
        # Another worker claims the job (its lease ran out) while this one is writing.
        Job.objects.filter(request__reference=reference).update(attempts=F("attempts") + 1)
        finder(identity, connectors, sink)

    monkeypatch.setattr(access, "_find_into", taken_over)
    detail = approve(staff_api, django_capture_on_commit_callbacks, reference)
    assert detail["status"] == "processing"
    job = Job.objects.get(request__reference=reference)
    assert (job.state, job.attempts, job.error) == ("running", 2, "")
    assert not storage.exists(access.part_name(reference, "shop"))
    assert not AccessPackage.objects.exists()


def test_staff_see_the_packages_facts_but_not_its_content(
    finder, public_api, file_request, staff_api, django_capture_on_commit_callbacks
):
    reference = file_and_verify(public_api, file_request)
    assert _detail(staff_api, reference)["package"] is None
    approve(staff_api, django_capture_on_commit_callbacks, reference)
    package = _detail(staff_api, reference)["package"]
    assert package["records"] == 3
    assert package["counts"] == {"shop": {"customers": 1, "orders": 2}}
    assert package["downloads"] == 0 and package["deleted_at"] is None
    assert len(package["sha256"]) == 64
