"""Staff retry of a request that needs attention."""

import pytest

from requests.demo import DEMO_MAP, demo_database_build
from requests.models import DataRequest, Job, JobState
from requests.services import job_staff, lifecycle, processing, stores
from requests.services.audit import SYSTEM
from requests.services.errors import ServiceError
from requests.states import Status

pytestmark = pytest.mark.django_db


@pytest.fixture
def processed_access(tmp_path, django_capture_on_commit_callbacks, monkeypatch):
    """An access request whose only job is done but whose last step (the package) failed."""
    path = tmp_path / "shop.sqlite3"
    demo_database_build(path)
    stores.store_create(
        name="shop", kind="sqlite", url=f"sqlite:///{path}", map_yaml=DEMO_MAP, actor=SYSTEM
    )
    request = lifecycle.request_file(kind="access", identity={"email": "ada@demo.example"})
    request = lifecycle.request_mark_verified(request=request, method="code")

    def disk_full(_request):
        raise ServiceError("the package could not be written: no space left on the device")

    monkeypatch.setitem(processing.FINALISERS, "access", disk_full)
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.request_approve(request=request, actor="staff:dpo")
    request.refresh_from_db()
    return request


def test_a_failed_last_step_sends_the_request_to_staff_with_the_reason(processed_access):
    assert processed_access.status == Status.NEEDS_ATTENTION
    assert "no space left" in processed_access.attention_reason
    assert Job.objects.get(request=processed_access).state == JobState.DONE


def test_retrying_runs_the_last_step_again_once_the_cause_is_fixed(
    processed_access, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setitem(processing.FINALISERS, "access", lambda _request: {"package": "ok"})
    with django_capture_on_commit_callbacks(execute=True):
        job_staff.request_retry_failed_jobs(request=processed_access, actor="staff:dpo")
    assert DataRequest.objects.get(pk=processed_access.pk).status == Status.COMPLETED
    actions = list(processed_access.events.values_list("action", flat=True))
    assert actions[-2:] == ["request.retried", "request.completed"]
