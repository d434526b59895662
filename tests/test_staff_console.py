"""The staff console pages, driven with the test client as a DPO uses them."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse

from requests import clock
from requests.models import AuditEvent, DataRequest
from requests.permissions import REVIEWER, role_group
from requests.services import lifecycle
from requests.states import RejectionReason, Status

pytestmark = pytest.mark.django_db

QUEUE = reverse("staff-queue")
ROW_REFERENCE = re.compile(r'<a class="reference" href="/staff/requests/([^/]+)/">')


def detail_url(data_request) -> str:
    return reverse("staff-request", args=[data_request.reference])


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def make_request():
    """A request filed through the lifecycle service, optionally moved on to a later state."""

    def _make(*, kind="access", email="ada@example.com", verified=True, **identity):
        data_request = lifecycle.request_file(kind=kind, identity={"email": email, **identity})
        if verified:
            data_request = lifecycle.request_mark_verified(request=data_request, method="code")
        return data_request

    return _make


def set_due(data_request, due_on):
    # The clock is set at filing; tests move it directly to build a queue with known dates.
    DataRequest.objects.filter(pk=data_request.pk).update(due_on=due_on)


def references_on(response) -> list[str]:
    return ROW_REFERENCE.findall(response.content.decode())


# Who may enter


def test_anonymous_visitors_are_sent_to_the_login_page(client):
    response = client.get(QUEUE)

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('staff-login')}?next={QUEUE}"


def test_signed_in_people_who_are_not_staff_are_refused(client, django_user_model, make_request):
    person = django_user_model.objects.create_user(username="clerk", password="pw-1234567")
    client.force_login(person)
    data_request = make_request()

    queue = client.get(QUEUE)
    detail = client.post(detail_url(data_request), {"action": "approve"})

    assert queue.status_code == 403
    assert "Access denied" in queue.content.decode()
    assert detail.status_code == 403
    data_request.refresh_from_db()
    assert data_request.status == Status.IN_REVIEW


def test_staff_sign_in_on_the_login_page_and_land_on_the_queue(client, staff_user):
    page = client.get(reverse("staff-login"))
    wrong = client.post(reverse("staff-login"), {"username": "dpo", "password": "nope"})
    right = client.post(
        reverse("staff-login"),
        {"username": "dpo", "password": "correct horse battery", "next": QUEUE},
        follow=True,
    )

    assert 'for="id_username"' in page.content.decode()
    assert wrong.status_code == 200
    assert "There is a problem" in wrong.content.decode()
    assert right.redirect_chain[-1] == (QUEUE, 302)
    assert "Request queue" in right.content.decode()


def test_staff_can_sign_out(staff_client):
    response = staff_client.post(reverse("staff-logout"))

    assert response.status_code == 302
    assert staff_client.get(QUEUE).status_code == 302


# The queue


def test_the_queue_lists_requests_soonest_due_first(staff_client, make_request):
    today = clock.today()
    later = make_request(email="later@example.com")
    sooner = make_request(email="sooner@example.com")
    middle = make_request(email="middle@example.com")
    set_due(later, today + timedelta(days=20))
    set_due(sooner, today + timedelta(days=2))
    set_due(middle, today + timedelta(days=9))

    response = staff_client.get(QUEUE)

    assert response.status_code == 200
    assert references_on(response) == [sooner.reference, middle.reference, later.reference]
    assert "later@example.com" not in response.content.decode()


def test_the_queue_filters_by_status(staff_client, make_request):
    in_review = make_request()
    unverified = make_request(verified=False)

    filtered = staff_client.get(QUEUE, {"status": Status.AWAITING_VERIFICATION})
    everything = staff_client.get(QUEUE, {"status": ""})

    assert references_on(filtered) == [unverified.reference]
    assert set(references_on(everything)) == {in_review.reference, unverified.reference}


def test_an_unknown_status_filter_is_explained_instead_of_failing(staff_client, make_request):
    data_request = make_request()

    response = staff_client.get(QUEUE, {"status": "lost"})

    assert response.status_code == 200
    assert "There is no status called “lost”; showing open requests." in response.content.decode()
    assert references_on(response) == [data_request.reference]


def test_overdue_and_due_soon_requests_are_flagged(staff_client, make_request):
    today = clock.today()
    overdue = make_request(email="overdue@example.com")
    due_soon = make_request(email="soon@example.com")
    relaxed = make_request(email="relaxed@example.com")
    set_due(overdue, today - timedelta(days=1))
    set_due(due_soon, today + timedelta(days=3))
    set_due(relaxed, today + timedelta(days=25))

    rows = staff_client.get(QUEUE).content.decode().split("<tr>")[2:]

    assert len(rows) == 3
    assert overdue.reference in rows[0] and "badge--overdue" in rows[0]
    assert due_soon.reference in rows[1] and "badge--due-soon" in rows[1]
    assert relaxed.reference in rows[2]
    assert "badge--overdue" not in rows[2] and "badge--due-soon" not in rows[2]


def test_the_queue_shows_fifty_requests_a_page(staff_client):
    DataRequest.objects.bulk_create(
        DataRequest(kind="access", identity={"email": f"p{n}@example.com"}) for n in range(51)
    )

    first = staff_client.get(QUEUE)
    second = staff_client.get(QUEUE, {"page": 2})
    beyond = staff_client.get(QUEUE, {"page": "many"})

    assert len(references_on(first)) == 50
    assert len(references_on(second)) == 1
    assert "Page 2 of 2" in second.content.decode()
    assert len(references_on(beyond)) == 50


# A request's page


def test_the_request_page_shows_the_identity_masked_and_the_timeline_as_sentences(
    staff_client, make_request
):
    data_request = make_request(email="ada@example.com", phone="+33612345678")

    response = staff_client.get(detail_url(data_request))

    html = response.content.decode()
    assert response.status_code == 200
    assert "ada@example.com" not in html and "+33612345678" not in html
    assert "a***@example.com" in html
    timeline = html.split('id="timeline-title"', 1)[1]
    assert timeline.index("Request for access filed") < timeline.index(
        "The person confirmed their email address"
    )
    assert "The person" in timeline
    assert "Email address, Phone number" in timeline  # the types given, never their values
    assert "request.filed" not in timeline


def test_an_unknown_reference_is_not_found(staff_client):
    assert staff_client.get(reverse("staff-request", args=["nothing-here"])).status_code == 404


def test_approving_on_the_page_starts_processing_and_is_audited(staff_client, make_request):
    data_request = make_request()

    response = staff_client.post(detail_url(data_request), {"action": "approve"}, follow=True)

    data_request.refresh_from_db()
    assert data_request.status == Status.PROCESSING
    assert "Request approved; processing has started." in response.content.decode()
    event = AuditEvent.objects.get(request=data_request, action="request.approved")
    assert event.actor == "staff:dpo"


def test_rejecting_on_the_page_records_the_legal_reason(staff_client, make_request):
    data_request = make_request()

    response = staff_client.post(
        detail_url(data_request),
        {
            "action": "reject",
            "reject-reason": RejectionReason.MANIFESTLY_UNFOUNDED,
            "reject-message": "No account was ever opened.",
        },
    )

    assert response.status_code == 302
    data_request.refresh_from_db()
    assert data_request.status == Status.REJECTED
    assert data_request.rejection_reason == RejectionReason.MANIFESTLY_UNFOUNDED
    assert data_request.staff_message == "No account was ever opened."
    event = AuditEvent.objects.get(request=data_request, action="request.rejected")
    assert event.actor == "staff:dpo"
    assert event.details["reason"] == RejectionReason.MANIFESTLY_UNFOUNDED


def test_a_rejection_without_a_reason_is_sent_back_with_the_message_kept(
    staff_client, make_request
):
    data_request = make_request()

    response = staff_client.post(
        detail_url(data_request),
        {"action": "reject", "reject-reason": "", "reject-message": "Draft text"},
    )

    html = response.content.decode()
    assert response.status_code == 400
    assert "Choose the legal reason for the refusal." in html
    assert "Draft text" in html
    data_request.refresh_from_db()
    assert data_request.status == Status.IN_REVIEW
    assert not AuditEvent.objects.filter(request=data_request, action="request.rejected").exists()


def test_extending_on_the_page_moves_the_due_date_and_is_audited(staff_client, make_request):
    data_request = make_request()
    first_due = data_request.due_on

    staff_client.post(
        detail_url(data_request),
        {"action": "extend", "extend-months": "2", "extend-reason": "Twelve systems to search."},
    )

    data_request.refresh_from_db()
    assert data_request.extension_months == 2
    assert data_request.due_on == clock.due_date(data_request.clock_started_on, extension_months=2)
    assert data_request.due_on > first_due
    event = AuditEvent.objects.get(request=data_request, action="request.extended")
    assert event.actor == "staff:dpo"
    assert event.details["months"] == 2


def test_an_extension_the_law_does_not_allow_is_shown_as_a_message(staff_client, make_request):
    data_request = make_request()
    lifecycle.request_extend(request=data_request, actor="staff:dpo", months=2, reason="Big.")

    page = staff_client.get(detail_url(data_request)).content.decode()
    response = staff_client.post(
        detail_url(data_request),
        {"action": "extend", "extend-months": "1", "extend-reason": "More."},
        follow=True,
    )

    assert 'value="extend"' not in page
    assert "at most 2 months in all" in response.content.decode()
    data_request.refresh_from_db()
    assert data_request.extension_months == 2


def test_asking_for_information_and_marking_it_received(staff_client, make_request):
    data_request = make_request()

    staff_client.post(
        detail_url(data_request),
        {"action": "ask_information", "ask-message": "Which shop did you buy from?"},
    )
    data_request.refresh_from_db()
    assert data_request.status == Status.AWAITING_INFORMATION
    assert data_request.staff_message == "Which shop did you buy from?"

    staff_client.post(detail_url(data_request), {"action": "information_received"})
    data_request.refresh_from_db()
    assert data_request.status == Status.IN_REVIEW
    actions = list(AuditEvent.objects.filter(request=data_request).values_list("action", flat=True))
    assert actions[-2:] == ["request.information_requested", "request.information_received"]


def test_a_decision_the_state_does_not_allow_is_refused_with_a_message(staff_client, make_request):
    data_request = make_request(verified=False)

    page = staff_client.get(detail_url(data_request)).content.decode()
    response = staff_client.post(detail_url(data_request), {"action": "approve"}, follow=True)

    assert 'value="approve"' not in page
    assert "cannot become processing" in response.content.decode()
    data_request.refresh_from_db()
    assert data_request.status == Status.AWAITING_VERIFICATION


def test_an_unknown_action_changes_nothing(staff_client, make_request):
    data_request = make_request()

    response = staff_client.post(detail_url(data_request), {"action": "delete"}, follow=True)

    assert "Unknown action." in response.content.decode()
    data_request.refresh_from_db()
    assert data_request.status == Status.IN_REVIEW


def test_the_console_speaks_french_too(staff_client, make_request):
    data_request = make_request()

    response = staff_client.get(detail_url(data_request), HTTP_ACCEPT_LANGUAGE="fr")

    html = response.content.decode()
    assert '<html lang="fr">' in html
    assert "Approuver la demande" in html
    assert "En cours d\N{RIGHT SINGLE QUOTATION MARK}examen" in html


@pytest.mark.django_db
def test_a_refused_decision_is_explained_in_french_to_french_staff(client, django_user_model):
    staff = django_user_model.objects.create_user("dpo-fr", password="pw", is_staff=True)
    staff.groups.add(role_group(REVIEWER))
    client.force_login(staff)
    filed = lifecycle.request_file(kind="access", identity={"email": "fr@example.com"})
    verified = lifecycle.request_mark_verified(request=filed, method="code")
    lifecycle.request_extend(request=verified, actor="staff:dpo-fr", months=2, reason="Volume")
    response = client.post(
        f"/staff/requests/{verified.reference}/",
        {"action": "extend", "extend-months": "1", "extend-reason": "Encore"},
        HTTP_ACCEPT_LANGUAGE="fr",
        follow=True,
    )
    assert "déjà utilisé" in response.content.decode()
