"""The auto-approval policy (PORTAL_AUTO_APPROVE): kinds it names are approved when the person
verifies, through the staff approval service; anything staff should look at stays in review."""

from __future__ import annotations

import pytest
from django.core import mail
from django.utils import timezone

from requests.models import AuditEvent, DataRequest, Job
from requests.models.jobs import JobState
from requests.services import lifecycle
from requests.services.auto_approval import policy_description, request_auto_approve
from tests.access_fixtures import files_store
from tests.conftest import code_from

pytestmark = pytest.mark.django_db


@pytest.fixture
def store(tmp_path):
    return files_store("crm", tmp_path / "crm")


@pytest.fixture
def access_policy(settings):
    settings.PORTAL_AUTO_APPROVE = ["access"]


def verify(public_api, reference: str, capture) -> tuple[str, list]:
    """Verify through the public API with the emailed code: the status in the answer, and the
    work queued on commit."""
    with capture() as queued:
        response = public_api.post(
            f"/api/v1/requests/{reference}/verify/", {"code": code_from(mail.outbox[-1])}
        )
    assert response.status_code == 200, response.content
    return response.json()["status"], queued


def queued_tasks(callbacks) -> list[tuple[str, list]]:
    """(task name, args) of each Celery task sent on commit."""
    out = []
    for callback in callbacks:
        # Other on-commit work (sealing the audit events) is not a task: only partials of one are.
        task = getattr(getattr(callback, "func", None), "__self__", None)
        if task is not None:
            out.append((task.name, callback.keywords["args"]))
    return out


def test_an_access_request_is_approved_on_verification_and_its_jobs_are_queued(
    access_policy, store, public_api, file_request, django_capture_on_commit_callbacks
):
    reference = file_request(kind="access")

    answer, queued = verify(public_api, reference, django_capture_on_commit_callbacks)

    request = DataRequest.objects.get(reference=reference)
    assert request.status == "processing"
    job = Job.objects.get(request=request, store=store)
    assert job.state == JobState.QUEUED
    assert ("requests.tasks.job_run", [job.pk, request.pk]) in queued_tasks(queued)
    approval = AuditEvent.objects.get(request=request, action="request.approved")
    assert approval.actor == "system"
    assert approval.details["automatic"] is True
    assert approval.details["policy"] == "PORTAL_AUTO_APPROVE"
    # The person is told at once that their request is being processed.
    assert answer == "processing"


def test_an_erasure_request_stays_in_review_and_staff_approve_it(
    access_policy, store, public_api, file_request, staff_api, django_capture_on_commit_callbacks
):
    reference = file_request(kind="erasure")

    verify(public_api, reference, django_capture_on_commit_callbacks)

    request = DataRequest.objects.get(reference=reference)
    assert request.status == "in_review"
    assert not Job.objects.filter(request=request).exists()
    assert not AuditEvent.objects.filter(request=request, action="request.approved").exists()
    with django_capture_on_commit_callbacks():
        response = staff_api.post(f"/api/v1/staff/requests/{reference}/approve/")
    assert response.status_code == 200, response.content
    assert AuditEvent.objects.get(request=request, action="request.approved").actor == "staff:dpo"


def test_without_a_policy_every_request_waits_for_staff(
    settings, store, public_api, file_request, django_capture_on_commit_callbacks
):
    settings.PORTAL_AUTO_APPROVE = []
    reference = file_request(kind="access")

    verify(public_api, reference, django_capture_on_commit_callbacks)

    request = DataRequest.objects.get(reference=reference)
    assert request.status == "in_review"
    assert not AuditEvent.objects.filter(
        request=request, action__in=["request.approved", "request.auto_approval_withheld"]
    ).exists()


def test_a_request_flagged_possibly_excessive_is_left_for_staff_with_the_reason(
    access_policy, settings, store, public_api, file_request, django_capture_on_commit_callbacks
):
    settings.PORTAL_EXCESSIVE_REQUESTS_PER_YEAR = 2
    first = file_request(kind="access")
    verify(public_api, first, django_capture_on_commit_callbacks)
    second = file_request(kind="access")

    verify(public_api, second, django_capture_on_commit_callbacks)

    assert DataRequest.objects.get(reference=first).status == "processing"
    request = DataRequest.objects.get(reference=second)
    assert request.status == "in_review"
    withheld = AuditEvent.objects.get(request=request, action="request.auto_approval_withheld")
    assert withheld.actor == "system"
    assert withheld.details["policy"] == "PORTAL_AUTO_APPROVE"
    assert withheld.details["reasons"] == ["possibly_excessive"]
    assert "ada@example.com" not in str(withheld.details)


def test_an_identifier_nobody_proved_keeps_the_request_for_staff_but_a_name_does_not(
    access_policy, store, public_api, file_request, django_capture_on_commit_callbacks
):
    with_phone = file_request(kind="access", email="pia@example.com", phone="+33612345678")
    verify(public_api, with_phone, django_capture_on_commit_callbacks)
    with_name = file_request(kind="access", email="nia@example.com", name="Nia Nobody")
    verify(public_api, with_name, django_capture_on_commit_callbacks)

    held = DataRequest.objects.get(reference=with_phone)
    assert held.status == "in_review"
    withheld = AuditEvent.objects.get(request=held, action="request.auto_approval_withheld")
    assert withheld.details["reasons"] == ["unproven_identifiers"]
    assert withheld.details["identity_types"] == ["phone"]
    assert "+33612345678" not in str(withheld.details)
    assert DataRequest.objects.get(reference=with_name).status == "processing"


def test_a_request_whose_identity_was_purged_is_never_approved_by_the_policy(
    access_policy, settings, store
):
    settings.PORTAL_AUTO_APPROVE = []
    filed = lifecycle.request_file(kind="access", identity={"email": "gone@example.com"})
    verified = lifecycle.request_mark_verified(request=filed, method="code")
    DataRequest.objects.filter(pk=verified.pk).update(
        identity={}, identity_purged_at=timezone.now()
    )
    settings.PORTAL_AUTO_APPROVE = ["access"]

    result = request_auto_approve(request=DataRequest.objects.get(pk=verified.pk))

    assert result.status == "in_review"
    withheld = AuditEvent.objects.get(request=verified, action="request.auto_approval_withheld")
    assert withheld.details["reasons"] == ["identity_purged"]
    assert not Job.objects.filter(request=verified).exists()


def test_the_staff_timeline_says_why_the_policy_left_a_request_for_review(
    access_policy, settings, store, public_api, file_request, django_capture_on_commit_callbacks
):
    from requests.timeline import describe

    reference = file_request(kind="access", phone="+33612345678")
    verify(public_api, reference, django_capture_on_commit_callbacks)

    event = AuditEvent.objects.get(
        request__reference=reference, action="request.auto_approval_withheld"
    )
    sentence = describe(event).sentence
    assert "identifiers the person gave are not confirmed yet" in sentence
    assert "PORTAL_AUTO_APPROVE" in sentence


def test_the_policy_describes_which_kinds_are_automatic_and_which_reviewed(settings):
    settings.PORTAL_AUTO_APPROVE = ["access"]
    assert policy_description() == {"automatic": ["access"], "reviewed": ["erasure"]}
    settings.PORTAL_AUTO_APPROVE = []
    assert policy_description() == {"automatic": [], "reviewed": ["access", "erasure"]}


def test_a_kind_the_portal_does_not_know_stops_the_portal_at_start(tmp_path):
    import subprocess
    import sys

    from tests.processes import ROOT, portal_env

    result = subprocess.run(
        [sys.executable, "-c", "import portal.settings"],
        cwd=ROOT,
        env=portal_env(PORTAL_DATA_DIR=str(tmp_path), PORTAL_AUTO_APPROVE="access,rectify"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "PORTAL_AUTO_APPROVE takes request kinds (access, erasure); got rectify" in (
        result.stderr
    )


def test_the_dashboard_tells_staff_which_kinds_are_approved_on_verification(
    settings, client, staff_user
):
    client.force_login(staff_user)
    settings.PORTAL_AUTO_APPROVE = ["access"]
    html = client.get("/staff/dashboard/").content.decode()
    assert (
        "Access requests are approved on verification; erasure requests are always reviewed."
        in html
    )
    settings.PORTAL_AUTO_APPROVE = []
    html = client.get("/staff/dashboard/").content.decode()
    assert "Every request is reviewed by staff before it is processed." in html


def test_the_policy_sentence_is_in_the_staff_members_language(settings):
    from django.utils import translation

    settings.PORTAL_AUTO_APPROVE = ["access"]
    with translation.override("fr"):
        assert policy_description()["automatic"] == ["access"]
        from requests.services.auto_approval import policy_sentence

        assert policy_sentence().startswith(
            "Les demandes d\N{RIGHT SINGLE QUOTATION MARK}accès sont approuvées dès leur "
            "vérification ; "
        )
