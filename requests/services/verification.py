"""The emailed identity check: one-time code and link, hashed at rest, expiring, rate-limited."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from requests.models import DataRequest, IdentityVerification
from requests.queueing import enqueue, enqueue_coalesced
from requests.services.audit import SUBJECT, SYSTEM, audit_record
from requests.services.errors import NotFound, RateLimited, VerificationFailed
from requests.services.lifecycle import request_mark_verified
from requests.states import Status

CODE_DIGITS = 6

# Owed emails one batch claims and sends at most, over one kept SMTP connection (which is renewed
# after requests.emails.KEEP_OPEN_MESSAGES): big enough that Celery's own cost per task is shared
# by many emails under load, small enough that a batch's lease (PORTAL_MAIL_SEND_LEASE) is never
# close to running out while its last email waits for the mail server.
SEND_BATCH = 100
# The batch task's name; filings queue it at most once per PORTAL_VERIFICATION_SEND_DELAY.
SEND_OWED_TASK = "verifications_send_owed"


def _hash_secret(value: str) -> str:
    return hmac.new(
        settings.SECRET_KEY.encode(), f"verification:{value}".encode(), hashlib.sha256
    ).hexdigest()


@dataclass(frozen=True)
class IssuedSecrets:
    request_id: int
    code: str
    link_token: str


def verification_claim_send(*, verification_id: int) -> IssuedSecrets | None:
    """Claim an owed email for a short lease and mint a new code and link for it.

    None when nothing is owed or another delivery holds the claim. The claim is a conditional
    UPDATE, so a task delivered twice sends one email. The email stays owed (`send_pending`)
    until `verification_mark_sent`: a task that dies or fails after claiming loses nothing, as
    the lease runs out and the reconciler queues the send again.
    """
    now = timezone.now()
    code = "".join(secrets.choice("0123456789") for _ in range(CODE_DIGITS))
    link_token = secrets.token_urlsafe(32)
    claimed = IdentityVerification.objects.filter(
        Q(send_claimed_until__isnull=True) | Q(send_claimed_until__lt=now),
        pk=verification_id,
        send_pending=True,
        verified_at__isnull=True,
        request__status=Status.AWAITING_VERIFICATION,
    ).update(
        send_claimed_until=now + settings.PORTAL_MAIL_SEND_LEASE,
        code_hash=_hash_secret(code),
        link_hash=_hash_secret(link_token),
        expires_at=now + settings.PORTAL_VERIFICATION_TTL,
        failed_attempts=0,
        locked_at=None,
    )
    if claimed != 1:
        return None
    request_id = IdentityVerification.objects.values_list("request_id", flat=True).get(
        pk=verification_id
    )
    return IssuedSecrets(request_id=request_id, code=code, link_token=link_token)


@dataclass(frozen=True)
class ClaimedBatch:
    """Owed emails claimed together: `claimed_until` is the batch's lease and tells its claims
    from later ones; each item is (verification id, its request, the secrets to mail)."""

    claimed_until: datetime
    items: list[tuple[int, DataRequest, IssuedSecrets]]


def verification_sends_soon(*, verification_id: int) -> None:
    """After the current transaction commits, have the email it made owed sent shortly: by the
    batch task, queued at most once per PORTAL_VERIFICATION_SEND_DELAY by all processes together,
    instead of a task per email (with the delay at 0, a task for this email alone, at once)."""
    delay = settings.PORTAL_VERIFICATION_SEND_DELAY
    if delay <= 0:
        enqueue("verification_send", verification_id)
    else:
        enqueue_coalesced(SEND_OWED_TASK, delay)


def verification_claim_owed(*, limit: int = SEND_BATCH) -> ClaimedBatch:
    """Claim up to `limit` owed emails for one lease and mint a new code and link for each.

    As `verification_claim_send`, for many in one transaction: rows another batch is claiming
    right now are skipped, and the claim is a conditional UPDATE, so no email is claimed twice
    while its lease holds. The emails stay owed until `verification_mark_sent_many`.
    """
    now = timezone.now()
    claimed_until = now + settings.PORTAL_MAIL_SEND_LEASE
    unclaimed = Q(send_claimed_until__isnull=True) | Q(send_claimed_until__lt=now)
    owed = IdentityVerification.objects.filter(
        unclaimed,
        send_pending=True,
        verified_at__isnull=True,
        request__status=Status.AWAITING_VERIFICATION,
    )
    with transaction.atomic():
        ids = list(
            owed.select_for_update(skip_locked=True, of=("self",))
            .order_by("send_queued_at")
            .values_list("pk", flat=True)[:limit]
        )
        if not ids:
            return ClaimedBatch(claimed_until, [])
        owed.filter(pk__in=ids).update(send_claimed_until=claimed_until)
        rows = list(
            IdentityVerification.objects.filter(pk__in=ids, send_claimed_until=claimed_until)
            .select_related("request")
            .order_by("send_queued_at")
        )
        items = []
        for row in rows:
            code = "".join(secrets.choice("0123456789") for _ in range(CODE_DIGITS))
            link_token = secrets.token_urlsafe(32)
            row.code_hash, row.link_hash = _hash_secret(code), _hash_secret(link_token)
            row.expires_at = now + settings.PORTAL_VERIFICATION_TTL
            row.failed_attempts, row.locked_at = 0, None
            items.append((row.pk, row.request, IssuedSecrets(row.request_id, code, link_token)))
        IdentityVerification.objects.bulk_update(
            rows, ["code_hash", "link_hash", "expires_at", "failed_attempts", "locked_at"]
        )
    return ClaimedBatch(claimed_until, items)


def verification_mark_sent_many(*, ids: list[int], claimed_until: datetime) -> None:
    """These emails of one batch went out (unless a later claim took one over)."""
    if ids:
        IdentityVerification.objects.filter(pk__in=ids, send_claimed_until=claimed_until).update(
            send_pending=False,
            send_claimed_until=None,
            sends=F("sends") + 1,
            last_sent_at=timezone.now(),
        )


def verification_release_many(*, ids: list[int], claimed_until: datetime) -> None:
    """Sending stopped for now: give these claims of one batch back, for a retry to send at once."""
    if ids:
        IdentityVerification.objects.filter(pk__in=ids, send_claimed_until=claimed_until).update(
            send_claimed_until=None
        )


def _own_claim(verification_id: int, issued: IssuedSecrets):
    # The code's hash tells this claim from a later one made after its lease ran out.
    return IdentityVerification.objects.filter(
        pk=verification_id, code_hash=_hash_secret(issued.code)
    )


def verification_mark_sent(*, verification_id: int, issued: IssuedSecrets) -> None:
    """The email went out: nothing is owed any more (unless a later claim took over)."""
    _own_claim(verification_id, issued).update(
        send_pending=False,
        send_claimed_until=None,
        sends=F("sends") + 1,
        last_sent_at=timezone.now(),
    )


def verification_release_send(*, verification_id: int, issued: IssuedSecrets) -> None:
    """Sending failed for now: give the claim back so a retry can send at once."""
    _own_claim(verification_id, issued).update(send_claimed_until=None)


@transaction.atomic
def verification_abandon_send(*, verification_id: int, issued: IssuedSecrets) -> None:
    """The mail server refused the address for good: stop owing the email, and say so."""
    abandoned = _own_claim(verification_id, issued).update(
        send_pending=False, send_claimed_until=None
    )
    if abandoned:
        audit_record(
            action="verification.send_refused",
            actor=SYSTEM,
            request=DataRequest.objects.get(pk=issued.request_id),
            details={},
        )


def verification_sends_reconcile(*, batch: int = 100) -> int:
    """Queue again the verification emails still owed well after their send was queued.

    Picks up sends whose task was lost (a database error before the claim, a broker that
    dropped it, a worker killed mid-send): bounded per run, oldest first.
    """
    now = timezone.now()
    stale = now - settings.PORTAL_VERIFICATION_RESEND_AFTER
    # Two reconcilers racing queue a send twice at worst, and the claim makes that harmless.
    with transaction.atomic():
        ids = list(
            IdentityVerification.objects.filter(
                Q(send_claimed_until__isnull=True) | Q(send_claimed_until__lt=now),
                send_pending=True,
                verified_at__isnull=True,
                send_queued_at__lt=stale,
                request__status=Status.AWAITING_VERIFICATION,
            )
            .order_by("send_queued_at")
            .values_list("pk", flat=True)[:batch]
        )
        IdentityVerification.objects.filter(pk__in=ids).update(send_queued_at=now)
        for verification_id in ids:
            enqueue("verification_send", verification_id)
    return len(ids)


def _locked_verification(reference: str) -> tuple[DataRequest, IdentityVerification]:
    request = DataRequest.objects.select_for_update().filter(reference=reference).first()
    if request is None:
        raise NotFound("No request has this reference.")
    verification = IdentityVerification.objects.select_for_update().get(request=request)
    return request, verification


def _check_usable(request: DataRequest, verification: IdentityVerification) -> None:
    if verification.verified_at is not None or request.status != Status.AWAITING_VERIFICATION:
        if verification.verified_at is not None:
            raise VerificationFailed(
                "This request is already verified; the code or link cannot be used again.",
                field="code",
                code="already_used",
            )
        raise VerificationFailed(
            f"This request is {request.status} and can no longer be verified.",
            field="code",
            code="not_verifiable",
        )
    if verification.is_locked:
        raise VerificationFailed(
            "Too many wrong codes. Ask for a new code to try again.", field="code", code="locked"
        )
    if not verification.code_hash or verification.expires_at is None:
        raise VerificationFailed(
            "No code has been sent yet; please wait for the email.", field="code", code="not_sent"
        )
    if timezone.now() > verification.expires_at:
        raise VerificationFailed(
            "This code has expired. Ask for a new code.", field="code", code="expired"
        )


def request_verify_code(*, reference: str, code: str) -> DataRequest:
    """Check a typed code. A wrong code only counts an attempt; the fifth locks the check."""
    code = (code or "").strip()
    if not code.isdigit() or len(code) != CODE_DIGITS:
        raise VerificationFailed(
            f"Enter the {CODE_DIGITS}-digit code from the email.", field="code"
        )
    with transaction.atomic():
        request, verification = _locked_verification(reference)
        _check_usable(request, verification)
        if hmac.compare_digest(verification.code_hash, _hash_secret(code)):
            return _verified(request, verification, method="code")
        verification.failed_attempts += 1
        locked = verification.failed_attempts >= settings.PORTAL_VERIFICATION_MAX_ATTEMPTS
        if locked:
            verification.locked_at = timezone.now()
        verification.save(update_fields=["failed_attempts", "locked_at"])
        audit_record(
            action="verification.failed",
            actor=SUBJECT,
            request=request,
            details={"attempts": verification.failed_attempts, "locked": locked},
        )
    remaining = settings.PORTAL_VERIFICATION_MAX_ATTEMPTS - verification.failed_attempts
    if locked:
        raise VerificationFailed(
            "Too many wrong codes. Ask for a new code to try again.", field="code", code="locked"
        )
    raise VerificationFailed(
        f"That code is not right. {remaining} attempt(s) left.",
        field="code",
        code="wrong_code",
        extra={"attempts_left": remaining},
    )


def request_verify_link(*, reference: str, token: str) -> DataRequest:
    with transaction.atomic():
        request, verification = _locked_verification(reference)
        _check_usable(request, verification)
        if not token or not hmac.compare_digest(verification.link_hash, _hash_secret(token)):
            raise VerificationFailed(
                "This link is not valid. Use the newest email or type the code.",
                field="token",
                code="invalid_link",
            )
        return _verified(request, verification, method="link")


def _verified(
    request: DataRequest, verification: IdentityVerification, *, method: str
) -> DataRequest:
    verification.verified_at = timezone.now()
    verification.code_hash = ""
    verification.link_hash = ""
    verification.save(update_fields=["verified_at", "code_hash", "link_hash"])
    return request_mark_verified(request=request, method=method)


@transaction.atomic
def request_resend_code(*, reference: str) -> DataRequest:
    """Owe the person a fresh code (which also lifts a lock), within the resend limits."""
    request, verification = _locked_verification(reference)
    if request.status != Status.AWAITING_VERIFICATION:
        raise VerificationFailed(
            f"This request is {request.status}; no code is needed.", code="not_verifiable"
        )
    now = timezone.now()
    if verification.sends > settings.PORTAL_RESEND_MAX:
        raise RateLimited(
            "The most codes one request may receive were sent. File a new request if needed.",
            extra={"limit": "resends_per_request"},
        )
    if verification.last_sent_at is not None:
        wait = verification.last_sent_at + settings.PORTAL_RESEND_INTERVAL - now
        if wait.total_seconds() > 0:
            seconds = int(wait.total_seconds()) + 1
            raise RateLimited(
                f"A code was sent a moment ago. Try again in {seconds} seconds.",
                retry_after=seconds,
                extra={"limit": "resend_interval", "retry_after": seconds},
            )
    # Queued even when a code is already owed: the task that owed it may have been lost, and
    # the claim makes a second task harmless.
    verification.send_pending = True
    verification.send_queued_at = now
    verification.save(update_fields=["send_pending", "send_queued_at"])
    audit_record(
        action="verification.resend_requested",
        actor=SUBJECT,
        request=request,
        details={"sends_so_far": verification.sends},
    )
    enqueue("verification_send", verification.pk)
    return request
