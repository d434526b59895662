"""The staff request page (/staff/requests/<reference>/), driven through HTTP as staff use it: the
masked identity and its audited reveal, identity assurance, earlier requests, the timeline in
sentences, the preview, jobs with retry and manual tasks, links, internal notes, and every
decision, each refused to an auditor by the server, not only hidden."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.db import connection
from django.test import Client

from requests.models import AuditEvent, DataRequest, Job, JobState, RequestNote
from requests.permissions import AUDITOR, DPO, REVIEWER, role_group
from requests.services import job_claims, jobs, lifecycle, stores
from requests.services.audit import SYSTEM
from requests.states import RejectionReason, Status
from tests.erasure_fixtures import shop_and_crm
from tests.processes import free_port

pytestmark = pytest.mark.django_db

MANUAL_MAP = """
system: Payroll (paper files)
collections:
  payslips:
    categories: [salary]
"""


@pytest.fixture
def make_staff(django_user_model):
    def _make(username: str, role: str, **names):
        user = django_user_model.objects.create_user(
            username=username, password="pw", is_staff=True, **names
        )
        user.groups.add(role_group(role))
        return user

    return _make


@pytest.fixture
def signed_in(make_staff):
    def _sign_in(role: str, username: str | None = None, **names) -> Client:
        client = Client()
        client.force_login(make_staff(username or f"{role}-user", role, **names))
        return client

    return _sign_in


@pytest.fixture
def dpo(signed_in):
    return signed_in(DPO, "dana", first_name="Dana", last_name="Scully")


def filed(*, kind="access", email="ada@example.com", verified=True, **identity):
    data_request = lifecycle.request_file(kind=kind, identity={"email": email, **identity})
    if verified:
        data_request = lifecycle.request_mark_verified(request=data_request, method="code")
    return data_request


def url(data_request) -> str:
    return f"/staff/requests/{data_request.reference}/"


def text_of(html: str) -> str:
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))).strip()


def section(html: str, title_id: str) -> str:
    start = html.index(f'id="{title_id}"')
    end = html.find("</section>", start)
    return html[start:end]


def refreshed(data_request) -> DataRequest:
    return DataRequest.objects.get(pk=data_request.pk)


# The identity: masked, revealed on demand, every reveal audited


def test_the_identity_is_masked_for_every_role_until_revealed(signed_in):
    data_request = filed(email="ada@example.com", phone="+33612345678", name="Ada Lovelace")

    for role in (DPO, REVIEWER, AUDITOR):
        html = signed_in(role).get(url(data_request)).content.decode()
        assert "a***@example.com" in html
        assert "+33***78" in html
        assert "ada@example.com" not in html and "+33612345678" not in html
        assert "Lovelace" not in html


def test_a_dpo_reveals_the_identity_and_the_reveal_is_audited_under_their_name(dpo):
    data_request = filed(email="ada@example.com", phone="+33612345678")

    response = dpo.post(url(data_request), {"action": "reveal"})

    html = response.content.decode()
    assert response.status_code == 200
    assert "ada@example.com" in html and "+33612345678" in html
    event = AuditEvent.objects.get(request=data_request, action="request.identity_revealed")
    assert event.actor == "staff:dana"
    assert event.details == {"identity_types": ["email", "phone"]}
    assert "ada@example.com" not in str(event.details)
    # The next page load is masked again: only the reveal's own answer shows the values.
    assert "ada@example.com" not in dpo.get(url(data_request)).content.decode()


def test_each_reveal_is_a_new_audit_event_and_a_reviewer_may_reveal_too(signed_in):
    data_request = filed()
    reviewer = signed_in(REVIEWER, "rita")

    reviewer.post(url(data_request), {"action": "reveal"})
    reviewer.post(url(data_request), {"action": "reveal"})

    events = AuditEvent.objects.filter(request=data_request, action="request.identity_revealed")
    assert [event.actor for event in events] == ["staff:rita", "staff:rita"]


def test_an_auditor_is_refused_the_reveal_by_the_server_and_nothing_is_shown(signed_in):
    data_request = filed(email="ada@example.com")
    auditor = signed_in(AUDITOR)

    page = auditor.get(url(data_request)).content.decode()
    response = auditor.post(url(data_request), {"action": "reveal"})

    assert 'value="reveal"' not in page
    assert response.status_code == 403
    assert "ada@example.com" not in response.content.decode()
    assert not AuditEvent.objects.filter(action="request.identity_revealed").exists()


def test_through_the_api_too_an_auditor_gets_the_identity_masked_and_no_samples(signed_in, shop):
    data_request = filed(kind="erasure", email="ada@example.com")
    api = f"/api/v1/staff/requests/{data_request.reference}/"
    auditor, reviewer = signed_in(AUDITOR), signed_in(REVIEWER)

    masked = auditor.get(api).json()["identity"]
    counted = auditor.get(f"{api}preview/").json()["stores"]["shop"]["collections"]["customers"]
    refused = auditor.get(f"{api}?reveal=true")
    sampled = reviewer.get(f"{api}preview/").json()["stores"]["shop"]["collections"]["customers"]

    assert masked == {"email": "a***@example.com"}
    assert counted["count"] == 1 and counted["sample"] == []
    assert refused.status_code == 403 and "ada@example.com" not in refused.content.decode()
    assert sampled["sample"][0]["email"] == "ada@example.com"
    assert not AuditEvent.objects.filter(action="request.identity_revealed").exists()


def test_the_api_masks_the_identity_until_a_reveal_which_is_audited_as_on_the_page(signed_in):
    data_request = filed(kind="erasure", email="ada@example.com")
    api = f"/api/v1/staff/requests/{data_request.reference}/"
    reviewer = signed_in(REVIEWER, username="rita")

    plain = reviewer.get(api).json()
    after_plain = AuditEvent.objects.filter(action="request.identity_revealed").count()
    revealed = reviewer.get(f"{api}?reveal=true").json()
    decided = reviewer.post(f"{api}extend/", {"months": 1, "reason": "Many stores"}).json()

    assert plain["identity"] == {"email": "a***@example.com"}
    assert {"reference", "kind", "status", "received_at", "due_at", "jobs"} <= set(plain)
    assert after_plain == 0
    assert revealed["identity"] == {"email": "ada@example.com"}
    events = AuditEvent.objects.filter(request=data_request, action="request.identity_revealed")
    assert [(event.actor, event.details) for event in events] == [
        ("staff:rita", {"identity_types": ["email"]})
    ]
    assert decided["identity"] == {"email": "a***@example.com"}


def test_the_api_names_a_bad_reveal_value(dpo):
    data_request = filed()

    response = dpo.get(f"/api/v1/staff/requests/{data_request.reference}/?reveal=maybe")

    assert response.status_code == 400
    assert response.json()["error"]["field"] == "reveal"


# Identity assurance and the person's earlier requests


def test_each_identifier_shows_whether_and_how_it_was_verified(dpo):
    data_request = filed(phone="+33612345678")

    html = section(dpo.get(url(data_request)).content.decode(), "identity-title")
    rows = {
        text_of(row).split(" ", 2)[0]: text_of(row)
        for row in re.findall(r"<tr>\s*<th scope=\"row\">.*?</tr>", html, re.S)
    }

    assert "Verified with a code sent by email" in rows["Email"]
    assert "Not verified" in rows["Phone"]
    assert "candidates only" in rows["Phone"]


def test_staff_confirm_an_identifier_with_a_note_through_the_existing_service(dpo):
    data_request = filed(phone="+33612345678")

    response = dpo.post(
        url(data_request),
        {
            "action": "confirm_identity",
            "identity-types": ["phone"],
            "identity-note": "Saw a phone bill in the person's name.",
        },
        follow=True,
    )

    check = data_request.identifier_checks.get(identity_type="phone")
    assert check.state == "verified" and check.method == "staff"
    assert check.verified_by == "staff:dana"
    event = AuditEvent.objects.get(request=data_request, action="identity.confirmed_by_staff")
    assert event.details["types"] == ["phone"]
    html = response.content.decode()
    assert "Saw a phone bill in the person&#x27;s name." in html
    assert "Identity confirmed by staff for: Phone number" in html


def test_confirming_an_identifier_without_a_note_is_sent_back_with_the_error(dpo):
    data_request = filed(phone="+33612345678")

    response = dpo.post(
        url(data_request), {"action": "confirm_identity", "identity-types": ["phone"]}
    )

    assert response.status_code == 400
    assert "Say what proof you saw." in response.content.decode()
    assert data_request.identifier_checks.get(identity_type="email").state == "verified"
    assert not data_request.identifier_checks.filter(identity_type="phone").exists()


def test_earlier_requests_by_the_same_person_are_listed_with_the_excessive_flag(dpo, settings):
    settings.PORTAL_EXCESSIVE_REQUESTS_PER_YEAR = 3
    first = filed(email="ada@example.com")
    second = filed(email="ADA@example.com ")
    stranger = filed(email="bob@example.com")
    third = filed(email="ada@example.com")

    html = section(dpo.get(url(third)).content.decode(), "identity-title")
    history = html[html.index('id="history-title"') :]

    assert first.reference in history and second.reference in history
    assert stranger.reference not in history
    assert "Possibly excessive" in history
    assert "2 requests of this kind in the year before this one" in text_of(history)
    first_page = section(dpo.get(url(first)).content.decode(), "identity-title")
    assert "Possibly excessive" not in first_page


# The timeline: sentences, names, tables, in the staff member's language


def test_the_timeline_reads_as_sentences_with_actor_names_and_no_stored_action_names(dpo):
    data_request = filed(kind="erasure", phone="+33612345678")
    dpo.post(url(data_request), {"action": "reveal"})
    dpo.post(
        url(data_request), {"action": "extend", "extend-months": "1", "extend-reason": "Volume."}
    )

    timeline = text_of(section(dpo.get(url(data_request)).content.decode(), "timeline-title"))

    assert "The person Request for erasure filed, with Email address, Phone number." in timeline
    assert "The person The person confirmed their email address with a code sent by email." in (
        timeline
    )
    assert "Dana Scully (dana) Identity shown in clear: Email address, Phone number." in timeline
    assert "Dana Scully (dana) Deadline extended by 1 month; the request is now due on" in timeline
    stored_names = (
        r"\b(request|identity|job|package|verification|erasure)\.[a-z_]+|\b[a-z]+_[a-z_]+\b"
    )
    assert not re.search(stored_names, timeline), timeline


def test_the_timeline_speaks_french_to_french_staff(dpo):
    data_request = filed(kind="erasure")
    dpo.post(url(data_request), {"action": "reveal"})

    html = dpo.get(url(data_request), HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    timeline = text_of(section(html, "timeline-title"))

    assert "Historique" in timeline
    assert (
        "Demande d\N{RIGHT SINGLE QUOTATION MARK}effacement déposée, avec Adresse e-mail."
        in timeline
    )
    assert "La personne a confirmé son adresse e-mail avec un code envoyé par e-mail." in timeline
    assert "Identité affichée en clair : Adresse e-mail." in timeline


def test_an_erasures_counts_appear_in_the_timeline_as_small_tables(
    dpo, tmp_path, django_capture_on_commit_callbacks
):
    shop_and_crm(tmp_path)
    data_request = filed(kind="erasure", email="ada@example.com")

    with django_capture_on_commit_callbacks(execute=True):
        dpo.post(url(data_request), {"action": "approve"})

    assert refreshed(data_request).status == Status.COMPLETED
    html = section(dpo.get(url(data_request)).content.decode(), "timeline-title")
    tables = re.findall(
        r"<table class=\"table table--compact rp-counts rp-keep\">.*?</table>", html, re.S
    )
    shop = next(text_of(t) for t in tables if "Records in shop" in t)
    # The certificate's columns, in its order.
    assert "Collection Deleted Masked Set to null Held Kept" in shop
    assert re.search(r"customers( \d+){5}", shop)  # deleted or masked: the engine decides
    assert "orders 0 0 0 2 0" in shop
    assert "shop: erasure done." in text_of(html)


def test_every_action_the_portal_records_about_a_request_has_its_own_sentence():
    from pathlib import Path

    from requests.timeline import known_actions

    source = "\n".join(
        path.read_text() for path in Path(__file__).parents[1].joinpath("requests").rglob("*.py")
    )
    written = set(re.findall(r'action="([a-z_]+\.[a-z_.]+)"', source))
    written |= set(re.findall(r'_audit\(\w+, "([a-z_]+\.[a-z_.]+)"', source))
    # Events about a request (others, such as store or staff account changes, have no request).
    about_requests = {
        action
        for action in written
        if action.split(".")[0] in {"request", "job", "identity", "verification", "package"}
        or action == "erasure.sweep_failed"
    }

    assert len(about_requests) > 30
    assert about_requests - known_actions() == set()


def test_an_action_the_timeline_does_not_know_yet_still_reads_as_words():
    from django.utils import timezone

    from requests.timeline import describe

    event = AuditEvent(
        sequence=1, actor="system", action="request.moved_elsewhere", created_at=timezone.now()
    )

    assert describe(event).sentence == "Request: moved elsewhere."


# The preview


@pytest.fixture
def shop(tmp_path):
    return shop_and_crm(tmp_path)[0]


def test_the_preview_counts_each_store_and_collection_with_a_sample_and_the_erasure_words(
    dpo, shop
):
    data_request = filed(kind="erasure", email="ada@example.com")

    html = section(dpo.get(url(data_request)).content.decode(), "preview-title")
    store = html[html.index("<h3>shop") :]
    customers = store[
        store.index('<th scope="row">customers') : store.index('<th scope="row">orders')
    ]
    orders = store[store.index('<th scope="row">orders') :]

    assert "<h3>crm" in html and "<h3>shop" in html
    # The ownership line under the name is there when the engine classified the rows.
    assert re.match(
        r"customers (Only the person's: 1 )?1 "
        r"Deleted Masked instead where a record that is kept still points at it None",
        text_of(customers),
    )
    assert "<details" in customers and "<summary>Show 1 record</summary>" in customers
    assert "ada@example.com" in customers
    assert "2 Held: Tax law keeps orders for 10 years" in text_of(orders)


def test_the_preview_uses_the_same_words_as_the_certificate(
    dpo, shop, django_capture_on_commit_callbacks
):
    data_request = filed(kind="erasure", email="ada@example.com")
    preview = text_of(section(dpo.get(url(data_request)).content.decode(), "preview-title"))
    with django_capture_on_commit_callbacks(execute=True):
        dpo.post(url(data_request), {"action": "approve"})

    certificate = dpo.get(
        f"/api/v1/staff/requests/{data_request.reference}/certificate/?format=html"
    )

    assert certificate.status_code == 200
    headers = text_of(certificate.content.decode())
    for word in ("Deleted", "Masked", "Held"):
        assert word in preview and f" {word} " in headers


def test_an_auditor_sees_the_preview_counts_but_not_the_persons_records(signed_in, shop):
    data_request = filed(kind="erasure", email="ada@example.com")

    html = section(signed_in(AUDITOR).get(url(data_request)).content.decode(), "preview-title")

    assert "customers" in html and "Hidden from your role" in html
    assert "<details" not in html and "ada@example.com" not in html


def test_a_failing_store_is_named_in_the_preview_and_the_others_still_answer(dpo, shop):
    stores.store_create(
        name="sessions",
        kind="redis",
        url=f"redis://127.0.0.1:{free_port()}/0",
        map_yaml=(
            "collections:\n  sessions:\n    location: 'session:{email}:*'\n    key: [key]\n"
            "    fields:\n      email: {identity: email}\n"
        ),
        actor=SYSTEM,
    )
    data_request = filed(kind="erasure", email="ada@example.com")

    html = section(dpo.get(url(data_request)).content.decode(), "preview-title")

    failed = html[html.index("Stores that failed") :]
    assert "<strong>sessions</strong>" in failed
    assert "127.0.0.1" not in html  # the store's address is never shown back
    assert "Incomplete" in html
    assert re.search(
        r"customers(<br>[^<]*<span[^>]*>[^<]*</span>)?</th>\s*<td class=\"numeric\"[^>]*>1<", html
    )


def test_the_preview_shows_candidates_and_identity_mismatches(dpo, shop):
    # Ada's customer row holds +442079460000: a different phone on the request is a mismatch.
    mismatched = filed(kind="erasure", email="ada@example.com", phone="+33612345678")
    # Someone whose unproven phone reaches Ada's row: a candidate, never the person's.
    candidate = filed(kind="erasure", email="nobody@example.com", phone="+442079460000")

    mismatch_html = text_of(section(dpo.get(url(mismatched)).content.decode(), "preview-title"))
    candidate_html = text_of(section(dpo.get(url(candidate)).content.decode(), "preview-title"))

    assert "1 record whose Phone number differs from what the person gave" in mismatch_html
    assert "4 records reached only through identifiers nobody proved (Phone number)" in (
        candidate_html
    )
    assert "shop customers 1" in candidate_html and "crm contacts 1" in candidate_html
    assert "ada@example.com" not in candidate_html


def test_the_preview_runs_on_asking_once_the_request_is_no_longer_in_review(dpo, shop):
    data_request = filed(kind="erasure")
    lifecycle.request_reject(
        request=data_request,
        actor="staff:dana",
        reason=RejectionReason.MANIFESTLY_UNFOUNDED,
        message="No.",
    )

    plain = section(dpo.get(url(data_request)).content.decode(), "preview-title")
    asked = section(dpo.get(url(data_request) + "?preview=1").content.decode(), "preview-title")

    assert "Search the stores now" in plain and "<h3>shop" not in plain
    assert "<h3>shop" in asked


# Jobs: progress, errors, retry, manual tasks; the package and certificate links


@pytest.fixture
def access_with_manual_task(dpo, shop, django_capture_on_commit_callbacks):
    from requests.models import ConnectedStore

    ConnectedStore.objects.create(name="payroll", kind="manual", map_yaml=MANUAL_MAP)
    data_request = filed(kind="access", email="ada@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        dpo.post(url(data_request), {"action": "approve"})
    return refreshed(data_request)


def test_each_job_shows_its_progress_and_a_manual_task_has_a_confirm_form(
    dpo, access_with_manual_task
):
    html = section(dpo.get(url(access_with_manual_task)).content.decode(), "jobs-title")

    assert "2 of 3 stores done." in text_of(html)
    assert '<progress class="rp-progress" max="3" value="2"' in html
    payroll = html[html.index("<h3>payroll") : html.index("<h3>shop")]
    assert "Waiting for confirmation" in payroll
    assert 'value="confirm_job"' in payroll and 'value="payroll"' in payroll
    shop_job = html[html.index("<h3>shop") :]
    assert 'value="confirm_job"' not in shop_job
    assert "Records in shop" in shop_job


def test_confirming_a_manual_task_with_a_note_finishes_the_request_and_links_the_package(
    dpo, signed_in, access_with_manual_task, django_capture_on_commit_callbacks
):
    data_request = access_with_manual_task
    empty = dpo.post(url(data_request), {"action": "confirm_job", "job-store": "payroll"})
    with django_capture_on_commit_callbacks(execute=True):
        dpo.post(
            url(data_request),
            {"action": "confirm_job", "job-store": "payroll", "job-note": "Two payslips sent."},
        )

    assert empty.status_code == 400
    assert "Say what was done in this system." in empty.content.decode()
    job = Job.objects.get(request=data_request, store__name="payroll")
    assert job.state == JobState.DONE and job.counts["confirmed_by"] == "staff:dana"
    assert refreshed(data_request).status == Status.COMPLETED
    html = dpo.get(url(data_request)).content.decode()
    package_link = f'href="/api/v1/staff/requests/{data_request.reference}/package/"'
    assert package_link in html
    assert dpo.get(f"/api/v1/staff/requests/{data_request.reference}/package/").status_code == 200
    assert package_link not in signed_in(AUDITOR).get(url(data_request)).content.decode()


def test_a_failed_job_shows_its_error_and_staff_retry_it_through_the_retry_service(
    dpo, signed_in, shop
):
    data_request = filed(kind="access")
    # Approved without running the queued work: the worker's own services then fail one job.
    lifecycle.request_approve(request=data_request, actor="staff:dana")
    job = job_claims.job_claim(job_id=Job.objects.get(request=data_request, store__name="crm").pk)
    assert jobs.job_fail(job=job, reason="the CRM did not answer")
    assert refreshed(data_request).status == Status.NEEDS_ATTENTION

    html = section(dpo.get(url(data_request)).content.decode(), "jobs-title")
    refused = signed_in(AUDITOR).post(url(data_request), {"action": "retry"})
    dpo.post(url(data_request), {"action": "retry"})

    assert "Error the CRM did not answer" in text_of(html)
    assert 'value="retry"' in html
    assert refused.status_code == 403
    assert refreshed(data_request).status == Status.PROCESSING
    event = AuditEvent.objects.filter(request=data_request, action="request.retried").get()
    assert event.actor == "staff:dana" and event.details["jobs"] == 1


def test_a_completed_erasure_links_its_certificate(dpo, shop, django_capture_on_commit_callbacks):
    data_request = filed(kind="erasure")
    with django_capture_on_commit_callbacks(execute=True):
        dpo.post(url(data_request), {"action": "approve"})

    html = dpo.get(url(data_request)).content.decode()

    link = f"/api/v1/staff/requests/{data_request.reference}/certificate/?format=html"
    assert f'href="{link}"' in html
    assert dpo.get(link).status_code == 200


# Internal notes


def test_staff_add_internal_notes_that_are_audited_by_length_and_encrypted_at_rest(dpo, signed_in):
    data_request = filed()
    text = "Called Ada on her mobile; she confirmed the order numbers."

    dpo.post(url(data_request), {"action": "add_note", "note-text": text})

    note = RequestNote.objects.get(request=data_request)
    assert note.text == text and note.actor == "staff:dana"
    event = AuditEvent.objects.get(request=data_request, action="request.note_added")
    assert event.details == {"note": note.pk, "length": len(text)}
    with connection.cursor() as cursor:
        cursor.execute("SELECT text FROM requests_requestnote WHERE id = %s", [note.pk])
        stored = cursor.fetchone()[0]
    assert "Ada" not in stored
    auditor = signed_in(AUDITOR)
    assert text in auditor.get(url(data_request)).content.decode()
    refused = auditor.post(url(data_request), {"action": "add_note", "note-text": "Mine."})
    assert refused.status_code == 403
    assert RequestNote.objects.filter(request=data_request).count() == 1


def test_notes_are_emptied_with_the_identity_once_the_closed_request_is_purged(dpo):
    data_request = filed()
    dpo.post(url(data_request), {"action": "add_note", "note-text": "Ada called from Paris."})
    closed = lifecycle.request_reject(
        request=data_request, actor="staff:dana", reason=RejectionReason.EXCESSIVE, message="No."
    )

    lifecycle.request_purge_identity(request=closed)

    assert RequestNote.objects.get(request=data_request).text == ""
    html = section(dpo.get(url(data_request)).content.decode(), "notes-title")
    assert "Paris" not in html and "Emptied with the person" in html


def test_an_empty_note_is_sent_back_with_its_error(dpo):
    data_request = filed()

    response = dpo.post(url(data_request), {"action": "add_note", "note-text": "  "})

    assert response.status_code == 400
    assert "Write the note first." in response.content.decode()
    assert not RequestNote.objects.exists()


# The person's reply to a request for information


def test_the_persons_reply_from_their_status_page_appears_on_the_request_page(dpo):
    data_request = filed()
    dpo.post(url(data_request), {"action": "ask_information", "ask-message": "Which shop?"})
    waiting = section(dpo.get(url(data_request)).content.decode(), "replies-title")

    reply = Client().post(
        f"/r/{data_request.reference}/status/{data_request.status_token()}/",
        {"reply": "1", "message": "The one in Lyon, order 1042."},
    )

    assert reply.status_code in (200, 302)
    assert "Waiting for the person to answer" in waiting
    assert refreshed(data_request).status == Status.IN_REVIEW
    html = dpo.get(url(data_request)).content.decode()
    replies = text_of(section(html, "replies-title"))
    assert "Asked: Which shop?" in replies
    assert "Answer: The one in Lyon, order 1042." in replies
    timeline = text_of(section(html, "timeline-title"))
    assert "The person replied on their status page (28 characters)" in timeline
    assert "Lyon" not in timeline


# Decisions


def test_a_rejection_needs_a_legal_reason_and_a_message(dpo):
    data_request = filed()

    without = dpo.post(
        url(data_request),
        {"action": "reject", "reject-reason": RejectionReason.MANIFESTLY_UNFOUNDED},
    )
    dpo.post(
        url(data_request),
        {
            "action": "reject",
            "reject-reason": RejectionReason.MANIFESTLY_UNFOUNDED,
            "reject-message": "We hold no account under this address.",
        },
    )

    assert without.status_code == 400
    assert "Write the message the person will read." in without.content.decode()
    rejected = refreshed(data_request)
    assert rejected.status == Status.REJECTED
    assert rejected.staff_message == "We hold no account under this address."


def test_the_assignment_form_posts_to_its_own_address_and_reads_as_a_sentence(dpo, make_staff):
    rita = make_staff("rita", REVIEWER)
    data_request = filed()

    page = dpo.get(url(data_request)).content.decode()
    dpo.post(f"{url(data_request)}assign/", {"assign-assignee": rita.pk})

    assert f'action="{url(data_request)}assign/"' in section(page, "actions-title")
    assert refreshed(data_request).assigned_to == rita
    timeline = text_of(section(dpo.get(url(data_request)).content.decode(), "timeline-title"))
    assert "Dana Scully (dana) Assigned to rita." in timeline


DECISIONS = [
    {"action": "approve"},
    {"action": "reject", "reject-reason": "manifestly_unfounded", "reject-message": "No."},
    {"action": "extend", "extend-months": "1", "extend-reason": "Many systems."},
    {"action": "ask_information", "ask-message": "Which shop?"},
    {"action": "confirm_identity", "identity-types": ["phone"], "identity-note": "Bill."},
    {"action": "retry"},
    {"action": "confirm_job", "job-store": "payroll", "job-note": "Done."},
    {"action": "add_note", "note-text": "A note."},
    {"action": "reveal"},
    {"action": "no-such-action"},
]


@pytest.mark.parametrize("form", DECISIONS, ids=[d["action"] for d in DECISIONS])
def test_an_auditor_is_refused_every_action_by_the_server(signed_in, form):
    data_request = filed(phone="+33612345678")
    before = AuditEvent.objects.count()

    response = signed_in(AUDITOR).post(url(data_request), form)

    assert response.status_code == 403
    assert AuditEvent.objects.count() == before
    assert refreshed(data_request).status == Status.IN_REVIEW


@pytest.mark.parametrize(
    ("form", "status"),
    [
        (DECISIONS[0], Status.PROCESSING),
        (DECISIONS[1], Status.REJECTED),
        (DECISIONS[3], Status.AWAITING_INFORMATION),
    ],
    ids=["approve", "reject", "ask_information"],
)
def test_a_reviewer_decides_through_the_lifecycle_services(signed_in, form, status):
    data_request = filed()

    response = signed_in(REVIEWER, "rita").post(url(data_request), form)

    assert response.status_code == 302
    assert refreshed(data_request).status == status
    assert AuditEvent.objects.filter(request=data_request, actor="staff:rita").count() == 1
