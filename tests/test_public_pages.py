"""The public pages, driven with the test client the way a person uses them in a browser."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.core.cache import cache
from django.template.loader import render_to_string
from django.urls import reverse

from requests.models import AuditEvent, DataRequest
from requests.services import lifecycle
from requests.states import RejectionReason, Status

pytestmark = pytest.mark.django_db

CODE_LINE = re.compile(r"^\s+(\d{6})\s*$", re.MULTILINE)
LINK = re.compile(r"https?://\S+/verify/\S+/")
CSRF_VALUE = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')


@pytest.fixture
def file_through_form(client, django_capture_on_commit_callbacks, mailoutbox):
    """File through the form as a person would; return the request and the email it caused."""

    def _file(**fields):
        data = {"kind": "access", "email": "ada@example.com", **fields}
        sent_before = len(mailoutbox)
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(reverse("request-file"), data)
        assert response.status_code == 302, response.content.decode()
        reference = response["Location"].split("/")[2]
        data_request = DataRequest.objects.get(reference=reference)
        mail = mailoutbox[-1] if len(mailoutbox) > sent_before else None
        return data_request, response, mail

    return _file


def code_from(mail) -> str:
    return CODE_LINE.search(mail.body).group(1)


def link_path_from(mail) -> str:
    return urlsplit(LINK.search(mail.body).group(0)).path


def status_path(data_request) -> str:
    return reverse("request-status", args=[data_request.reference, data_request.status_token()])


# Filing


def test_the_request_page_explains_both_kinds_in_a_labelled_fieldset(client):
    response = client.get(reverse("request-file"))

    html = response.content.decode()
    assert response.status_code == 200
    assert '<html lang="en">' in html
    assert "<legend" in html and "What would you like us to do?" in html
    assert 'for="id_kind_0"' in html and 'for="id_email"' in html
    assert "a copy of the personal data we hold about you" in html
    assert "We delete the personal data we hold about you" in html


def test_a_person_files_an_access_request_and_is_told_to_check_their_email(
    file_through_form, client
):
    data_request, response, mail = file_through_form(
        kind="access", email="  Ada@Example.com ", phone="+33 6 12 34 56 78", name="Ada Lovelace"
    )

    assert response["Location"] == reverse("request-filed", args=[data_request.reference])
    page = client.get(response["Location"]).content.decode()
    assert "Check your email" in page
    assert "We sent a code to the email address you gave" in page
    assert 'action="{}"'.format(reverse("request-verify", args=[data_request.reference])) in page
    assert data_request.kind == "access"
    assert data_request.status == Status.AWAITING_VERIFICATION
    assert data_request.identity == {
        "email": "ada@example.com",
        "phone": "+33612345678",
        "name": "Ada Lovelace",
    }
    assert data_request.source == "public"
    assert data_request.language == "en"
    assert mail.to == ["ada@example.com"]


def test_the_confirmation_page_does_not_echo_the_email_address(file_through_form, client):
    _, response, _ = file_through_form(email="grace@example.com", name="Grace Hopper")

    page = client.get(response["Location"]).content.decode()

    assert "grace@example.com" not in page
    assert "Grace Hopper" not in page


def test_the_confirmation_page_is_identical_for_a_known_and_an_unknown_person(
    file_through_form, client
):
    file_through_form(email="known@example.com", account_id="C-1001")
    known, known_response, _ = file_through_form(email="known@example.com", account_id="C-1001")
    stranger, stranger_response, _ = file_through_form(email="stranger@example.com")
    assert DataRequest.objects.filter(subject_key=known.subject_key).count() == 2

    def normalised(data_request, response):
        body = client.get(response["Location"]).content.decode()
        # The reference is the only thing that may differ; CSRF tokens are random per page view.
        body = body.replace(data_request.reference, "REFERENCE")
        return CSRF_VALUE.sub('name="csrfmiddlewaretoken" value="TOKEN"', body)

    known_page = normalised(known, known_response)
    stranger_page = normalised(stranger, stranger_response)
    assert "REFERENCE" in known_page
    assert known_page == stranger_page


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"email": ""}, "Enter your email address."),
        ({"email": "not-an-address"}, "Enter a valid email address"),
        ({"kind": "rectification"}, "Choose one of the options given."),
        ({"kind": ""}, "Choose whether you want a copy of your data or want it erased."),
        ({"name": "x" * 201}, "Use at most 200 characters."),
        ({"phone": "12"}, "Enter a valid phone number in international form"),
        ({"account_id": "a" * 129}, "Use at most 128 characters."),
    ],
    ids=[
        "missing email",
        "malformed email",
        "unknown kind",
        "no kind",
        "oversized name",
        "bad phone",
        "oversized account id",
    ],
)
def test_bad_input_is_explained_next_to_the_field_and_files_nothing(
    client, mailoutbox, django_capture_on_commit_callbacks, fields, message
):
    data = {"kind": "erasure", "email": "ada@example.com", **fields}

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("request-file"), data)

    html = response.content.decode()
    assert response.status_code == 400
    assert "There is a problem" in html
    assert html.count(message) == 2  # once in the summary at the top, once next to the field
    assert DataRequest.objects.count() == 0
    assert AuditEvent.objects.count() == 0
    assert mailoutbox == []


def test_every_problem_is_reported_at_once_and_linked_to_its_field(client):
    response = client.post(
        reverse("request-file"), {"kind": "access", "email": "nope", "phone": "12"}
    )

    html = response.content.decode()
    assert '<a href="#id_email">' in html
    assert '<a href="#id_phone">' in html
    assert 'aria-describedby="id_email_helptext id_email_error"' in html
    assert 'aria-invalid="true"' in html
    assert "<title>Error:" in html


def test_typed_values_are_kept_when_the_form_comes_back_with_an_error(client):
    response = client.post(
        reverse("request-file"), {"kind": "erasure", "email": "ada@example.com", "phone": "12"}
    )

    html = response.content.decode()
    assert 'value="ada@example.com"' in html
    assert 'value="erasure" id="id_kind_1" aria-describedby="id_kind_1_hint" checked' in html


def test_filing_too_often_from_one_address_is_slowed_down(client, settings):
    cache.clear()
    settings.PORTAL_RATE_LIMITS = {**settings.PORTAL_RATE_LIMITS, "file_per_address": (2, 86400)}
    data = {"kind": "access", "email": "ada@example.com"}
    try:
        statuses = [client.post(reverse("request-file"), data).status_code for _ in range(3)]
        html = client.post(reverse("request-file"), data).content.decode()
    finally:
        cache.clear()

    assert statuses == [302, 302, 429]
    assert "Too many attempts from your connection" in html
    assert DataRequest.objects.count() == 2


def test_an_unknown_reference_shows_the_not_found_page(client):
    response = client.get(reverse("request-filed", args=["no-such-reference"]))

    assert response.status_code == 404
    assert "Page not found" in response.content.decode()


# Verifying


def test_the_code_from_the_email_confirms_the_request_and_opens_the_status_page(
    file_through_form, client
):
    data_request, _, mail = file_through_form(kind="erasure")

    response = client.post(
        reverse("request-verify", args=[data_request.reference]), {"code": code_from(mail)}
    )

    assert response.status_code == 302
    assert response["Location"] == status_path(data_request)
    data_request.refresh_from_db()
    assert data_request.status == Status.IN_REVIEW
    page = client.get(response["Location"]).content.decode()
    assert "your email address is confirmed" in page
    assert "our privacy team is reviewing your request" in page


def test_a_code_pasted_with_spaces_still_works(file_through_form, client):
    data_request, _, mail = file_through_form()
    code = code_from(mail)

    response = client.post(
        reverse("request-verify", args=[data_request.reference]),
        {"code": f" {code[:3]} {code[3:]} "},
    )

    assert response.status_code == 302
    data_request.refresh_from_db()
    assert data_request.status == Status.IN_REVIEW


def test_a_wrong_code_says_how_many_attempts_are_left(file_through_form, client):
    data_request, _, mail = file_through_form()
    wrong = "000000" if code_from(mail) != "000000" else "111111"
    url = reverse("request-verify", args=[data_request.reference])

    first = client.post(url, {"code": wrong}).content.decode()
    second = client.post(url, {"code": wrong}).content.decode()

    assert "That code is not right. You have 4 attempts left." in first
    assert "That code is not right. You have 3 attempts left." in second
    data_request.refresh_from_db()
    assert data_request.status == Status.AWAITING_VERIFICATION


def test_a_code_that_is_not_six_digits_is_refused_without_using_an_attempt(
    file_through_form, client
):
    data_request, _, _ = file_through_form()

    response = client.post(
        reverse("request-verify", args=[data_request.reference]), {"code": "12ab"}
    )

    assert response.status_code == 400
    assert "Enter the 6-digit code from the email." in response.content.decode()
    assert data_request.verification.failed_attempts == 0


def test_too_many_wrong_codes_lock_the_check_until_a_new_code_is_sent(
    file_through_form, client, settings
):
    settings.PORTAL_VERIFICATION_MAX_ATTEMPTS = 2
    data_request, _, mail = file_through_form()
    url = reverse("request-verify", args=[data_request.reference])
    wrong = "000000" if code_from(mail) != "000000" else "111111"

    client.post(url, {"code": wrong})
    locked = client.post(url, {"code": wrong}).content.decode()
    right_but_locked = client.post(url, {"code": code_from(mail)}).content.decode()

    assert "Too many wrong codes were entered" in locked
    assert "Too many wrong codes were entered" in right_but_locked
    data_request.refresh_from_db()
    assert data_request.status == Status.AWAITING_VERIFICATION


def test_asking_for_a_new_code_right_away_is_refused_politely(file_through_form, client):
    data_request, _, _ = file_through_form()
    url = reverse("request-verify", args=[data_request.reference])

    response = client.post(url, {"resend": "1"}, follow=True)

    html = response.content.decode()
    assert response.redirect_chain == [(url, 302)]
    assert "We sent a code a moment ago. Please wait" in html
    assert "seconds before asking for another" in html


def test_asking_for_a_new_code_sends_one_and_the_old_code_stops_working(
    file_through_form, client, settings, mailoutbox, django_capture_on_commit_callbacks
):
    settings.PORTAL_RESEND_INTERVAL = timedelta(0)
    data_request, _, first_mail = file_through_form()
    url = reverse("request-verify", args=[data_request.reference])

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"resend": "1"}, follow=True)

    assert "We are sending you a new code" in response.content.decode()
    assert len(mailoutbox) == 2
    old_code, new_code = code_from(first_mail), code_from(mailoutbox[1])
    if old_code != new_code:
        assert client.post(url, {"code": old_code}).status_code == 400
    assert client.post(url, {"code": new_code}).status_code == 302


def test_opening_the_emailed_link_does_not_confirm_until_the_button_is_pressed(
    file_through_form, client
):
    data_request, _, mail = file_through_form()
    link = link_path_from(mail)

    shown = client.get(link)

    assert shown.status_code == 200
    assert "Confirm my request" in shown.content.decode()
    data_request.refresh_from_db()
    assert data_request.status == Status.AWAITING_VERIFICATION

    confirmed = client.post(link)

    assert confirmed.status_code == 302
    assert confirmed["Location"] == status_path(data_request)
    data_request.refresh_from_db()
    assert data_request.status == Status.IN_REVIEW
    assert AuditEvent.objects.filter(
        request=data_request, action="request.verified", details__method="link"
    ).exists()


def test_a_replayed_link_says_the_request_is_already_confirmed(file_through_form, client):
    _, _, mail = file_through_form()
    link = link_path_from(mail)
    client.post(link)

    replayed = client.post(link)
    reopened = client.get(link)

    assert replayed.status_code == 409
    assert "This request is already confirmed" in replayed.content.decode()
    assert "This request is already confirmed" in reopened.content.decode()
    assert "<button" not in reopened.content.decode().split("<main", 1)[1]


def test_a_tampered_link_is_refused_with_a_way_forward(file_through_form, client):
    data_request, _, _ = file_through_form()

    response = client.post(
        reverse("request-verify-link", args=[data_request.reference, "forged-token"])
    )

    html = response.content.decode()
    assert response.status_code == 400
    assert "This link is not valid" in html
    assert reverse("request-verify", args=[data_request.reference]) in html
    data_request.refresh_from_db()
    assert data_request.status == Status.AWAITING_VERIFICATION


# The private status page


def test_the_status_page_needs_the_right_token(file_through_form, client):
    data_request, _, _ = file_through_form()

    wrong = client.get(reverse("request-status", args=[data_request.reference, "0" * 32]))
    not_ascii = client.get(f"/r/{data_request.reference}/status/%C3%A9t%C3%A9/")
    right = client.get(status_path(data_request))

    assert wrong.status_code == 404
    assert not_ascii.status_code == 404
    assert right.status_code == 200


def test_the_status_page_shows_the_request_but_never_the_identity(file_through_form, client):
    data_request, _, _ = file_through_form(
        kind="erasure", email="ada@example.com", phone="+33612345678", name="Ada Lovelace"
    )

    html = client.get(status_path(data_request)).content.decode()

    assert "Erasure (delete my data)" in html
    assert "Awaiting verification" in html
    assert "We will answer by" in html
    assert "ada@example.com" not in html
    assert "+33612345678" not in html
    assert "Ada Lovelace" not in html


def test_a_rejected_request_shows_the_reason_and_the_right_to_complain(
    file_through_form, client, settings, staff_user
):
    settings.PORTAL_SUPERVISORY_AUTHORITY = "the CNIL"
    data_request, _, _ = file_through_form()
    lifecycle.request_mark_verified(request=data_request, method="code")
    lifecycle.request_reject(
        request=data_request,
        actor="staff:dpo",
        reason=RejectionReason.EXCESSIVE,
        message="You asked 40 times this week.",
    )

    html = client.get(status_path(data_request)).content.decode()

    assert "Excessive, in particular repetitive (Art. 12(5))" in html
    assert "You asked 40 times this week." in html
    assert "the right to lodge a complaint with the CNIL" in html
    assert "Withdraw my request" not in html


def test_the_question_asked_by_staff_is_shown_on_the_status_page(file_through_form, client):
    data_request, _, _ = file_through_form()
    lifecycle.request_mark_verified(request=data_request, method="code")
    lifecycle.request_ask_information(
        request=data_request, actor="staff:dpo", message="Which shop did you buy from?"
    )

    html = client.get(status_path(data_request)).content.decode()

    assert "What we need from you" in html
    assert "Which shop did you buy from?" in html


def test_an_extension_is_shown_with_its_reason_and_new_date(file_through_form, client):
    data_request, _, _ = file_through_form()
    lifecycle.request_extend(
        request=data_request, actor="staff:dpo", months=2, reason="Twelve systems to search."
    )
    data_request.refresh_from_db()

    html = client.get(status_path(data_request)).content.decode()

    assert "We extended the deadline by 2 months." in html
    assert "Twelve systems to search." in html
    assert data_request.due_on.strftime("%Y") in html


def test_a_person_can_withdraw_a_request_from_the_status_page(file_through_form, client):
    data_request, _, _ = file_through_form()

    response = client.post(status_path(data_request), {"withdraw": "1"}, follow=True)

    html = response.content.decode()
    data_request.refresh_from_db()
    assert data_request.status == Status.CANCELLED
    assert "Your request is withdrawn" in html
    assert "Withdraw my request" not in html
    assert AuditEvent.objects.filter(request=data_request, action="request.cancelled").exists()


def test_a_request_being_processed_cannot_be_withdrawn(file_through_form, client):
    data_request, _, _ = file_through_form()
    lifecycle.request_mark_verified(request=data_request, method="code")
    lifecycle.request_approve(request=data_request, actor="staff:dpo")

    page = client.get(status_path(data_request)).content.decode()
    response = client.post(status_path(data_request), {"withdraw": "1"}, follow=True)

    assert "Withdraw my request" not in page
    assert "This request can no longer be withdrawn." in response.content.decode()
    data_request.refresh_from_db()
    assert data_request.status == Status.PROCESSING


# Languages


def test_pages_are_in_french_when_the_browser_asks_for_french(client):
    response = client.get(reverse("request-file"), HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9")

    html = response.content.decode()
    assert '<html lang="fr">' in html
    assert "Faire une demande concernant vos données personnelles" in html
    assert "Adresse e-mail" in html
    assert "Make a request" not in html


def test_the_language_switcher_works_without_javascript(client):
    switched = client.post(reverse("set_language"), {"language": "fr", "next": "/"})

    assert switched.status_code == 302
    html = client.get(reverse("request-file")).content.decode()
    assert '<html lang="fr">' in html
    assert "Envoyer ma demande" in html

    client.post(reverse("set_language"), {"language": "en", "next": "/"})
    assert "Send my request" in client.get(reverse("request-file")).content.decode()


def test_a_french_visitor_reads_errors_and_the_email_in_french(client, file_through_form):
    client.post(reverse("set_language"), {"language": "fr", "next": "/"})

    invalid = client.post(reverse("request-file"), {"kind": "access", "email": "nope"})
    data_request, _, mail = file_through_form(kind="erasure")
    wrong = "000000" if code_from(mail) != "000000" else "111111"
    wrong_code = client.post(
        reverse("request-verify", args=[data_request.reference]), {"code": wrong}
    )

    assert "Saisissez une adresse e-mail valide" in invalid.content.decode()
    assert data_request.language == "fr"
    assert mail.subject == "Confirmez votre demande auprès de Example Organisation"
    assert "Nous avons reçu une demande d\N{RIGHT SINGLE QUOTATION MARK}effacement" in mail.body
    assert "Il vous reste 4 essais." in wrong_code.content.decode()


# Emails


def test_the_verification_email_carries_the_code_link_and_status_page_but_no_identity(
    file_through_form,
):
    data_request, _, mail = file_through_form(email="ada@example.com", name="Ada Lovelace")

    assert re.fullmatch(r"\d{6}", code_from(mail))
    assert link_path_from(mail).startswith(f"/r/{data_request.reference}/verify/")
    assert data_request.status_url() in mail.body
    assert "48 hours" in mail.body
    assert "ada@example.com" not in mail.body
    assert "Ada Lovelace" not in mail.body


def test_the_person_is_told_of_each_decision_without_their_identity_in_the_email(
    file_through_form, mailoutbox, django_capture_on_commit_callbacks, settings
):
    settings.PORTAL_SUPERVISORY_AUTHORITY = "the CNIL"
    extended, _, _ = file_through_form(email="ada@example.com", name="Ada O'Lovelace")
    asked, _, _ = file_through_form(email="ada@example.com", name="Ada O'Lovelace")
    rejected, _, _ = file_through_form(email="ada@example.com", name="Ada O'Lovelace")
    for data_request in (asked, rejected):
        lifecycle.request_mark_verified(request=data_request, method="code")
    mailoutbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.request_extend(
            request=extended, actor="staff:dpo", months=1, reason="Our archive's restore is slow."
        )
        lifecycle.request_ask_information(
            request=asked, actor="staff:dpo", message="Which store's loyalty card?"
        )
        lifecycle.request_reject(
            request=rejected, actor="staff:dpo", reason=RejectionReason.MANIFESTLY_UNFOUNDED
        )

    by_subject = {mail.subject: mail.body for mail in mailoutbox}
    extended.refresh_from_db()
    extension = by_subject["We need more time for your privacy request to Example Organisation"]
    assert "Our archive's restore is slow." in extension
    # The new due date, in the one date format of the request's language (portal/formats/).
    assert f"{extended.due_on.day} {extended.due_on:%B} {extended.due_on.year}" in extension
    question = by_subject[
        "We need more information for your privacy request to Example Organisation"
    ]
    assert "Which store's loyalty card?" in question
    assert asked.status_url() in question
    refusal = by_subject["Your privacy request to Example Organisation was refused"]
    assert "Manifestly unfounded (Art. 12(5))" in refusal
    assert "the right to lodge a complaint with the CNIL" in refusal
    for body in by_subject.values():
        assert "ada@example.com" not in body
        assert "Lovelace" not in body
        assert "&#x27;" not in body  # plain text: no HTML escaping


def test_the_completion_email_links_to_the_status_page(
    file_through_form, mailoutbox, django_capture_on_commit_callbacks
):
    data_request, _, _ = file_through_form(kind="erasure")
    lifecycle.request_mark_verified(request=data_request, method="code")
    # Approved without running the engine: this test is about the email, not the stores.
    lifecycle.request_approve(request=data_request, actor="staff:dpo")
    mailoutbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.request_complete(request=data_request, details={"stores": 0})

    data_request.refresh_from_db()
    assert data_request.status == Status.COMPLETED
    (mail,) = mailoutbox
    assert mail.subject == "Your privacy request to Example Organisation is complete"
    assert "We have erased the personal data we held about you" in mail.body
    assert data_request.status_url() in mail.body


# Error pages


def test_the_error_page_renders_without_a_request():
    html = render_to_string("500.html")

    assert "Sorry, something went wrong" in html
    assert "csrfmiddlewaretoken" not in html


@pytest.mark.django_db
def test_error_pages_name_the_organisation(client, settings):
    settings.PORTAL_ORGANISATION_NAME = "Acme Shop"
    response = client.get("/r/no-such-reference/filed/")
    assert response.status_code == 404
    assert "Acme Shop" in response.content.decode()
