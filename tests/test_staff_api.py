from datetime import date, timedelta

import pytest

from requests.models import AuditEvent, DataRequest
from requests.services import lifecycle
from requests.services.audit import SUBJECT

pytestmark = pytest.mark.django_db


def _in_review(email="ada@example.com", kind="access", due_on=None) -> DataRequest:
    """A request filed and verified, built through the services as the public flow does."""
    request = lifecycle.request_file(kind=kind, identity={"email": email})
    request = lifecycle.request_mark_verified(request=request, method="code")
    if due_on is not None:
        DataRequest.objects.filter(pk=request.pk).update(due_on=due_on)
        request.refresh_from_db()
    return request


def test_the_staff_api_refuses_anonymous_callers(public_api):
    assert public_api.get("/api/v1/staff/requests/").status_code == 401


def test_the_staff_api_refuses_users_who_are_not_staff(public_api, django_user_model):
    from requests.services.tokens import token_create

    user = django_user_model.objects.create_user(username="visitor", password="x")
    public_api.credentials(HTTP_AUTHORIZATION=f"Token {token_create(user=user, actor='system')}")
    assert public_api.get("/api/v1/staff/requests/").status_code == 403


def test_the_queue_lists_requests_soonest_due_first(staff_api):
    later = _in_review("later@example.com", due_on=date.today() + timedelta(days=20))
    sooner = _in_review("sooner@example.com", due_on=date.today() + timedelta(days=2))
    overdue = _in_review("overdue@example.com", due_on=date.today() - timedelta(days=1))
    response = staff_api.get("/api/v1/staff/requests/")
    assert response.status_code == 200
    references = [item["reference"] for item in response.json()["results"]]
    assert references == [overdue.reference, sooner.reference, later.reference]
    first = response.json()["results"][0]
    assert first["overdue"] is True
    assert response.json()["results"][1]["due_soon"] is True


def test_the_queue_filters_by_status_and_refuses_an_unknown_status(staff_api):
    reviewed = _in_review()
    lifecycle.request_file(kind="erasure", identity={"email": "new@example.com"})
    response = staff_api.get("/api/v1/staff/requests/?status=in_review")
    assert [item["reference"] for item in response.json()["results"]] == [reviewed.reference]
    bad = staff_api.get("/api/v1/staff/requests/?status=sleeping")
    assert bad.status_code == 400
    assert bad.json()["error"]["field"] == "status"
    assert "Unknown status" in bad.json()["error"]["message"]


def test_the_detail_shows_the_request_its_clock_its_jobs_and_its_timeline(staff_api):
    request = _in_review(kind="erasure")
    body = staff_api.get(f"/api/v1/staff/requests/{request.reference}/").json()
    assert body["reference"] == request.reference
    assert body["kind"] == "erasure"
    assert body["status"] == "in_review"
    assert body["received_at"]
    assert body["due_at"] == request.due_on.isoformat()
    assert body["jobs"] == []
    assert [event["action"] for event in body["events"]] == [
        "request.filed",
        "request.verified",
        "identity.verified",
    ]
    assert body["identifiers"][0]["type"] == "email"
    assert body["identifiers"][0]["verified"] and body["identifiers"][0]["method"] == "email_code"


def test_an_unknown_reference_is_a_404(staff_api):
    assert staff_api.get("/api/v1/staff/requests/nope/").status_code == 404


def test_rejecting_needs_a_legal_reason_and_records_it(staff_api, staff_user):
    request = _in_review()
    missing = staff_api.post(
        f"/api/v1/staff/requests/{request.reference}/reject/", {}, format="json"
    )
    assert missing.status_code == 400
    assert missing.json()["error"]["field"] == "reason"
    response = staff_api.post(
        f"/api/v1/staff/requests/{request.reference}/reject/",
        {"reason": "manifestly_unfounded", "message": "Duplicate of an answered request."},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["status"] == "rejected"
    event = AuditEvent.objects.filter(request=request).latest("id")
    assert event.action == "request.rejected"
    assert event.actor == f"staff:{staff_user.username}"
    assert event.details["reason"] == "manifestly_unfounded"


def test_a_transition_that_is_not_allowed_is_a_409_and_changes_nothing(staff_api):
    request = lifecycle.request_file(kind="access", identity={"email": "a@example.com"})
    events_before = AuditEvent.objects.count()
    response = staff_api.post(f"/api/v1/staff/requests/{request.reference}/approve/")
    assert response.status_code == 409
    assert DataRequest.objects.get(pk=request.pk).status == "awaiting_verification"
    assert AuditEvent.objects.count() == events_before


def test_approving_a_request_with_no_connected_stores_completes_it(
    staff_api, django_capture_on_commit_callbacks
):
    request = _in_review()
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_api.post(f"/api/v1/staff/requests/{request.reference}/approve/")
    assert response.status_code == 200
    request.refresh_from_db()
    assert request.status in {"processing", "completed"}
    actions = list(request.events.values_list("action", flat=True))
    assert "request.approved" in actions


def test_extending_moves_the_due_date_and_needs_a_reason(staff_api):
    request = _in_review()
    no_reason = staff_api.post(
        f"/api/v1/staff/requests/{request.reference}/extend/", {"months": 1}, format="json"
    )
    assert no_reason.status_code == 400
    assert no_reason.json()["error"]["field"] == "reason"
    response = staff_api.post(
        f"/api/v1/staff/requests/{request.reference}/extend/",
        {"months": 2, "reason": "Many stores to search"},
        format="json",
    )
    assert response.status_code == 200
    request.refresh_from_db()
    from requests import clock

    assert request.due_on == clock.due_date(request.clock_started_on, extension_months=2)
    assert request.extension_months == 2
    again = staff_api.post(
        f"/api/v1/staff/requests/{request.reference}/extend/",
        {"months": 1, "reason": "More"},
        format="json",
    )
    assert again.status_code == 400
    assert again.json()["error"]["field"] == "months"
    assert "at most 2 months" in again.json()["error"]["message"]


def test_an_extension_after_the_first_month_is_refused(staff_api):
    request = _in_review()
    DataRequest.objects.filter(pk=request.pk).update(
        clock_started_on=date.today() - timedelta(days=40)
    )
    response = staff_api.post(
        f"/api/v1/staff/requests/{request.reference}/extend/",
        {"months": 1, "reason": "Late"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "months"
    assert "first month" in response.json()["error"]["message"]


def test_asking_for_information_and_receiving_it_returns_the_request_to_review(staff_api):
    request = _in_review()
    asked = staff_api.post(
        f"/api/v1/staff/requests/{request.reference}/ask-information/",
        {"message": "Please confirm your customer number."},
        format="json",
    )
    assert asked.json()["status"] == "awaiting_information"
    back = staff_api.post(f"/api/v1/staff/requests/{request.reference}/information-received/")
    assert back.json()["status"] == "in_review"


def test_the_person_can_withdraw_a_request_under_review():
    request = _in_review()
    cancelled = lifecycle.request_cancel(request=request, actor=SUBJECT)
    assert cancelled.status == "cancelled"
    assert cancelled.closed_at is not None
