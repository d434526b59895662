"""Celery entry points. They take ids, fetch fresh rows, and leave the logic to services.

Each is safe to deliver twice: work is claimed with a conditional UPDATE in the database.
"""

from __future__ import annotations

import contextlib
import logging
import smtplib
from functools import partial

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from requests import emails, queueing
from requests.models import AccessPackage, DataRequest, ErasureCertificate
from requests.services import (
    audit,
    jobs,
    lifecycle,
    notices,
    packages,
    processing,
    verification,
)
from requests.services.erasure.recipients import recipients_check
from requests.states import Kind

log = logging.getLogger(__name__)

# Each beat run seals at most this many batches, so one run stays short after a long outage; the
# next run carries on.
AUDIT_SEAL_MAX_BATCHES = 20

# Mail servers that are down or busy are worth retrying; a refused recipient is not.
TRANSIENT_MAIL_ERRORS = (
    smtplib.SMTPServerDisconnected,
    smtplib.SMTPConnectError,
    smtplib.SMTPHeloError,
    ConnectionError,
    TimeoutError,
)


# Every task that sends mail: retried with backoff while the mail server is unreachable.
MAIL_TASK = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "max_retries": 8,
    "autoretry_for": TRANSIENT_MAIL_ERRORS,
    "retry_backoff": True,
    "retry_backoff_max": 600,
}


# The verification email is retried through database outages too: it is what lets a person
# prove who they are, and its claim in the database keeps a retry from sending twice.
VERIFICATION_TASK = {
    **MAIL_TASK,
    "autoretry_for": (*TRANSIENT_MAIL_ERRORS, OperationalError, InterfaceError),
}


def _send_claimed_code(claim, release, send, *, what: str) -> None:
    """Mint a code claimed in the database (so at most one is sent per claim) and mail it.

    A mail server that is down gives the claim back, so the retry mints and sends a new code.
    """
    issued = claim()
    if issued is None:
        return
    request = DataRequest.objects.filter(pk=issued.request_id).first()
    if request is None:
        return
    try:
        send(request, issued)
    except TRANSIENT_MAIL_ERRORS:
        release()
        log.warning("%s mail for request id %s failed; will retry", what, request.pk)
        raise
    except smtplib.SMTPException as exc:
        log.warning("%s mail for request id %s refused (%s)", what, request.pk, _kind(exc))


@shared_task(**VERIFICATION_TASK)
def verification_send(verification_id: int) -> None:
    """Send the owed verification email; it stays owed until the mail server took it."""
    issued = verification.verification_claim_send(verification_id=verification_id)
    if issued is None:
        return
    try:
        request = DataRequest.objects.get(pk=issued.request_id)
        emails.send_verification(request, issued)
    except TRANSIENT_MAIL_ERRORS:
        _release_quietly(verification_id, issued)
        log.warning("verification mail for request id %s failed; will retry", issued.request_id)
        raise
    except smtplib.SMTPException as exc:
        log.warning(
            "verification mail for request id %s refused (%s)", issued.request_id, _kind(exc)
        )
        verification.verification_abandon_send(verification_id=verification_id, issued=issued)
        return
    except Exception:
        _release_quietly(verification_id, issued)
        raise
    verification.verification_mark_sent(verification_id=verification_id, issued=issued)


# Batches one run of the batch task sends at most before it hands over to a new task, so that
# under constant intake one task does not hold a worker (and its message) for ever.
SEND_OWED_MAX_BATCHES = 20
# A batch marks its emails sent every this many, so a worker killed mid-batch sends at most this
# many twice (each time with a new code) once their lease ran out.
SEND_OWED_MARK_EVERY = 10


@shared_task(**VERIFICATION_TASK)
def verifications_send_owed() -> int:
    """Send every owed verification email, in claimed batches over the kept SMTP connection.

    Queued after filings' commits, about one per PORTAL_VERIFICATION_SEND_DELAY for all
    processes. Each email is claimed by its lease in the database, so a second delivery of this
    task, or two running at once, send it once; one that dies mid-batch leaves the rest owed, and
    the reconciler queues them again once the lease ran out.
    """
    queueing.coalesced_started(verification.SEND_OWED_TASK)
    sent = 0
    for _ in range(SEND_OWED_MAX_BATCHES):
        batch = verification.verification_claim_owed(limit=verification.SEND_BATCH)
        sent += _send_batch(batch)
        if len(batch.items) < verification.SEND_BATCH:
            return sent
    verifications_send_owed.delay()  # more are owed: carry on in a new task
    return sent


def _send_batch(batch) -> int:
    done: list[int] = []
    settled = 0
    try:
        for verification_id, request, issued in batch.items:
            try:
                emails.send_verification(request, issued)
            except TRANSIENT_MAIL_ERRORS:
                log.warning("verification mail for request id %s failed; will retry", request.pk)
                raise
            except smtplib.SMTPException as exc:
                log.warning(
                    "verification mail for request id %s refused (%s)", request.pk, _kind(exc)
                )
                verification.verification_abandon_send(
                    verification_id=verification_id, issued=issued
                )
            else:
                done.append(verification_id)
                if len(done) >= SEND_OWED_MARK_EVERY:
                    verification.verification_mark_sent_many(
                        ids=done, claimed_until=batch.claimed_until
                    )
                    done = []
            settled += 1
    finally:
        # What went out is marked sent even when the batch stops early; the rest is given back
        # at once for the retry (with the database down, its lease runs out instead).
        verification.verification_mark_sent_many(ids=done, claimed_until=batch.claimed_until)
        rest = [item[0] for item in batch.items[settled:]]
        if rest:
            with contextlib.suppress(OperationalError, InterfaceError):
                verification.verification_release_many(ids=rest, claimed_until=batch.claimed_until)
    return settled


def _kind(exc: smtplib.SMTPException) -> str:
    # A refusal's text and traceback name the recipient's address; log only its kind and code.
    codes = getattr(exc, "codes", None) or [getattr(exc, "smtp_code", None)]
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        # {address: (code, message)}: the codes only.
        codes = [answer[0] for answer in exc.recipients.values()]
    shown = ", ".join(str(code) for code in codes if code)
    return f"{type(exc).__name__} {shown}".strip()


def _release_quietly(verification_id: int, issued) -> None:
    # With the database down the release fails too; the claim's lease then runs out instead.
    try:
        verification.verification_release_send(verification_id=verification_id, issued=issued)
    except (OperationalError, InterfaceError):
        log.warning("could not release the verification claim %s", verification_id)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def verifications_reconcile() -> int:
    """Queue again the verification emails still owed after PORTAL_VERIFICATION_RESEND_AFTER."""
    return verification.verification_sends_reconcile(
        batch=settings.PORTAL_VERIFICATION_RECONCILE_BATCH
    )


@shared_task(bind=True, **MAIL_TASK)
def notify_subject(self, request_id: int, event: str, notice_id: int | None = None) -> None:
    """Email the person about their request; claimed first, so sent once per notice."""
    if notice_id is None:  # queued before notices were recorded
        notice_id = notices.notice_record(request_id=request_id, event=event).pk
    claim, claimed_until = notices.notice_claim(notice_id=notice_id)
    if claim is notices.Claim.SENT:
        return
    if claim is notices.Claim.BUSY:
        # Another delivery holds it (or its worker died holding it): look again once its claim
        # has run out; by then it was sent, or it is ours to send.
        wait = (claimed_until - timezone.now()).total_seconds() if claimed_until else 0
        raise self.retry(countdown=max(1.0, wait + 1.0))
    request = DataRequest.objects.filter(pk=request_id).first()
    if request is None:
        notices.notice_mark_sent(notice_id=notice_id)
        return
    try:
        _send_update(request, event)
    except TRANSIENT_MAIL_ERRORS:
        notices.notice_release(notice_id=notice_id)
        log.warning("%s mail for request id %s failed; will retry", event, request_id)
        raise
    except smtplib.SMTPException as exc:
        # Refused for good: retrying cannot help. Only the kind and code are logged.
        log.warning("%s mail for request id %s refused (%s)", event, request_id, _kind(exc))
    except Exception:
        notices.notice_release(notice_id=notice_id)
        raise
    notices.notice_mark_sent(notice_id=notice_id)


def _send_update(request: DataRequest, event: str) -> None:
    # The answer to an access request is the copy to download: say so, and how.
    if (
        event == "completed"
        and request.kind == Kind.ACCESS
        and AccessPackage.objects.filter(request=request).exists()
    ):
        event = "package_ready"
    # The answer to an erasure is what was erased, what is kept and why: from its certificate.
    if (
        event == "completed"
        and request.kind == Kind.ERASURE
        and ErasureCertificate.objects.filter(request=request).exists()
    ):
        event = "erased"
    emails.send_update(request, event)


@shared_task(**MAIL_TASK)
def package_code_send(code_id: int) -> None:
    """Mint and email a download code; claimed in the database, so sent at most once."""
    _send_claimed_code(
        partial(packages.package_claim_code_send, code_id=code_id),
        partial(packages.package_release_code_send, code_id=code_id),
        packages.send_download_code,
        what="download code",
    )


@shared_task(acks_late=True, reject_on_worker_lost=True)
def packages_delete_expired() -> int:
    return packages.packages_delete_expired()


@shared_task(acks_late=True, reject_on_worker_lost=True)
def request_process(request_id: int) -> None:
    """Move a processing request on: start nothing twice, finish once every job is settled."""
    processing.request_advance(request_id=request_id)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def job_run(job_id: int, request_id: int | None = None) -> None:
    """Run one store job. Claimed in the database first, so a second delivery does nothing."""
    processing.job_execute(job_id=job_id, request_id=request_id)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def jobs_reconcile() -> dict:
    return jobs.jobs_reconcile()


@shared_task(acks_late=True, reject_on_worker_lost=True)
def erasure_recipients_check() -> dict:
    """Ask downstream services still erasing how they stand; flag overdue manual tasks."""
    return recipients_check()


@shared_task(acks_late=True, reject_on_worker_lost=True)
def requests_expire_unverified() -> int:
    return lifecycle.requests_expire_unverified()


@shared_task(**MAIL_TASK)
def staff_digest_send() -> int:
    from requests.services.digest import staff_digest_send as send_digest

    return send_digest()


@shared_task(acks_late=True, reject_on_worker_lost=True)
def requests_purge_closed_identities() -> int:
    return lifecycle.requests_purge_closed_identities()


@shared_task(acks_late=True, reject_on_worker_lost=True)
def audit_seal_pending() -> int:
    """Seal pending audit events in batches: queued after each commit that recorded some (one per
    process per PORTAL_AUDIT_SEAL_DELAY), and from beat for those whose task was lost."""
    return audit.audit_seal_all(max_batches=AUDIT_SEAL_MAX_BATCHES)
