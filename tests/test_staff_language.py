"""A staff member's console language: set by a DPO on the users page or by the staff member with
the console's switcher, kept on their profile (audited), and used by every console page whatever
the browser asks for."""

from __future__ import annotations

import pytest
from django.test import Client

from requests.models import AuditEvent, StaffProfile
from requests.permissions import AUDITOR, DPO, REVIEWER, role_group

pytestmark = pytest.mark.django_db

ENGLISH_BROWSER = {"HTTP_ACCEPT_LANGUAGE": "en"}
FRENCH_BROWSER = {"HTTP_ACCEPT_LANGUAGE": "fr"}


@pytest.fixture
def make_staff(django_user_model):
    def _make(username: str, role: str):
        user = django_user_model.objects.create_user(
            username=username, password="pw", is_staff=True
        )
        user.groups.add(role_group(role))
        return user

    return _make


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def language_of(response) -> str:
    return response.headers["Content-Language"]


def test_a_dpo_sets_a_reviewers_language_and_the_reviewers_console_follows_it(make_staff):
    dana, rita = make_staff("dana", DPO), make_staff("rita", REVIEWER)
    reviewer = client_for(rita)
    before = reviewer.get("/staff/", **ENGLISH_BROWSER)

    response = client_for(dana).post(
        "/staff/users/",
        {"action": "set_language", "user": rita.pk, f"language-{rita.pk}-language": "fr"},
    )
    after = reviewer.get("/staff/", **ENGLISH_BROWSER)

    assert response.status_code == 302
    assert language_of(before) == "en"
    assert language_of(after) == "fr" and 'lang="fr"' in after.content.decode()
    assert "File d\u2019attente" in after.content.decode()
    event = AuditEvent.objects.get(action="staff.language_changed")
    assert event.actor == "staff:dana"
    assert event.details == {"username": "rita", "language": "fr", "previous_language": ""}


def test_the_users_page_shows_each_accounts_language(make_staff):
    dana, rita = make_staff("dana", DPO), make_staff("rita", REVIEWER)
    StaffProfile.objects.create(user=rita, language="fr")

    page = client_for(dana).get("/staff/users/", **ENGLISH_BROWSER).content.decode()

    assert f'name="language-{rita.pk}-language"' in page
    assert '<option value="fr" selected>' in page
    assert "Console language of rita" in page


def test_a_staff_member_chooses_their_own_language_with_the_console_switcher(make_staff):
    alan = make_staff("alan", AUDITOR)
    auditor = client_for(alan)
    queue = auditor.get("/staff/", **ENGLISH_BROWSER).content.decode()

    response = auditor.post(
        "/staff/language/", {"language": "fr", "next": "/staff/dashboard/"}, **ENGLISH_BROWSER
    )
    dashboard = auditor.get("/staff/dashboard/", **ENGLISH_BROWSER)

    assert 'action="/staff/language/"' in queue
    assert response.status_code == 302 and response.headers["Location"] == "/staff/dashboard/"
    assert StaffProfile.objects.get(user=alan).language == "fr"
    assert language_of(dashboard) == "fr"
    event = AuditEvent.objects.get(action="staff.language_changed")
    assert event.actor == "staff:alan" and event.details["language"] == "fr"


def test_the_chosen_language_wins_over_a_french_browser_too(make_staff):
    dana = make_staff("dana", DPO)
    StaffProfile.objects.create(user=dana, language="en")

    page = client_for(dana).get("/staff/", **FRENCH_BROWSER)

    assert language_of(page) == "en"


def test_without_a_choice_the_console_follows_the_browser(make_staff):
    dana = make_staff("dana", DPO)

    page = client_for(dana).get("/staff/", **FRENCH_BROWSER)

    assert language_of(page) == "fr"


def test_the_switcher_sends_nobody_to_another_site(make_staff):
    auditor = client_for(make_staff("alan", AUDITOR))

    response = auditor.post("/staff/language/", {"language": "en", "next": "https://evil.test/"})

    assert response.headers["Location"] == "/staff/"


def test_an_unknown_language_is_refused_and_nothing_changes(make_staff):
    dana, rita = make_staff("dana", DPO), make_staff("rita", REVIEWER)
    dpo = client_for(dana)

    on_page = dpo.post(
        "/staff/users/",
        {"action": "set_language", "user": rita.pk, f"language-{rita.pk}-language": "xx"},
    )
    own = dpo.post("/staff/language/", {"language": "xx"})
    shown = dpo.get(on_page.headers["Location"], **ENGLISH_BROWSER).content.decode()

    assert on_page.status_code == 302 and own.status_code == 302
    assert "Choose one of the languages given." in shown
    assert not StaffProfile.objects.exclude(language="").exists()
    assert not AuditEvent.objects.filter(action="staff.language_changed").exists()


def test_only_a_dpo_sets_someone_elses_language(make_staff):
    rita, dana = make_staff("rita", REVIEWER), make_staff("dana", DPO)

    response = client_for(rita).post(
        "/staff/users/",
        {"action": "set_language", "user": dana.pk, f"language-{dana.pk}-language": "fr"},
    )

    assert response.status_code == 403
    assert not StaffProfile.objects.filter(user=dana).exists()


def test_signed_out_visitors_cannot_set_a_language_on_the_console(make_staff):
    response = Client().post("/staff/language/", {"language": "fr"})

    assert response.status_code == 302 and "/staff/login/" in response.headers["Location"]
    assert not StaffProfile.objects.exists()
