"""Bulk rejection from the queue: obvious spam rejected with one legal reason, each person told, a
request that cannot be rejected left alone and counted, and only for staff who decide."""

from __future__ import annotations

import pytest
from django.core import mail

from requests.models import AuditEvent
from requests.permissions import AUDITOR, role_group
from requests.services import lifecycle
from requests.states import RejectionReason, Status

pytestmark = pytest.mark.django_db

BULK = "/staff/bulk-reject/"


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


def make(email: str, *, verified: bool = True):
    filed = lifecycle.request_file(kind="access", identity={"email": email})
    if not verified:
        return filed
    return lifecycle.request_mark_verified(request=filed, method="code")


def status_of(data_request) -> str:
    data_request.refresh_from_db()
    return data_request.status


def test_ticked_requests_are_rejected_with_the_reason_and_each_person_is_told(
    staff_client, django_capture_on_commit_callbacks
):
    spam = [make(f"spam{n}@example.com") for n in range(3)]
    kept = make("real@example.com")
    before = len(mail.outbox)

    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            BULK,
            {
                "reference": [item.reference for item in spam],
                "bulk-reason": RejectionReason.MANIFESTLY_UNFOUNDED,
                "bulk-message": "These requests are automated spam.",
                "next": "/staff/?kind=access",
            },
            follow=True,
        )

    assert response.redirect_chain[-1] == ("/staff/?kind=access", 302)
    assert "3 requests rejected; each person is told." in response.content.decode()
    assert [status_of(item) for item in spam] == [Status.REJECTED] * 3
    assert status_of(kept) == Status.IN_REVIEW
    told = sorted(message.to[0] for message in mail.outbox[before:])
    assert told == [f"spam{n}@example.com" for n in range(3)]
    events = AuditEvent.objects.filter(action="request.rejected", actor="staff:dpo")
    assert events.count() == 3


def test_a_request_that_cannot_be_rejected_is_counted_and_left_alone(staff_client):
    in_review = make("a@example.com")
    closed = lifecycle.request_reject(
        request=make("b@example.com"), actor="staff:dpo", reason="excessive"
    )

    response = staff_client.post(
        BULK,
        {
            "reference": [in_review.reference, closed.reference, "no-such-request"],
            "bulk-reason": RejectionReason.MANIFESTLY_UNFOUNDED,
        },
        follow=True,
    )

    html = response.content.decode()
    assert "1 request rejected; the person is told." in html
    assert "2 requests could not be rejected in their state." in html
    assert status_of(in_review) == Status.REJECTED
    closed.refresh_from_db()
    assert closed.rejection_reason == "excessive"


def test_a_bulk_rejection_needs_a_reason_and_at_least_one_request(staff_client):
    data_request = make("a@example.com")

    no_reason = staff_client.post(BULK, {"reference": [data_request.reference]}, follow=True)
    nothing = staff_client.post(
        BULK, {"bulk-reason": RejectionReason.MANIFESTLY_UNFOUNDED}, follow=True
    )
    other = staff_client.post(
        BULK,
        {"reference": [data_request.reference], "bulk-reason": RejectionReason.OTHER},
        follow=True,
    )

    assert "Choose the legal reason for the refusal." in no_reason.content.decode()
    assert "Choose at least one request." in nothing.content.decode()
    assert "Explain the legal reason in the message." in other.content.decode()
    assert status_of(data_request) == Status.IN_REVIEW


def test_an_auditor_cannot_bulk_reject_and_sees_no_boxes_to_tick(client, django_user_model):
    auditor = django_user_model.objects.create_user("audrey", password="pw", is_staff=True)
    auditor.groups.add(role_group(AUDITOR))
    data_request = make("a@example.com")
    client.force_login(auditor)

    refused = client.post(
        BULK,
        {"reference": [data_request.reference], "bulk-reason": "manifestly_unfounded"},
    )
    queue = client.get("/staff/").content.decode()

    assert refused.status_code == 403
    assert status_of(data_request) == Status.IN_REVIEW
    assert 'name="reference"' not in queue
    assert 'id="bulk-reject"' not in queue


def test_the_way_back_never_leaves_the_portal(staff_client):
    data_request = make("a@example.com")

    response = staff_client.post(
        BULK,
        {
            "reference": [data_request.reference],
            "bulk-reason": RejectionReason.MANIFESTLY_UNFOUNDED,
            "next": "https://elsewhere.example/phish",
        },
    )

    assert response.status_code == 302
    assert response["Location"] == "/staff/"
