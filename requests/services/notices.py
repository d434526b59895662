"""Emails owed to the person about their request, sent at most once each.

`notice_owe` is called with the change the email tells of (same transaction) and queues the
send on commit. The task claims the notice before it sends (`notice_claim`), so a message the
broker delivers twice sends one email, and marks it sent after (`notice_mark_sent`). A mail server
that is down gives the claim back (`notice_release`) for the task's retry; a worker that dies
holding the claim lets it run out, and the redelivered message waits for that, then sends.
"""

from __future__ import annotations

import enum
from datetime import datetime

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from requests.models import DataRequest, SubjectNotice
from requests.queueing import enqueue


class Claim(enum.Enum):
    CLAIMED = "claimed"  # this task sends it
    SENT = "sent"  # already sent, or nothing to send: do nothing
    BUSY = "busy"  # another delivery holds it: look again once its claim runs out


def notice_owe(*, request: DataRequest, event: str) -> SubjectNotice:
    notice = SubjectNotice.objects.create(request=request, event=event)
    enqueue("notify_subject", request.pk, event, notice.pk)
    return notice


def notice_record(*, request_id: int, event: str) -> SubjectNotice:
    """A notice for a message queued before notices were recorded (sent as it is now)."""
    return SubjectNotice.objects.create(request_id=request_id, event=event)


def notice_claim(*, notice_id: int) -> tuple[Claim, datetime | None]:
    """Claim the notice for this delivery; with BUSY, when the other claim runs out."""
    now = timezone.now()
    claimed = SubjectNotice.objects.filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now),
        pk=notice_id,
        sent_at__isnull=True,
    ).update(claimed_until=now + settings.PORTAL_MAIL_SEND_LEASE)
    if claimed == 1:
        return Claim.CLAIMED, None
    notice = SubjectNotice.objects.filter(pk=notice_id).first()
    if notice is None or notice.sent_at is not None:
        return Claim.SENT, None
    return Claim.BUSY, notice.claimed_until


def notice_release(*, notice_id: int) -> None:
    SubjectNotice.objects.filter(pk=notice_id, sent_at__isnull=True).update(claimed_until=None)


def notice_mark_sent(*, notice_id: int) -> None:
    SubjectNotice.objects.filter(pk=notice_id).update(sent_at=timezone.now(), claimed_until=None)
