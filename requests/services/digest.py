"""The daily digest to DPOs: overdue requests, those due this week, those needing attention,
manual tasks past their due date, and how many wait for a decision. References, kinds, states,
store names and dates only, never a person's identity.

Sent once a day (Celery beat, PORTAL_DIGEST_HOUR; off with PORTAL_DIGEST_ENABLED=false) to every
active DPO (the `dpo` group, and superusers) with an email address, each in their own language
(their staff profile's, else the portal's default). The day's `DigestClaim` row makes a second
delivery of the task, even a concurrent one, send nothing. A day with nothing to report sends
nothing (and claims nothing, so a later run that day sends if something became due).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import get_connection
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse

from requests import clock
from requests.emails import MailRefused, send_to_staff
from requests.models import DataRequest, DigestClaim, StaffProfile
from requests.permissions import DPO, access_manage_users
from requests.queue import OPEN_STATUSES, week_end
from requests.services.audit import SYSTEM, audit_record
from requests.services.erasure.recipients import staff_tasks
from requests.states import Kind, Status

logger = logging.getLogger(__name__)

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
    late_tasks: DigestSection
    awaiting_decision: int

    @property
    def empty(self) -> bool:
        return not (
            self.overdue.total
            or self.due_this_week.total
            or self.needs_attention.total
            or self.late_tasks.total
            or self.awaiting_decision
        )


def _section(title: str, queryset) -> DigestSection:
    base = settings.PORTAL_BASE_URL
    rows = [
        {
            "reference": item.reference,
            # Lazy labels: each recipient's copy is rendered in their language.
            "kind": Kind(item.kind).label,
            "status": Status(item.status).label,
            "due_on": item.due_on,
            "url": f"{base}{reverse('staff-request', args=[item.reference])}",
        }
        for item in queryset.order_by("due_on", "received_at")[:LIST_LIMIT]
    ]
    return DigestSection(title=title, total=queryset.count(), rows=rows)


def _late_tasks() -> DigestSection:
    """Manual tasks and recipients' erasures past their due date: the request, the store, when it
    was due (never the task's instructions, which staff wrote and may name someone)."""
    base = settings.PORTAL_BASE_URL
    total, tasks = staff_tasks(overdue=True, limit=LIST_LIMIT)
    rows = [
        {
            "reference": task["request"],
            "kind": Kind(task["kind"]).label,
            "status": Status(task["request_status"]).label,
            "store": task["store"],
            "manual": task["task"] == "confirm_by_hand",
            "due_on": task["due_on"],
            "url": f"{base}{reverse('staff-request', args=[task['request']])}",
        }
        for task in tasks
    ]
    return DigestSection(title="late_tasks", total=total, rows=rows)


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
        late_tasks=_late_tasks(),
        awaiting_decision=DataRequest.objects.filter(status=Status.IN_REVIEW).count(),
    )


def _language(user) -> str:
    try:
        language = user.staff_profile.language
    except StaffProfile.DoesNotExist:
        language = ""
    return language if language in dict(settings.LANGUAGES) else settings.LANGUAGE_CODE


def digest_recipients() -> list[tuple[str, str]]:
    """(address, language) of each active DPO (the `dpo` group, and superusers) with an email
    address."""
    candidates = (
        get_user_model()
        .objects.filter(is_active=True, is_staff=True)
        .filter(Q(is_superuser=True) | Q(groups__name=DPO))
        .exclude(email="")
        .select_related("staff_profile")
        .distinct()
        .order_by("username")
    )
    return [(user.email, _language(user)) for user in candidates if access_manage_users(user)]


@transaction.atomic
def staff_digest_send(*, today: date | None = None) -> int:
    """Send today's digest to every DPO with an email address; the number of messages sent."""
    if not settings.PORTAL_DIGEST_ENABLED:
        return 0
    today = today or clock.today()
    digest = digest_build(today=today)
    recipients = digest_recipients()
    if digest.empty or not recipients:
        return 0
    try:
        # The claim: a concurrent delivery waits here for this transaction and then finds the day
        # taken; if sending fails the claim rolls back with it and the day can be sent again.
        with transaction.atomic():
            DigestClaim.objects.create(day=today)
    except IntegrityError:
        return 0
    context = {
        "digest": digest,
        "queue_url": f"{settings.PORTAL_BASE_URL}{reverse('staff-queue')}",
    }
    connection = get_connection(timeout=settings.EMAIL_TIMEOUT)
    sent = refused = 0
    with connection:
        for address, language in recipients:
            try:
                send_to_staff(
                    address,
                    language=language,
                    template="staff_digest",
                    context=context,
                    connection=connection,
                )
            except MailRefused as exc:
                # One refused address must not keep the digest from the other DPOs.
                logger.warning("digest: %s", exc)
                refused += 1
            else:
                sent += 1
    audit_record(
        action="digest.sent",
        actor=SYSTEM,
        details={
            "day": today.isoformat(),
            "recipients": len(recipients),
            "sent": sent,
            "refused": refused,
            "overdue": digest.overdue.total,
            "due_this_week": digest.due_this_week.total,
            "needs_attention": digest.needs_attention.total,
            "late_tasks": digest.late_tasks.total,
            "awaiting_decision": digest.awaiting_decision,
        },
    )
    return sent
