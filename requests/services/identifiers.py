"""Identity assurance: recording that an identifier was proven, by the person or by staff.

The email is proven by the emailed code (`requests.services.verification`, which records it here
through `request_mark_verified`); a phone by a code sent by text message (`phone_code_send`,
`phone_code_check`); any identifier by staff who asked for and saw proof
(`request_confirm_identity`).
Each proof is one audit event naming the type and method, never the value. What may be searched
is decided in one place, `requests.assurance.searchable_identity`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from requests import sms
from requests.assurance import NEVER_SEARCH_KEYS
from requests.identity import INTAKE_TYPES
from requests.models import (
    DataRequest,
    IdentifierMethod,
    IdentifierState,
    IdentifierVerification,
)
from requests.models.identifiers import ALLOWED_IDENTIFIER_TRANSITIONS
from requests.services.audit import SUBJECT, audit_record
from requests.services.errors import NotFound, RateLimited, ServiceError, VerificationFailed
from requests.states import Status

CODE_DIGITS = 6
MAX_NOTE_LENGTH = 5000
# Identifiers are proven while staff review the request: after approval the jobs already searched.
REVIEWABLE = frozenset({Status.IN_REVIEW, Status.AWAITING_INFORMATION})


# How long the person is asked to wait after the SMS gateway failed.
SMS_RETRY_AFTER_SECONDS = 60


class SmsNotSent(ServiceError):
    """The SMS gateway did not take the message: nothing is owed, a later try may work."""

    status_code = 503
    code = "sms_not_sent"
    retry_after = SMS_RETRY_AFTER_SECONDS


def _hash_code(value: str) -> str:
    return hmac.new(
        settings.SECRET_KEY.encode(), f"identifier-code:{value}".encode(), hashlib.sha256
    ).hexdigest()


def _row(request: DataRequest, identity_type: str) -> IdentifierVerification:
    row, _ = IdentifierVerification.objects.select_for_update().get_or_create(
        request=request, identity_type=identity_type
    )
    return row


def _move(row: IdentifierVerification, to: str) -> None:
    if to not in ALLOWED_IDENTIFIER_TRANSITIONS[row.state]:
        raise ServiceError(
            f"The {row.identity_type} is already {row.state}; it cannot become {to}.",
            field="types",
            code="already_verified",
        )
    row.state = to


@transaction.atomic
def identifier_mark_verified(
    *,
    request: DataRequest,
    identity_type: str,
    method: str,
    actor: str,
    note: str = "",
) -> IdentifierVerification:
    """Record that one identifier of the request was proven, with one audit event (no value)."""
    if method not in IdentifierMethod.values:
        raise ValueError(f"unknown verification method {method!r}")
    row = _row(request, identity_type)
    _move(row, IdentifierState.VERIFIED)
    row.method = method
    row.verified_at = timezone.now()
    row.verified_by = actor
    row.note = note
    row.code_hash = ""
    row.save()
    details: dict = {"type": identity_type, "method": method}
    if note:
        details["note_length"] = len(note)
    audit_record(action="identity.verified", actor=actor, request=request, details=details)
    return row


def request_confirm_identity(
    *, request: DataRequest, types: list[str], note: str, actor: str
) -> DataRequest:
    """Staff confirm identifiers the person proved to them (through the information step).

    The note says what proof was seen; it may name documents, so the audit event keeps only its
    length, and the note itself is encrypted with the request and shown to staff only."""
    note = (note or "").strip()
    if not note:
        raise ServiceError("Say what proof you saw in the note.", field="note", code="required")
    if len(note) > MAX_NOTE_LENGTH:
        raise ServiceError(f"At most {MAX_NOTE_LENGTH} characters.", field="note")
    wanted = list(dict.fromkeys(str(t).strip() for t in types))
    if not wanted or "" in wanted:
        raise ServiceError("Name at least one identifier type, as text.", field="types")
    with transaction.atomic():
        locked = DataRequest.objects.select_for_update().get(pk=request.pk)
        if locked.is_closed:
            raise ServiceError(
                f"This request is {locked.status}; identifiers of a closed request cannot be "
                "confirmed.",
                field="status",
                code="request_closed",
            )
        if locked.status not in REVIEWABLE:
            raise ServiceError(
                f"This request is {locked.status}; identifiers are confirmed while it is "
                f"{' or '.join(sorted(REVIEWABLE))}.",
                field="status",
                code="not_reviewable",
            )
        identity = locked.identity or {}
        for identity_type in wanted:
            if identity_type not in identity:
                if identity_type in INTAKE_TYPES:
                    raise ServiceError(
                        f"This request has no {identity_type}; only the identifiers it carries "
                        f"can be confirmed ({', '.join(sorted(identity))}).",
                        field="types",
                        code="not_on_request",
                    )
                raise ServiceError(
                    f"Unknown identity type {identity_type!r}; use one the request carries "
                    f"({', '.join(sorted(identity))}).",
                    field="types",
                    code="unknown_type",
                )
        proven = {
            row.identity_type: row.method
            for row in locked.identifier_checks.filter(state=IdentifierState.VERIFIED)
        }
        for identity_type in wanted:
            if identity_type in proven:
                raise ServiceError(
                    f"The {identity_type} is already verified ({proven[identity_type]}); leave it "
                    "out.",
                    field="types",
                    code="already_verified",
                )
        for identity_type in wanted:
            identifier_mark_verified(
                request=locked,
                identity_type=identity_type,
                method=IdentifierMethod.STAFF,
                actor=actor,
                note=note,
            )
        audit_record(
            action="identity.confirmed_by_staff",
            actor=actor,
            request=locked,
            details={
                "types": wanted,
                "note_length": len(note),
                "searched": [t for t in wanted if t not in NEVER_SEARCH_KEYS],
            },
        )
    return locked


# --- a phone, by a code sent in a text message ---------------------------------------------------


def _locked_phone(reference: str) -> tuple[DataRequest, IdentifierVerification]:
    request = DataRequest.objects.select_for_update().filter(reference=reference).first()
    if request is None:
        raise NotFound("No request has this reference.")
    if not (request.identity or {}).get("phone"):
        raise ServiceError("This request has no phone number to verify.", code="no_phone")
    if request.status not in REVIEWABLE:
        if request.status == Status.AWAITING_VERIFICATION:
            message = "Confirm your email address first; then you can verify your phone."
        else:
            message = f"This request is {request.status}; the phone can no longer be verified."
        raise VerificationFailed(message, code="not_verifiable")
    row = _row(request, "phone")
    if row.is_verified:
        raise VerificationFailed(
            "This phone number is already verified.", field="code", code="already_used"
        )
    return request, row


def phone_code_send(*, reference: str) -> DataRequest:
    """Send a new code to the request's phone, within the same resend limits as the email's.

    The code is minted and its hash stored first; the message goes out after the commit. If the
    gateway refuses it, the code is withdrawn and the person may ask again at once."""
    with transaction.atomic():
        request, row = _locked_phone(reference)
        now = timezone.now()
        if row.sends > settings.PORTAL_RESEND_MAX:
            raise RateLimited("The most codes one request may receive were sent.")
        if row.last_sent_at is not None:
            wait = row.last_sent_at + settings.PORTAL_RESEND_INTERVAL - now
            if wait.total_seconds() > 0:
                seconds = int(wait.total_seconds()) + 1
                raise RateLimited(
                    f"A code was sent a moment ago. Try again in {seconds} seconds.",
                    retry_after=seconds,
                )
        code = "".join(secrets.choice("0123456789") for _ in range(CODE_DIGITS))
        _move(row, IdentifierState.CODE_SENT)
        row.code_hash = _hash_code(code)
        row.expires_at = now + settings.PORTAL_VERIFICATION_TTL
        row.failed_attempts = 0
        row.locked_at = None
        row.sends += 1
        row.last_sent_at = now
        row.save()
        audit_record(
            action="identity.code_sent",
            actor=SUBJECT,
            request=request,
            details={"type": "phone", "sends": row.sends},
        )
        phone = request.identity["phone"]
        language = request.language
    try:
        sms.send_code(to=phone, code=code, reference=reference, language=language)
    except sms.SmsError:
        IdentifierVerification.objects.filter(pk=row.pk, code_hash=row.code_hash).update(
            code_hash="", last_sent_at=None
        )
        raise SmsNotSent(
            "The text message could not be sent just now. Please try again in a few minutes."
        ) from None
    return request


def phone_code_check(*, reference: str, code: str) -> DataRequest:
    """Check a typed code: right, the phone is verified; wrong, an attempt counts (5 lock it)."""
    code = (code or "").strip()
    if not code.isdigit() or len(code) != CODE_DIGITS:
        raise VerificationFailed(
            f"Enter the {CODE_DIGITS}-digit code from the text message.", field="code"
        )
    with transaction.atomic():
        request, row = _locked_phone(reference)
        if row.is_locked:
            raise VerificationFailed(
                "Too many wrong codes. Ask for a new code to try again.",
                field="code",
                code="locked",
            )
        if not row.code_hash or row.expires_at is None:
            raise VerificationFailed(
                "No code has been sent to this phone yet.", field="code", code="not_sent"
            )
        if timezone.now() > row.expires_at:
            raise VerificationFailed(
                "This code has expired. Ask for a new code.", field="code", code="expired"
            )
        if hmac.compare_digest(row.code_hash, _hash_code(code)):
            identifier_mark_verified(
                request=request,
                identity_type="phone",
                method=IdentifierMethod.SMS_CODE,
                actor=SUBJECT,
            )
            return request
        row.failed_attempts += 1
        locked = row.failed_attempts >= settings.PORTAL_VERIFICATION_MAX_ATTEMPTS
        if locked:
            row.locked_at = timezone.now()
        row.save(update_fields=["failed_attempts", "locked_at"])
        audit_record(
            action="identity.code_failed",
            actor=SUBJECT,
            request=request,
            details={"type": "phone", "attempts": row.failed_attempts, "locked": locked},
        )
    if locked:
        raise VerificationFailed(
            "Too many wrong codes. Ask for a new code to try again.", field="code", code="locked"
        )
    remaining = settings.PORTAL_VERIFICATION_MAX_ATTEMPTS - row.failed_attempts
    raise VerificationFailed(
        f"That code is not right. {remaining} attempt(s) left.", field="code", code="wrong_code"
    )
