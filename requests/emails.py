"""Messages to the person, rendered in the language they filed in, and to staff, in theirs, from
templates/emails/."""

from __future__ import annotations

import contextlib
import smtplib
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.core.mail.backends import smtp
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation

from requests.models import DataRequest
from requests.services.lifecycle import describe_status_for_subject
from requests.services.verification import IssuedSecrets


class MailRefused(smtplib.SMTPException):
    """The mail server refused a message for good. It carries the SMTP codes only: smtplib's own
    errors quote the server's answer and the recipients, which would put the person's address in
    the worker's log."""

    def __init__(self, what: str, codes: list[int]) -> None:
        self.codes = codes
        super().__init__(f"the mail server refused the {what} (SMTP {', '.join(map(str, codes))})")


def _send(message: EmailMessage) -> None:
    try:
        message.send()
    except smtplib.SMTPRecipientsRefused as exc:
        codes = sorted({code for code, _answer in exc.recipients.values()})
        raise MailRefused("recipient", codes) from None
    except (smtplib.SMTPDataError, smtplib.SMTPSenderRefused) as exc:
        raise MailRefused("message", [exc.smtp_code]) from None


# A worker sends one email per task, and opening a connection to the mail server for each
# (connect, greeting, EHLO, QUIT) cost more than the message. The connection is kept open for the
# next message, within limits that stay under what mail servers allow an idle or busy client.
KEEP_OPEN_SECONDS = 10
KEEP_OPEN_MESSAGES = 100


@dataclass
class _Kept:
    server: tuple
    backend: smtp.EmailBackend
    last_used: float
    sent: int = 0


_kept = threading.local()


def _close_quietly(backend) -> None:
    # Closing a connection the server dropped or broke: nothing is left to do.
    with contextlib.suppress(smtplib.SMTPException, OSError):
        backend.close()


def _send_kept(message: EmailMessage) -> None:
    """Send over this thread's open SMTP connection (opening it if needed). A kept connection the
    server has closed meanwhile is replaced and the message sent once more on the new one: it was
    not accepted on the old (421 or a dropped connection comes before the server takes it)."""
    backend = get_connection(timeout=settings.EMAIL_TIMEOUT)
    if not isinstance(backend, smtp.EmailBackend):
        message.connection = backend
        _send(message)
        return
    server = (type(backend), backend.host, backend.port, backend.username, backend.use_tls,
              backend.use_ssl)  # fmt: skip
    kept: _Kept | None = getattr(_kept, "connection", None)
    if kept is not None and (
        kept.server != server
        or time.monotonic() - kept.last_used > KEEP_OPEN_SECONDS
        or kept.sent >= KEEP_OPEN_MESSAGES
    ):
        _close_quietly(kept.backend)
        kept = _kept.connection = None
    reused = kept is not None
    if kept is None:
        backend.open()
        kept = _kept.connection = _Kept(server=server, backend=backend, last_used=time.monotonic())
    message.connection = kept.backend
    try:
        _send(message)
    except (smtplib.SMTPServerDisconnected, MailRefused) as exc:
        _close_quietly(kept.backend)
        _kept.connection = None
        dropped = isinstance(exc, smtplib.SMTPServerDisconnected) or exc.codes == [421]
        if reused and dropped:
            _send_kept(message)
            return
        raise
    except Exception:
        _close_quietly(kept.backend)
        _kept.connection = None
        raise
    kept.sent += 1
    kept.last_used = time.monotonic()


def send_to_subject(request: DataRequest, *, template: str, context: dict) -> None:
    """Render templates/emails/<template>[_subject].txt in the person's language and send it."""
    if not request.email:
        return  # Identity purged: nobody to write to.
    with translation.override(request.language):
        base = {
            "request": request,
            "status_url": request.status_url(),
            "status_sentence": describe_status_for_subject(request),
            "organisation": settings.PORTAL_ORGANISATION_NAME,
            "authority": settings.PORTAL_SUPERVISORY_AUTHORITY,
        }
        base.update(context)
        subject = render_to_string(f"emails/{template}_subject.txt", base).strip()
        body = render_to_string(f"emails/{template}.txt", base)
    _send_kept(
        EmailMessage(
            subject=" ".join(subject.split()),
            body=body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[request.email],
        )
    )


def send_to_staff(
    address: str, *, language: str, template: str, context: dict, connection=None
) -> None:
    """Render templates/emails/<template>[_subject].txt in the staff member's language and send
    it to them. Staff mail carries references and counts, never a person's identity."""
    with translation.override(language):
        base = {"organisation": settings.PORTAL_ORGANISATION_NAME, **context}
        subject = render_to_string(f"emails/{template}_subject.txt", base).strip()
        body = render_to_string(f"emails/{template}.txt", base)
    _send(
        EmailMessage(
            subject=" ".join(subject.split()),
            body=body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[address],
            connection=connection or get_connection(timeout=settings.EMAIL_TIMEOUT),
        )
    )


def send_verification(request: DataRequest, issued: IssuedSecrets) -> None:
    link_path = reverse("request-verify-link", args=[request.reference, issued.link_token])
    send_to_subject(
        request,
        template="verification",
        context={
            "code": issued.code,
            "link": f"{settings.PORTAL_BASE_URL}{link_path}",
            "ttl_hours": int(settings.PORTAL_VERIFICATION_TTL.total_seconds() // 3600),
        },
    )


def send_update(request: DataRequest, event: str) -> None:
    """A change the person must hear of: rejected, extended, information asked, completed."""
    send_to_subject(request, template=f"update_{event}", context={})
