"""Every accepted request gets its verification email: the email stays owed in the database
until the mail server took it, a reconciler queues lost sends again, and resend really sends."""

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from requests import tasks
from requests.models import AuditEvent, DataRequest, IdentityVerification
from requests.services import verification
from tests.conftest import code_from

pytestmark = pytest.mark.django_db


@pytest.fixture
def file_without_sending(public_api):
    """File through the API with the send task lost: its on-commit callback never runs."""

    def _file(email="lost@example.com"):
        response = public_api.post(
            "/api/v1/requests/", {"kind": "access", "identity": {"email": email}}, format="json"
        )
        assert response.status_code == 201, response.content
        return response.json()["reference"]

    return _file


def _owed(reference):
    return IdentityVerification.objects.get(request__reference=reference)


def _age_queued_send(reference, settings):
    """Move the send's queue time back past the reconciler's delay (instead of waiting)."""
    past = timezone.now() - settings.PORTAL_VERIFICATION_RESEND_AFTER - timedelta(seconds=1)
    IdentityVerification.objects.filter(request__reference=reference).update(send_queued_at=past)


def test_a_send_task_that_was_lost_is_queued_again_by_the_reconciler(
    file_without_sending, mailoutbox, settings, django_capture_on_commit_callbacks
):
    reference = file_without_sending()
    assert mailoutbox == []
    assert _owed(reference).send_pending

    _age_queued_send(reference, settings)
    with django_capture_on_commit_callbacks(execute=True):
        queued = tasks.verifications_reconcile()

    assert queued == 1
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["lost@example.com"]
    owed = _owed(reference)
    assert not owed.send_pending
    assert owed.sends == 1
    assert owed.last_sent_at is not None


def test_the_reconciler_leaves_alone_sends_queued_a_moment_ago(
    file_without_sending, mailoutbox, django_capture_on_commit_callbacks
):
    file_without_sending()

    with django_capture_on_commit_callbacks(execute=True):
        queued = tasks.verifications_reconcile()

    assert queued == 0
    assert mailoutbox == []


def test_a_task_that_dies_after_claiming_leaves_the_email_owed_and_it_is_sent_later(
    file_without_sending, mailoutbox, settings, django_capture_on_commit_callbacks
):
    reference = file_without_sending()
    owed = _owed(reference)
    # A worker claims the send, then dies before mailing (killed, or its database went away).
    assert verification.verification_claim_send(verification_id=owed.pk) is not None
    owed.refresh_from_db()
    assert owed.send_pending
    assert owed.send_claimed_until > timezone.now()

    # While the claim holds, a second delivery of the task sends nothing ...
    tasks.verification_send(owed.pk)
    assert mailoutbox == []
    # ... and once its lease ran out, the reconciler sends the owed email.
    IdentityVerification.objects.filter(pk=owed.pk).update(
        send_claimed_until=timezone.now() - timedelta(seconds=1)
    )
    _age_queued_send(reference, settings)
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.verifications_reconcile() == 1

    assert len(mailoutbox) == 1
    assert not _owed(reference).send_pending


def test_a_task_delivered_twice_sends_one_email(file_request, mailoutbox):
    reference = file_request()
    owed = _owed(reference)

    tasks.verification_send(owed.pk)

    assert len(mailoutbox) == 1
    assert _owed(reference).sends == 1


def test_resend_sends_a_code_even_when_the_first_send_was_lost(
    file_without_sending, public_api, mailoutbox, django_capture_on_commit_callbacks
):
    reference = file_without_sending()

    with django_capture_on_commit_callbacks(execute=True):
        response = public_api.post(f"/api/v1/requests/{reference}/resend/")

    assert response.status_code == 202
    assert len(mailoutbox) == 1
    verified = public_api.post(
        f"/api/v1/requests/{reference}/verify/", {"code": code_from(mailoutbox[0])}, format="json"
    )
    assert verified.status_code == 200
    assert DataRequest.objects.get(reference=reference).status == "in_review"


def test_a_mail_server_that_is_down_keeps_the_email_owed_and_a_retry_sends_it(
    file_without_sending, settings, smtp_server
):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = closed_port
    settings.EMAIL_TIMEOUT = 2
    reference = file_without_sending(email="patient@example.com")
    owed = _owed(reference)

    with pytest.raises(ConnectionError):
        tasks.verification_send.run(owed.pk)

    owed.refresh_from_db()
    assert owed.send_pending
    assert owed.send_claimed_until is None  # given back, so the retry need not wait
    _host, port, inbox = smtp_server
    settings.EMAIL_PORT = port
    tasks.verification_send.run(owed.pk)
    assert inbox.wait_for(1)["To"] == "patient@example.com"
    assert not _owed(reference).send_pending


def test_an_address_the_mail_server_refuses_is_given_up_and_audited(
    file_without_sending, settings, caplog
):
    class RefusingInbox:
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            return "550 no such mailbox"

    import socket

    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(RefusingInbox(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
        caplog.set_level(logging.INFO, logger="requests")
        reference = file_without_sending(email="nobody@example.com")
        tasks.verification_send.run(_owed(reference).pk)
    finally:
        controller.stop()

    owed = _owed(reference)
    assert not owed.send_pending
    assert owed.sends == 0
    event = AuditEvent.objects.get(action="verification.send_refused")
    assert event.request.reference == reference
    assert "nobody" not in str(event.details)
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("requests"))
    assert "refused" in ours and "550" in ours  # the refusal is logged, with its code ...
    assert "nobody" not in ours  # ... without the address


def test_the_reconciler_runs_on_the_beat_schedule(settings):
    entries = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "requests.tasks.verifications_reconcile" in entries


# Batches: a filing's commit queues at most one batch task per delay, which sends every owed email.


def test_one_batch_task_sends_every_owed_email_each_with_its_own_code(
    file_without_sending, public_api, mailoutbox, django_assert_max_num_queries
):
    references = [file_without_sending(email=f"p{n}@example.com") for n in range(5)]

    with django_assert_max_num_queries(12):  # one claim transaction and one mark, not per email
        assert tasks.verifications_send_owed() == 5

    assert sorted(m.to[0] for m in mailoutbox) == [f"p{n}@example.com" for n in range(5)]
    for reference in references:
        owed = _owed(reference)
        assert not owed.send_pending and owed.sends == 1 and owed.send_claimed_until is None
    by_address = {m.to[0]: m for m in mailoutbox}
    for n, reference in enumerate(references):
        response = public_api.post(
            f"/api/v1/requests/{reference}/verify/",
            {"code": code_from(by_address[f"p{n}@example.com"])},
            format="json",
        )
        assert response.status_code == 200, response.content
    # Delivered again, the task finds nothing owed.
    assert tasks.verifications_send_owed() == 0
    assert len(mailoutbox) == 5


def test_a_batch_claims_at_most_its_bound_and_the_task_sends_the_rest(
    file_without_sending, mailoutbox, monkeypatch
):
    monkeypatch.setattr(verification, "SEND_BATCH", 2)
    for n in range(5):
        file_without_sending(email=f"b{n}@example.com")

    assert len(verification.verification_claim_owed(limit=2).items) == 2
    # The two claimed are not claimed again while their lease holds.
    assert tasks.verifications_send_owed() == 3
    assert len(mailoutbox) == 3
    assert IdentityVerification.objects.filter(send_pending=True).count() == 2


def test_a_batch_whose_worker_dies_leaves_its_emails_owed_and_they_are_sent_later(
    file_without_sending, mailoutbox, settings, django_capture_on_commit_callbacks
):
    references = [file_without_sending(email=f"d{n}@example.com") for n in range(3)]
    batch = verification.verification_claim_owed()  # claimed, then the worker was killed
    assert len(batch.items) == 3
    assert tasks.verifications_send_owed() == 0  # a second delivery while the lease holds

    IdentityVerification.objects.update(send_claimed_until=timezone.now() - timedelta(seconds=1))
    for reference in references:
        _age_queued_send(reference, settings)
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.verifications_reconcile() == 3

    assert sorted(m.to[0] for m in mailoutbox) == [f"d{n}@example.com" for n in range(3)]
    assert IdentityVerification.objects.filter(send_pending=True).count() == 0
    # The dead batch's claim can no longer mark anything: a later claim took the emails over.
    verification.verification_mark_sent_many(
        ids=[item[0] for item in batch.items], claimed_until=batch.claimed_until
    )
    assert {v.sends for v in IdentityVerification.objects.all()} == {1}


def test_a_mail_server_that_goes_down_mid_batch_keeps_the_rest_owed_for_the_retry(
    file_without_sending, settings, monkeypatch
):
    from requests import emails

    for n in range(4):
        file_without_sending(email=f"m{n}@example.com")
    sent = []

    def send_two_then_fail(request, issued):
        if len(sent) == 2:
            raise ConnectionError("mail server went away")
        sent.append(request.email)

    monkeypatch.setattr(emails, "send_verification", send_two_then_fail)
    with pytest.raises(ConnectionError):
        tasks.verifications_send_owed.run()

    owed = IdentityVerification.objects.filter(send_pending=True)
    assert owed.count() == 2  # the two that went out are marked sent ...
    assert not owed.filter(send_claimed_until__isnull=False).exists()  # ... the rest given back
    monkeypatch.setattr(emails, "send_verification", lambda request, issued: None)
    assert tasks.verifications_send_owed.run() == 2
    assert not IdentityVerification.objects.filter(send_pending=True).exists()


def test_filings_queue_one_batch_task_while_one_is_due(
    public_api, settings, django_capture_on_commit_callbacks, monkeypatch, request
):
    from celery import current_app

    from requests import queueing

    # As with a worker: tasks are sent, not run where they are queued.
    eager = current_app.conf["task_always_eager"]
    current_app.conf.update(task_always_eager=False)
    request.addfinalizer(lambda: current_app.conf.update(task_always_eager=eager))
    sent = []
    task = current_app.tasks[queueing.task_name(verification.SEND_OWED_TASK)]
    monkeypatch.setattr(task, "apply_async", lambda **options: sent.append(options))
    monkeypatch.setattr(queueing, "_due_until", {})
    settings.PORTAL_VERIFICATION_SEND_DELAY = 5

    def file(n):
        with django_capture_on_commit_callbacks(execute=True):
            response = public_api.post(
                "/api/v1/requests/",
                {"kind": "access", "identity": {"email": f"q{n}@example.com"}},
                format="json",
            )
        assert response.status_code == 201

    for n in range(3):
        file(n)
    assert sent == [{"countdown": 5}]  # one task for the three, due in 5 s
    queueing.coalesced_started(verification.SEND_OWED_TASK)  # it started
    file(3)
    assert len(sent) == 2  # so the next filing queues another
    assert IdentityVerification.objects.filter(send_pending=True).count() == 4


def test_with_no_delay_each_filing_queues_its_own_send(file_request, mailoutbox, settings):
    settings.PORTAL_VERIFICATION_SEND_DELAY = 0
    file_request(email="one@example.com")
    file_request(email="two@example.com")
    assert [m.to for m in mailoutbox] == [["one@example.com"], ["two@example.com"]]
