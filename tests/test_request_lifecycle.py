from datetime import timedelta

import pytest
from django.utils import timezone

from requests.models import AuditEvent, DataRequest
from requests.services import lifecycle
from requests.services.errors import TransitionNotAllowed
from requests.states import ALLOWED_TRANSITIONS, TERMINAL, Status

pytestmark = pytest.mark.django_db


def test_terminal_states_allow_no_transition():
    for state in TERMINAL:
        assert ALLOWED_TRANSITIONS[state] == frozenset()


def test_every_state_has_its_transitions_declared():
    assert set(ALLOWED_TRANSITIONS) == set(Status.values)


def test_a_closed_request_cannot_be_approved():
    request = lifecycle.request_file(kind="access", identity={"email": "a@example.com"})
    lifecycle.request_cancel(request=request)
    with pytest.raises(TransitionNotAllowed):
        lifecycle.request_approve(request=request, actor="staff:x")
    assert DataRequest.objects.get(pk=request.pk).status == "cancelled"


def test_each_change_of_state_leaves_an_audit_event_with_from_and_to():
    request = lifecycle.request_file(kind="access", identity={"email": "a@example.com"})
    lifecycle.request_mark_verified(request=request, method="code")
    lifecycle.request_reject(request=request, actor="staff:x", reason="excessive")
    events = list(AuditEvent.objects.filter(request=request).order_by("id"))
    assert [e.action for e in events] == [
        "request.filed",
        "request.verified",
        "identity.verified",  # the email, proven by the request's own check
        "request.rejected",
    ]
    assert events[1].details["from"] == "awaiting_verification"
    assert events[1].details["to"] == "in_review"


def test_audit_details_hold_no_personal_data():
    request = lifecycle.request_file(
        kind="access",
        identity={"email": "private.person@example.com", "name": "Private Person"},
    )
    for event in AuditEvent.objects.filter(request=request):
        text = repr(event.details).lower()
        assert "private" not in text


def test_the_clock_starts_at_verification_when_so_configured(settings):
    settings.PORTAL_CLOCK_START = "verification"
    request = lifecycle.request_file(kind="access", identity={"email": "a@example.com"})
    assert request.due_on is None
    verified = lifecycle.request_mark_verified(request=request, method="code")
    assert verified.clock_started_on == timezone.localdate()
    assert verified.due_on is not None


def test_unverified_requests_expire_after_the_set_period_and_lose_their_identity(settings):
    settings.PORTAL_UNVERIFIED_EXPIRY = timedelta(days=14)
    stale = lifecycle.request_file(kind="erasure", identity={"email": "stale@example.com"})
    fresh = lifecycle.request_file(kind="erasure", identity={"email": "fresh@example.com"})
    DataRequest.objects.filter(pk=stale.pk).update(received_at=timezone.now() - timedelta(days=15))
    from requests.tasks import requests_expire_unverified

    assert requests_expire_unverified.apply().get() == 1
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert stale.status == "expired"
    assert stale.identity == {}
    assert stale.subject_key == ""
    assert stale.verification.code_hash == ""
    assert fresh.status == "awaiting_verification"
    assert fresh.identity["email"] == "fresh@example.com"
    assert AuditEvent.objects.filter(request=stale, action="request.expired").exists()


def test_a_repeat_request_is_counted_for_staff_but_never_refused():
    for _ in range(3):
        request = lifecycle.request_file(kind="access", identity={"email": "Often@Example.com"})
    filed = AuditEvent.objects.filter(request=request, action="request.filed").get()
    assert filed.details["earlier_requests_by_subject"] == 2
    assert request.status == "awaiting_verification"


def test_closed_requests_lose_their_identity_after_the_retention_period(settings):
    settings.PORTAL_CLOSED_RETENTION = timedelta(days=365)
    old = lifecycle.request_file(kind="access", identity={"email": "old@example.com"})
    recent = lifecycle.request_file(kind="access", identity={"email": "recent@example.com"})
    still_open = lifecycle.request_file(kind="access", identity={"email": "open@example.com"})
    for request in (old, recent):
        lifecycle.request_cancel(request=request)
    DataRequest.objects.filter(pk=old.pk).update(closed_at=timezone.now() - timedelta(days=366))
    DataRequest.objects.filter(pk=still_open.pk).update(
        received_at=timezone.now() - timedelta(days=400)
    )
    from requests.tasks import requests_purge_closed_identities

    assert requests_purge_closed_identities.apply().get() == 1
    old.refresh_from_db()
    recent.refresh_from_db()
    still_open.refresh_from_db()
    assert old.identity == {}
    assert old.subject_key == ""
    assert old.identity_purged_at is not None
    assert recent.identity["email"] == "recent@example.com"
    assert still_open.identity["email"] == "open@example.com"
    assert AuditEvent.objects.filter(request=old, action="request.identity_purged").exists()
    # A second sweep finds nothing more to do.
    assert requests_purge_closed_identities.apply().get() == 0
