"""Assignment: a request is given to a DPO or reviewer from its page, audited, and the queue filters
the requests assigned to whoever looks."""

from __future__ import annotations

import pytest

from requests.models import AuditEvent
from requests.permissions import AUDITOR, REVIEWER, role_group
from requests.services import lifecycle
from requests.services.assignment import request_assign
from requests.services.errors import ServiceError

pytestmark = pytest.mark.django_db


@pytest.fixture
def person(django_user_model):
    def _make(username: str, role: str):
        user = django_user_model.objects.create_user(username, password="pw", is_staff=True)
        user.groups.add(role_group(role))
        return user

    return _make


def make(email="ada@example.com"):
    filed = lifecycle.request_file(kind="access", identity={"email": email})
    return lifecycle.request_mark_verified(request=filed, method="code")


def assign_url(data_request) -> str:
    return f"/staff/requests/{data_request.reference}/assign/"


def test_a_reviewer_takes_a_request_and_the_assignment_is_audited(client, person):
    rita = person("rita", REVIEWER)
    data_request = make()
    client.force_login(rita)

    response = client.post(assign_url(data_request), {"me": "1"}, follow=True)

    data_request.refresh_from_db()
    assert data_request.assigned_to == rita
    html = response.content.decode()
    assert "The request is assigned to rita." in html
    assert "<dt>Assigned to</dt><dd>rita</dd>" in html
    event = AuditEvent.objects.get(request=data_request, action="request.assigned")
    assert event.actor == "staff:rita"
    assert event.details == {"assignee": "rita", "previous": None}


def test_a_dpo_gives_a_request_to_a_reviewer_who_finds_it_under_assigned_to_me(
    client, staff_user, person
):
    rita = person("rita", REVIEWER)
    hers, other = make("a@example.com"), make("b@example.com")
    client.force_login(staff_user)
    client.post(assign_url(hers), {"assign-assignee": rita.pk})

    client.force_login(rita)
    mine = client.get("/staff/", {"mine": "on"}).content.decode()
    everything = client.get("/staff/").content.decode()

    assert hers.reference in mine and other.reference not in mine
    assert hers.reference in everything and other.reference in everything


def test_an_auditor_can_neither_assign_nor_be_given_a_request(client, staff_user, person):
    audrey = person("audrey", AUDITOR)
    data_request = make()

    client.force_login(audrey)
    refused = client.post(assign_url(data_request), {"me": "1"})
    client.force_login(staff_user)
    wrong = client.post(assign_url(data_request), {"assign-assignee": audrey.pk}, follow=True)

    assert refused.status_code == 403
    assert "Choose one of the people given." in wrong.content.decode()
    data_request.refresh_from_db()
    assert data_request.assigned_to is None
    with pytest.raises(ServiceError, match="Only a DPO or a reviewer"):
        request_assign(request=data_request, assignee=audrey, actor="staff:dpo")


def test_a_request_is_taken_off_its_assignee_but_a_closed_one_keeps_it(client, staff_user):
    data_request = make()
    request_assign(request=data_request, assignee=staff_user, actor="staff:dpo")
    client.force_login(staff_user)

    client.post(assign_url(data_request), {"assign-assignee": ""})
    data_request.refresh_from_db()
    assert data_request.assigned_to is None

    request_assign(request=data_request, assignee=staff_user, actor="staff:dpo")
    closed = lifecycle.request_reject(
        request=data_request, actor="staff:dpo", reason="manifestly_unfounded"
    )
    with pytest.raises(ServiceError, match="closed request"):
        request_assign(request=closed, assignee=None, actor="staff:dpo")
    page = client.get(f"/staff/requests/{closed.reference}/").content.decode()
    assert "<dt>Assigned to</dt><dd>dpo</dd>" in page
    assert (
        'action="/staff/requests/' not in page.split('id="actions-title"')[1].split("</section>")[0]
    )
