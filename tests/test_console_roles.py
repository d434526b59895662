"""Staff roles: the groups dpo, reviewer and auditor, checked in one place for pages and API alike.

Every refusal here is tested by making the request (a page load, a form post, an API call), not by
looking for a hidden link.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from requests import permissions
from requests.models import AuditEvent, ConnectedStore
from requests.permissions import AUDITOR, DPO, REVIEWER, role_group, user_role
from requests.services import lifecycle
from requests.states import Status

pytestmark = pytest.mark.django_db

MANUAL_STORE = {"name": "paper-files", "kind": "manual"}


@pytest.fixture
def make_staff(django_user_model):
    def _make(username: str, role: str | None, **flags):
        flags.setdefault("is_staff", True)
        user = django_user_model.objects.create_user(username=username, password="pw", **flags)
        if role:
            user.groups.add(role_group(role))
        return user

    return _make


@pytest.fixture
def signed_in(make_staff):
    """A browser-like client (session cookie, CSRF-exempt test client) signed in with a role."""

    def _sign_in(role: str | None, username: str | None = None):
        client = APIClient()
        client.force_login(make_staff(username or f"{role or 'staff'}-user", role))
        return client

    return _sign_in


@pytest.fixture
def in_review():
    filed = lifecycle.request_file(kind="access", identity={"email": "ada@example.com"})
    return lifecycle.request_mark_verified(request=filed, method="code")


def _status_of(data_request) -> str:
    data_request.refresh_from_db()
    return data_request.status


# Who holds which role


def test_the_three_role_groups_exist_once_the_database_is_migrated():
    assert set(Group.objects.values_list("name", flat=True)) >= {DPO, REVIEWER, AUDITOR}


def test_a_superuser_is_a_dpo_and_staff_without_a_group_are_auditors(make_staff):
    assert user_role(make_staff("root", None, is_superuser=True)) == DPO
    assert user_role(make_staff("legacy", None)) == AUDITOR


def test_someone_who_is_not_staff_or_not_active_has_no_role_whatever_their_group(make_staff):
    assert user_role(make_staff("outsider", DPO, is_staff=False)) is None
    assert user_role(make_staff("gone", DPO, is_active=False)) is None


def test_a_user_in_several_groups_holds_the_most_powerful_role(make_staff):
    user = make_staff("both", AUDITOR)
    user.groups.add(role_group(REVIEWER))
    assert user_role(user) == REVIEWER


# Reviewers decide requests, and reach nothing that is the DPO's


def test_a_reviewer_approves_a_request_on_its_page(signed_in, in_review):
    client = signed_in(REVIEWER)
    response = client.post(f"/staff/requests/{in_review.reference}/", {"action": "approve"})
    assert response.status_code == 302
    assert _status_of(in_review) == Status.PROCESSING


def test_a_reviewer_cannot_open_or_post_to_the_staff_accounts_page(signed_in, django_user_model):
    client = signed_in(REVIEWER)
    page = client.get("/staff/users/")
    created = client.post(
        "/staff/users/", {"action": "create", "new-username": "mallory", "new-role": DPO}
    )
    assert page.status_code == 403
    assert created.status_code == 403
    assert not django_user_model.objects.filter(username="mallory").exists()


def test_a_reviewer_cannot_connect_change_or_check_stores_through_the_api(signed_in, make_staff):
    reviewer = signed_in(REVIEWER)
    dpo = APIClient()
    dpo.force_login(make_staff("the-dpo", DPO))

    refused = reviewer.post("/api/v1/staff/stores/", MANUAL_STORE, format="json")
    assert refused.status_code == 403
    assert not ConnectedStore.objects.exists()

    assert dpo.post("/api/v1/staff/stores/", MANUAL_STORE, format="json").status_code == 201
    name = MANUAL_STORE["name"]
    assert reviewer.get(f"/api/v1/staff/stores/{name}/").status_code == 200
    assert (
        reviewer.put(f"/api/v1/staff/stores/{name}/map/", {"map": ""}, format="json").status_code
        == 403
    )
    assert reviewer.post(f"/api/v1/staff/stores/{name}/check/").status_code == 403


# Auditors read and change nothing


def test_an_auditor_reads_the_queue_and_the_request_page_without_the_decision_forms(
    signed_in, in_review
):
    client = signed_in(AUDITOR)
    queue = client.get("/staff/")
    page = client.get(f"/staff/requests/{in_review.reference}/")
    assert queue.status_code == 200
    assert in_review.reference in queue.content.decode()
    assert page.status_code == 200
    html = page.content.decode()
    assert "Approve the request" not in html
    assert "Your role (Auditor) can read requests but not decide them." in html


def test_an_auditor_cannot_approve_on_the_page_or_through_the_api(signed_in, in_review):
    client = signed_in(AUDITOR)
    page = client.post(f"/staff/requests/{in_review.reference}/", {"action": "approve"})
    api = client.post(f"/api/v1/staff/requests/{in_review.reference}/approve/")
    assert page.status_code == 403
    assert api.status_code == 403
    assert _status_of(in_review) == Status.IN_REVIEW


def test_an_auditor_reads_the_api_but_cannot_download_a_persons_package(signed_in, in_review):
    client = signed_in(AUDITOR)
    assert client.get(f"/api/v1/staff/requests/{in_review.reference}/").status_code == 200
    assert client.get(f"/api/v1/staff/requests/{in_review.reference}/package/").status_code == 403


def test_staff_without_a_group_are_read_only_until_given_a_role(signed_in, in_review):
    client = signed_in(None, username="legacy")
    assert client.get("/staff/").status_code == 200
    assert client.post(f"/api/v1/staff/requests/{in_review.reference}/approve/").status_code == 403
    assert _status_of(in_review) == Status.IN_REVIEW


def test_people_who_are_not_staff_get_nothing_even_in_a_role_group(make_staff, in_review):
    client = APIClient()
    client.force_login(make_staff("outsider", DPO, is_staff=False))
    assert client.get("/staff/").status_code == 403
    assert client.get("/api/v1/staff/requests/").status_code == 403


# The DPO's staff accounts page


def test_a_dpo_creates_a_reviewer_whose_first_password_is_shown_once_and_works(
    signed_in, client, in_review
):
    dpo = signed_in(DPO, username="chief")
    response = dpo.post(
        "/staff/users/", {"action": "create", "new-username": "rita", "new-role": REVIEWER}
    )
    assert response.status_code == 200
    password = response.context["created"]["password"]
    assert password in response.content.decode()
    assert password not in dpo.get("/staff/users/").content.decode()

    signed = client.post("/staff/login/", {"username": "rita", "password": password})
    assert signed.status_code == 302
    client.post(f"/staff/requests/{in_review.reference}/", {"action": "approve"})
    assert _status_of(in_review) == Status.PROCESSING
    event = AuditEvent.objects.get(action="staff.created")
    assert event.actor == "staff:chief"
    assert event.details == {"username": "rita", "role": REVIEWER}
    assert password not in str(event.details)


def test_a_dpo_changes_a_reviewer_into_an_auditor_and_the_change_is_audited(signed_in, make_staff):
    dpo = signed_in(DPO, username="chief")
    rita = make_staff("rita", REVIEWER)
    response = dpo.post(
        "/staff/users/", {"action": "set_role", "user": rita.pk, f"user-{rita.pk}-role": AUDITOR}
    )
    assert response.status_code == 302
    permissions.forget_role(rita)
    assert user_role(rita) == AUDITOR
    event = AuditEvent.objects.get(action="staff.role_changed")
    assert event.actor == "staff:chief"
    assert event.details == {"username": "rita", "role": AUDITOR, "previous_role": REVIEWER}


def test_a_dpo_cannot_change_their_own_role(signed_in, django_user_model):
    dpo = signed_in(DPO, username="chief")
    me = django_user_model.objects.get(username="chief")
    response = dpo.post(
        "/staff/users/",
        {"action": "set_role", "user": me.pk, f"user-{me.pk}-role": AUDITOR},
        follow=True,
    )
    assert "You cannot change your own role." in response.content.decode()
    assert user_role(django_user_model.objects.get(pk=me.pk)) == DPO


def test_a_taken_username_or_an_unknown_role_is_refused_next_to_the_field(signed_in):
    dpo = signed_in(DPO, username="chief")
    taken = dpo.post(
        "/staff/users/", {"action": "create", "new-username": "CHIEF", "new-role": REVIEWER}
    )
    unknown = dpo.post(
        "/staff/users/", {"action": "create", "new-username": "x", "new-role": "admin"}
    )
    bad_user = dpo.post("/staff/users/", {"action": "set_role", "user": "abc"})
    assert taken.status_code == 400
    assert "A staff account with this username exists." in taken.content.decode()
    assert unknown.status_code == 400
    assert "Choose one of the roles given." in unknown.content.decode()
    assert bad_user.status_code == 404
