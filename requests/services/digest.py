"""The daily digest to DPOs: overdue requests, those due this week, those needing attention, and
how many wait for a decision. References and dates only, never a person's identity.

Sent once a day (Celery beat, PORTAL_DIGEST_HOUR); a second delivery of the same day's task
finds the day's audit event and sends nothing. A day with nothing to report sends nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation

from requests import clock
from requests.models import AuditEvent, DataRequest
from requests.permissions import DPO, access_manage_users
from requests.queue import OPEN_STATUSES, week_end
from requests.services.audit import SYSTEM, audit_record
from requests.states import Status

# Each list is cut at this length; the digest gives the full count and links to the queue.
LIST_LIMIT = 25


@dataclass
class DigestSection:
    title: str
    total: int = 0
    rows: list[dict] = field(default_factory=list)


@dataclass
class Digest:
    day: date
    overdue: DigestSection
    due_this_week: DigestSection
    needs_attention: DigestSection
    awaiting_decision: int

    @property
    def empty(self) -> bool:
        return not (
            self.overdue.total
            or self.due_this_week.total
            or self.needs_attention.total
            or self.awaiting_decision
        )


def _section(title: str, queryset) -> DigestSection:
    base = settings.PORTAL_BASE_URL
    rows = [
        {
            "reference": item.reference,
            "kind": item.get_kind_display(),
            "status": item.get_status_display(),
            "due_on": item.due_on,
            "url": f"{base}{reverse('staff-request', args=[item.reference])}",
        }
        for item in queryset.order_by("due_on", "received_at")[:LIST_LIMIT]
    ]
    return DigestSection(title=title, total=queryset.count(), rows=rows)


def digest_build(*, today: date) -> Digest:
    open_requests = DataRequest.objects.filter(status__in=OPEN_STATUSES)
    return Digest(
        day=today,
        overdue=_section("overdue", open_requests.filter(due_on__lt=today)),
        due_this_week=_section(
            "due_this_week", open_requests.filter(due_on__gte=today, due_on__lte=week_end(today))
        ),
        needs_attention=_section(
            "needs_attention", DataRequest.objects.filter(status=Status.NEEDS_ATTENTION)
        ),
        awaiting_decision=DataRequest.objects.filter(status=Status.IN_REVIEW).count(),
    )


def digest_recipients() -> list[str]:
    """The email addresses of active DPOs (the `dpo` group, and superusers)."""
    candidates = (
        get_user_model()
        .objects.filter(is_active=True, is_staff=True)
        .filter(Q(is_superuser=True) | Q(groups__name=DPO))
        .exclude(email="")
        .distinct()
        .order_by("username")
    )
    return [user.email for user in candidates if access_manage_users(user)]


@transaction.atomic
def staff_digest_send(*, today: date | None = None) -> int:
    """Send today's digest to every DPO with an email address; the number of messages sent."""
    if not settings.PORTAL_DIGEST_ENABLED:
        return 0
    today = today or clock.today()
    already = AuditEvent.objects.filter(action="digest.sent", details__day=today.isoformat())
    if already.exists():
        return 0
    digest = digest_build(today=today)
    recipients = digest_recipients()
    if digest.empty or not recipients:
        return 0
    context = {
        "digest": digest,
        "organisation": settings.PORTAL_ORGANISATION_NAME,
        "queue_url": f"{settings.PORTAL_BASE_URL}{reverse('staff-queue')}",
    }
    with translation.override(settings.LANGUAGE_CODE):
        subject = " ".join(render_to_string("emails/staff_digest_subject.txt", context).split())
        body = render_to_string("emails/staff_digest.txt", context)
    connection = get_connection(timeout=settings.EMAIL_TIMEOUT)
    messages = [
        EmailMessage(
            subject=subject,
            body=body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[address],
            connection=connection,
        )
        for address in recipients
    ]
    sent = connection.send_messages(messages) or 0
    audit_record(
        action="digest.sent",
        actor=SYSTEM,
        details={
            "day": today.isoformat(),
            "recipients": len(recipients),
            "overdue": digest.overdue.total,
            "due_this_week": digest.due_this_week.total,
            "needs_attention": digest.needs_attention.total,
            "awaiting_decision": digest.awaiting_decision,
        },
    )
    return sent
