"""The person's status page: the five steps with the current one marked, what comes next and
by when, a completed erasure's outcome in plain words, the reply to a request for information,
and all of it in the request's language whatever the browser asks for."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from requests import selectors
from requests.models import AuditEvent, DataRequest, SubjectReply
from requests.services import lifecycle
from requests.services.errors import TransitionNotAllowed
from requests.services.replies import subject_reply_submit
from requests.states import RejectionReason, Status
from tests.access_fixtures import approve
from tests.erasure_fixtures import PERSON, file_erasure, shop_and_crm

pytestmark = pytest.mark.django_db

STEP = re.compile(r'<li class="steps__item steps__item--(\w+)" data-step="(\w+)"')
ENGLISH_DATE = re.compile(
    r"\b\d{1,2} (?:January|February|March|April|May|June|July|August|September|October|"
    r"November|December) \d{4}\b"
)
FRENCH_DATE = re.compile(
    r"\b\d{1,2} (?:janvier|février|mars|avril|mai|juin|juillet|août|septembre|octobre|"
    r"novembre|décembre) \d{4}\b"
)
ISO_OR_NUMERIC_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b")


def _file(language: str = "en", kind: str = "access") -> DataRequest:
    return lifecycle.request_file(kind=kind, identity={"email": PERSON}, language=language)


def _path(data_request: DataRequest) -> str:
    return reverse("request-status", args=[data_request.reference, data_request.status_token()])


def _steps(html: str) -> dict[str, str]:
    return {key: state for state, key in STEP.findall(html)}


def _page(client, data_request, **headers) -> str:
    response = client.get(_path(data_request), **headers)
    assert response.status_code == 200
    return response.content.decode()


def test_a_new_request_has_been_filed_and_waits_for_the_email_to_be_confirmed(client):
    html = _page(client, _file())

    assert _steps(html) == {
        "filed": "complete",
        "verified": "current",
        "review": "upcoming",
        "processing": "upcoming",
        "done": "upcoming",
    }
    assert 'data-step="verified" aria-current="step"' in html
    assert "Next: confirm your email address" in html


def test_a_verified_request_is_in_review_and_says_what_comes_next_and_by_when(client):
    data_request = lifecycle.request_mark_verified(request=_file(), method="code")

    html = _page(client, data_request)

    assert _steps(html)["verified"] == "complete"
    assert _steps(html)["review"] == "current"
    assert "Next: once our privacy team approves it, we send you a copy of your data." in html
    due = data_request.due_on
    assert f"We will answer by {due.day} {due:%B %Y} at the latest." in html


def test_an_approved_request_is_being_carried_out(client):
    data_request = lifecycle.request_mark_verified(request=_file(kind="erasure"), method="code")
    data_request = lifecycle.request_approve(request=data_request, actor="staff:dpo")

    html = _page(client, data_request)

    assert list(_steps(html).values()) == [
        "complete",
        "complete",
        "complete",
        "current",
        "upcoming",
    ]
    assert "we erase your data and tell you what we erased" in html


def test_a_rejected_request_skips_the_processing_step_and_has_no_next_step(client):
    data_request = lifecycle.request_mark_verified(request=_file(), method="code")
    lifecycle.request_reject(
        request=data_request, actor="staff:dpo", reason=RejectionReason.MANIFESTLY_UNFOUNDED
    )

    html = _page(client, data_request)

    assert _steps(html) == {
        "filed": "complete",
        "verified": "complete",
        "review": "complete",
        "processing": "skipped",
        "done": "current",
    }
    assert 'class="next-step"' not in html


def test_the_page_speaks_the_requests_language_whatever_the_browser_asks_for(client):
    french = _file(language="fr")
    english = _file(language="en")

    french_html = _page(client, french, HTTP_ACCEPT_LANGUAGE="en-GB,en;q=0.9")
    english_html = _page(client, english, HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9")

    assert '<html lang="fr">' in french_html
    assert "Votre demande" in french_html and "Your request" not in french_html
    assert "Déposée" in french_html
    assert '<html lang="en">' in english_html
    assert "Filed" in english_html and "Votre demande" not in english_html


def test_a_language_cookie_does_not_override_the_requests_language(client):
    french = _file(language="fr")
    client.cookies["django_language"] = "en"

    html = _page(client, french)

    assert "Votre demande" in html


def test_dates_on_the_page_use_one_format_per_language(client):
    for language, pattern in (("en", ENGLISH_DATE), ("fr", FRENCH_DATE)):
        data_request = lifecycle.request_mark_verified(
            request=_file(language=language), method="code"
        )
        html = _page(client, data_request)
        text = re.sub(r"<[^>]+>", " ", html)

        assert len(pattern.findall(text)) >= 2, language  # received on, and answer by
        assert not ISO_OR_NUMERIC_DATE.search(text), language


def test_the_person_replies_to_a_request_for_information_and_it_goes_back_to_review(
    client, django_capture_on_commit_callbacks
):
    data_request = lifecycle.request_mark_verified(request=_file(), method="code")
    lifecycle.request_ask_information(
        request=data_request, actor="staff:dpo", message="Which shop did you buy from?"
    )
    page = _page(client, data_request)
    assert 'name="message"' in page and "Send my reply" in page

    response = client.post(
        _path(data_request), {"reply": "1", "message": "  The one in Lyon, order 4411.  "}
    )

    assert response.status_code == 302
    data_request.refresh_from_db()
    assert data_request.status == Status.IN_REVIEW
    (reply,) = selectors.request_subject_replies(request=data_request)
    assert reply.body == "The one in Lyon, order 4411."
    assert reply.question == "Which shop did you buy from?"
    event = AuditEvent.objects.get(request=data_request, action="request.information_received")
    assert event.actor == "subject"
    assert event.details["reply"] == reply.pk
    assert event.details["reply_characters"] == len("The one in Lyon, order 4411.")
    assert "Lyon" not in str(event.details)
    after = _page(client, data_request)
    assert "We received your reply on" in after and 'name="message"' not in after


def test_a_reply_is_stored_encrypted(client):
    from django.db import connection

    data_request = lifecycle.request_mark_verified(request=_file(), method="code")
    lifecycle.request_ask_information(request=data_request, actor="staff:dpo", message="Order?")
    subject_reply_submit(request=data_request, message="order 4411")

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT body FROM {SubjectReply._meta.db_table}")
        (stored,) = cursor.fetchone()
    assert "4411" not in stored and stored


def test_an_empty_reply_is_explained_next_to_the_field_and_changes_nothing(client):
    data_request = lifecycle.request_mark_verified(request=_file(language="fr"), method="code")
    lifecycle.request_ask_information(request=data_request, actor="staff:dpo", message="Order?")

    response = client.post(_path(data_request), {"reply": "1", "message": "   "})

    assert response.status_code == 400
    assert "Indiquez les informations demandées." in response.content.decode()
    data_request.refresh_from_db()
    assert data_request.status == Status.AWAITING_INFORMATION
    assert not SubjectReply.objects.exists()


def test_a_reply_when_nothing_was_asked_is_refused_and_kept_nowhere(client):
    data_request = lifecycle.request_mark_verified(request=_file(), method="code")

    response = client.post(_path(data_request), {"reply": "1", "message": "hello"}, follow=True)

    assert "We are not waiting for information on this request." in response.content.decode()
    assert not SubjectReply.objects.exists()
    with pytest.raises(TransitionNotAllowed):
        subject_reply_submit(request=data_request, message="hello")


def test_purging_a_closed_requests_identity_empties_its_replies(client):
    data_request = lifecycle.request_mark_verified(request=_file(), method="code")
    lifecycle.request_ask_information(request=data_request, actor="staff:dpo", message="Order?")
    subject_reply_submit(request=data_request, message="order 4411")
    lifecycle.request_cancel(request=data_request)

    lifecycle.request_purge_identity(request=data_request)

    reply = SubjectReply.objects.get()
    assert reply.body == "" and reply.question == ""


def test_a_completed_erasure_says_what_was_erased_and_what_was_kept_and_why(
    tmp_path,
    settings,
    public_api,
    file_request,
    staff_api,
    client,
    django_capture_on_commit_callbacks,
):
    settings.DATA_DIR = tmp_path / "data"
    shop_and_crm(tmp_path)
    reference = file_erasure(public_api, file_request)
    detail = approve(staff_api, django_capture_on_commit_callbacks, reference)
    assert detail["status"] == "completed", detail["attention_reason"]
    data_request = DataRequest.objects.get(reference=reference)

    html = _page(client, data_request)
    text = " ".join(re.sub(r"<[^>]+>", " ", html).split())

    assert "What we erased" in text
    assert "customers in shop: 1 record erased." in text
    assert "contacts in crm: 1 record erased." in text
    assert "orders in shop: 2 records, with your personal details removed" in text
    assert "Why: Tax law keeps orders for 10 years (Art. 17(3)(b))" in text
    assert PERSON not in html
    assert _steps(html)["done"] == "current"


def test_the_email_asking_for_information_sends_the_person_to_the_reply_form(
    mailoutbox, django_capture_on_commit_callbacks
):
    data_request = lifecycle.request_mark_verified(request=_file(language="fr"), method="code")
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.request_ask_information(request=data_request, actor="staff:dpo", message="?")

    body = mailoutbox[-1].body
    assert "un formulaire vous permet de répondre" in body
    assert data_request.status_url() in body
