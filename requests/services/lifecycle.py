"""The request lifecycle: every change of a request's state is made here.

Each function locks the request row, checks the transition against `requests.states`, writes the
new state and an audit event in one transaction, and queues any Celery work on commit.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from requests import clock
from requests.crypto import keyed_hash
from requests.identity import clean_intake_identity
from requests.models import DataRequest, IdentityVerification
from requests.models.request import Source
from requests.services.audit import SUBJECT, SYSTEM, audit_record
from requests.services.errors import ServiceError, TransitionNotAllowed
from requests.services.identifiers import identifier_mark_verified
from requests.services.notices import notice_owe
from requests.states import TERMINAL, Kind, RejectionReason, Status, can_transition

MAX_MESSAGE_LENGTH = 5000


def subject_key_for(email: str) -> str:
    return keyed_hash(email, purpose="subject")


def _requests_by_subject(subject_key: str) -> int:
    """How many requests this person filed before. The statement the ORM's count() sends, sent
    as it is: building that aggregation query cost a tenth of a filing's CPU in the web worker."""
    meta = DataRequest._meta
    quote = connection.ops.quote_name
    column = quote(meta.get_field("subject_key").column)
    with connection.cursor() as cursor:
        cursor.execute(
            # Only the model's own table and column names, quoted; the key is a parameter.
            f"SELECT COUNT(*) FROM {quote(meta.db_table)} WHERE {column} = %s",  # noqa: S608
            [subject_key],
        )
        return cursor.fetchone()[0]


def _too_long() -> str:
    return _("At most %(count)d characters.") % {"count": MAX_MESSAGE_LENGTH}


def _transition(
    request: DataRequest,
    *,
    to: str,
    actor: str,
    action: str,
    details: dict[str, Any] | None = None,
    locked: bool = False,
    **fields: Any,
) -> DataRequest:
    """`locked`: the caller took `request`'s row lock in this transaction and passes that row
    (read under the lock); it is not locked again (a round trip on the completion's path)."""
    row = request if locked else DataRequest.objects.select_for_update().get(pk=request.pk)
    if not can_transition(row.status, to):
        raise TransitionNotAllowed(
            _("A request that is %(current)s cannot become %(target)s.")
            % {"current": row.status, "target": to},
            field="status",
        )
    previous = row.status
    row.status = to
    for name, value in fields.items():
        setattr(row, name, value)
    changed = ["status", *fields]
    if to in TERMINAL:
        row.closed_at = timezone.now()
        changed.append("closed_at")
    # Only what the move changes: a full save re-encrypts the identity and rewrites every column.
    row.save(update_fields=[*changed, "updated_at"])
    audit_record(
        action=action,
        actor=actor,
        request=row,
        details={"from": previous, "to": to, **(details or {})},
    )
    return row


@transaction.atomic
def request_file(
    *,
    kind: str,
    identity: dict,
    language: str = "en",
    source: str = Source.PUBLIC,
    actor: str = SUBJECT,
) -> DataRequest:
    """File a new request and queue the identity check email."""
    if kind not in Kind.values:
        raise ServiceError(f"Unknown kind; use {' or '.join(Kind.values)}.", field="kind")
    cleaned = clean_intake_identity(identity)
    if language not in dict(settings.LANGUAGES):
        language = settings.LANGUAGE_CODE
    now = timezone.now()
    subject_key = subject_key_for(cleaned["email"])
    earlier = _requests_by_subject(subject_key)
    request = DataRequest(
        kind=kind,
        identity=cleaned,
        subject_key=subject_key,
        language=language,
        source=source,
        received_at=now,
    )
    if settings.PORTAL_CLOCK_START == "receipt":
        request.clock_started_on = clock.local_date(now)
        request.due_on = clock.due_date(request.clock_started_on)
    request.save()
    verification = IdentityVerification.objects.create(request=request)
    audit_record(
        action="request.filed",
        actor=actor,
        request=request,
        details={
            "kind": kind,
            "source": source,
            "identity_types": sorted(cleaned),
            "earlier_requests_by_subject": earlier,
            "due_on": request.due_on,
        },
    )
    # Imported here: verification builds on this module (a verified request moves on).
    from requests.services.verification import verification_sends_soon

    verification_sends_soon(verification_id=verification.pk)
    return request


@transaction.atomic
def request_mark_verified(*, request: DataRequest, method: str) -> DataRequest:
    fields: dict[str, Any] = {"verified_at": timezone.now()}
    if settings.PORTAL_CLOCK_START == "verification":
        fields["clock_started_on"] = clock.local_date(fields["verified_at"])
        fields["due_on"] = clock.due_date(fields["clock_started_on"])
    verified = _transition(
        request,
        to=Status.IN_REVIEW,
        actor=SUBJECT,
        action="request.verified",
        details={"method": method},
        **fields,
    )
    # The request's own check proves its email; the other identifiers are proven one by one.
    identifier_mark_verified(
        request=verified,
        identity_type="email",
        method="email_link" if method == "link" else "email_code",
        actor=SUBJECT,
    )
    # The approval policy (PORTAL_AUTO_APPROVE) decides at once, in the same transaction, so a
    # verified request is never seen in review by staff and then approved under them.
    from requests.services.auto_approval import request_auto_approve

    return request_auto_approve(request=verified)


@transaction.atomic
def request_approve(
    *, request: DataRequest, actor: str, details: dict[str, Any] | None = None
) -> DataRequest:
    """Approve and start the jobs. `details` go into the audit event (an automatic approval names
    its policy there)."""
    from requests.services.processing import request_start

    row = DataRequest.objects.select_for_update().get(pk=request.pk)
    # A request in review was never processing, so it has no jobs yet; one that needed staff
    # has some (the start adds those of stores connected since).
    first = row.status == Status.IN_REVIEW
    approved = _transition(
        row,
        to=Status.PROCESSING,
        actor=actor,
        action="request.approved",
        details=details,
        locked=True,
        attention_reason="",
    )
    # The start works on the row read under this lock, without taking it again.
    request_start(request=approved, locked=True, first=first)
    return approved


@transaction.atomic
def request_reject(
    *, request: DataRequest, actor: str, reason: str, message: str = ""
) -> DataRequest:
    if reason not in RejectionReason.values:
        raise ServiceError(
            f"Unknown reason; use one of {', '.join(RejectionReason.values)}.", field="reason"
        )
    if reason == RejectionReason.OTHER and not message.strip():
        raise ServiceError(_("Explain the legal reason in the message."), field="message")
    if len(message) > MAX_MESSAGE_LENGTH:
        raise ServiceError(_too_long(), field="message")
    rejected = _transition(
        request,
        to=Status.REJECTED,
        actor=actor,
        action="request.rejected",
        details={"reason": reason},
        rejection_reason=reason,
        staff_message=message.strip(),
    )
    notice_owe(request=rejected, event="rejected")
    return rejected


@transaction.atomic
def request_extend(*, request: DataRequest, actor: str, months: int, reason: str) -> DataRequest:
    """Extend the deadline (Art. 12(3)); allowed only within the first month, up to two months."""
    locked = DataRequest.objects.select_for_update().get(pk=request.pk)
    if locked.is_closed:
        raise TransitionNotAllowed(
            _("A request that is %(current)s cannot be extended.") % {"current": locked.status}
        )
    if not reason or not reason.strip():
        raise ServiceError(
            _("An extension needs a reason the person will be told."), field="reason"
        )
    if len(reason) > MAX_MESSAGE_LENGTH:
        raise ServiceError(_too_long(), field="reason")
    if not isinstance(months, int) or isinstance(months, bool) or months < 1:
        raise ServiceError(_("Extend by 1 or 2 months."), field="months")
    total = locked.extension_months + months
    if total > clock.MAX_EXTENSION_MONTHS:
        raise ServiceError(
            _(
                "The deadline can be extended by at most %(most)d months in all; "
                "%(used)d already used."
            )
            % {"most": clock.MAX_EXTENSION_MONTHS, "used": locked.extension_months},
            field="months",
        )
    if locked.clock_started_on is None:
        raise ServiceError(_("The legal clock has not started yet."), field="months")
    first_due = clock.due_date(locked.clock_started_on)
    if clock.today() > first_due:
        raise ServiceError(
            _("The person must be told of an extension within the first month; it has passed."),
            field="months",
        )
    locked.extension_months = total
    locked.extension_reason = reason.strip()
    locked.due_on = clock.due_date(locked.clock_started_on, extension_months=total)
    locked.save()
    audit_record(
        action="request.extended",
        actor=actor,
        request=locked,
        details={"months": months, "total_months": total, "due_on": locked.due_on},
    )
    notice_owe(request=locked, event="extended")
    return locked


@transaction.atomic
def request_ask_information(*, request: DataRequest, actor: str, message: str) -> DataRequest:
    if not message or not message.strip():
        raise ServiceError(_("Say what information is needed."), field="message")
    if len(message) > MAX_MESSAGE_LENGTH:
        raise ServiceError(_too_long(), field="message")
    asked = _transition(
        request,
        to=Status.AWAITING_INFORMATION,
        actor=actor,
        action="request.information_requested",
        staff_message=message.strip(),
    )
    notice_owe(request=asked, event="information_requested")
    return asked


@transaction.atomic
def request_information_received(
    *, request: DataRequest, actor: str, details: dict[str, Any] | None = None
) -> DataRequest:
    return _transition(
        request,
        to=Status.IN_REVIEW,
        actor=actor,
        action="request.information_received",
        details=details,
    )


@transaction.atomic
def request_cancel(*, request: DataRequest, actor: str = SUBJECT) -> DataRequest:
    return _transition(request, to=Status.CANCELLED, actor=actor, action="request.cancelled")


def request_complete(
    *, request: DataRequest, details: dict[str, Any] | None = None, locked: bool = False
) -> DataRequest:
    """`locked`: the caller holds the request's lock in its transaction and passes the row it
    read under it; the completion then joins that transaction without a savepoint or a second
    lock (three round trips). Otherwise it locks in a transaction of its own."""
    if locked:
        if not transaction.get_connection().in_atomic_block:
            raise RuntimeError("a locked request is completed inside the lock's transaction")
        with transaction.atomic(savepoint=False):
            return _complete(request, details, locked=True)
    with transaction.atomic():
        return _complete(request, details, locked=False)


def _complete(request: DataRequest, details: dict[str, Any] | None, *, locked: bool) -> DataRequest:
    completed = _transition(
        request,
        to=Status.COMPLETED,
        actor=SYSTEM,
        action="request.completed",
        details=details,
        locked=locked,
    )
    notice_owe(request=completed, event="completed")
    return completed


@transaction.atomic
def request_resume(
    *, request: DataRequest, actor: str, action: str, details: dict[str, Any] | None = None
) -> DataRequest:
    """A request that needed staff goes back to processing (a retry, a confirmed task)."""
    return _transition(
        request,
        to=Status.PROCESSING,
        actor=actor,
        action=action,
        details=details,
        attention_reason="",
    )


@transaction.atomic
def request_flag_attention(*, request: DataRequest, reason: str) -> DataRequest:
    return _transition(
        request,
        to=Status.NEEDS_ATTENTION,
        actor=SYSTEM,
        action="request.needs_attention",
        details={"reason": reason},
        attention_reason=reason,
    )


def request_expire(*, request: DataRequest) -> DataRequest | None:
    """Expire one unverified request and purge its identity data (nothing else is kept)."""
    with transaction.atomic():
        locked = DataRequest.objects.select_for_update().filter(pk=request.pk).first()
        if locked is None or locked.status != Status.AWAITING_VERIFICATION:
            return None
        expired = _transition(
            locked,
            to=Status.EXPIRED,
            actor=SYSTEM,
            action="request.expired",
            details={"identity_purged": True},
            identity={},
            subject_key="",
            identity_purged_at=timezone.now(),
        )
        IdentityVerification.objects.filter(request=expired).update(
            code_hash="", link_hash="", send_pending=False
        )
        return expired


# Expiry works through unverified requests in batches of this size so that one sweep never holds
# a long transaction or loads every stale request at once.
EXPIRY_BATCH = 200


def requests_expire_unverified() -> int:
    cutoff = timezone.now() - settings.PORTAL_UNVERIFIED_EXPIRY
    expired = 0
    while True:
        batch = list(
            DataRequest.objects.filter(
                status=Status.AWAITING_VERIFICATION, received_at__lt=cutoff
            ).order_by("pk")[:EXPIRY_BATCH]
        )
        if not batch:
            return expired
        for request in batch:
            if request_expire(request=request) is not None:
                expired += 1


def request_purge_identity(*, request: DataRequest) -> DataRequest | None:
    """Empty a closed request's identity once its retention period is over.

    What stays is what proves the request was handled (its audit trail, certificate, dates and
    counts), none of which holds personal data; the keyed hash that spots repeated requests goes
    too, so nothing links the request to the person any more.
    """
    with transaction.atomic():
        locked = DataRequest.objects.select_for_update().filter(pk=request.pk).first()
        if locked is None or not locked.is_closed or locked.identity_purged_at is not None:
            return None
        locked.identity = {}
        locked.subject_key = ""
        locked.identity_purged_at = timezone.now()
        locked.save(update_fields=["identity", "subject_key", "identity_purged_at", "updated_at"])
        # Staff's notes of the proof they saw may name documents: they go with the identity.
        locked.identifier_checks.exclude(note="").update(note="")
        # So may the person's replies to staff's questions.
        locked.subject_replies.update(body="", question="")
        # So may staff's internal notes on the case: the notes stay (the trail counts them), empty.
        locked.notes.exclude(text="").update(text="")
        audit_record(
            action="request.identity_purged",
            actor=SYSTEM,
            request=locked,
            details={"retention_days": settings.PORTAL_CLOSED_RETENTION.days},
        )
        return locked


def requests_purge_closed_identities() -> int:
    """Purge the identity of every request closed longer ago than the retention period."""
    cutoff = timezone.now() - settings.PORTAL_CLOSED_RETENTION
    purged = 0
    while True:
        batch = list(
            DataRequest.objects.filter(
                status__in=TERMINAL, closed_at__lt=cutoff, identity_purged_at__isnull=True
            ).order_by("pk")[:EXPIRY_BATCH]
        )
        if not batch:
            return purged
        for request in batch:
            if request_purge_identity(request=request) is not None:
                purged += 1


def describe_status_for_subject(request: DataRequest) -> str:
    """One sentence for the person's status page and emails."""
    return {
        Status.AWAITING_VERIFICATION: _("We are waiting for you to confirm your email address."),
        Status.IN_REVIEW: _(
            "Your identity is confirmed; our privacy team is reviewing your request."
        ),
        Status.AWAITING_INFORMATION: _("We need more information from you before we can continue."),
        Status.PROCESSING: _("Your request was approved and is being carried out."),
        Status.NEEDS_ATTENTION: _(
            "Your request is being carried out; our team is handling a delay."
        ),
        Status.COMPLETED: _("Your request is complete."),
        Status.REJECTED: _("We could not carry out your request."),
        Status.EXPIRED: _("This request expired because the email address was never confirmed."),
        Status.CANCELLED: _("You withdrew this request."),
    }[request.status]
