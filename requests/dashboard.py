"""Reading the dashboard's figures: open work, time to close, requests per month, store failures.

Everything here is counts and durations; nothing reads a person's identity.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db.models import Count
from django.db.models.functions import TruncMonth
from django.utils import timezone

from requests import clock
from requests.models import AuditEvent, ConnectedStore, DataRequest, Job
from requests.models.jobs import JobState
from requests.queue import OPEN_STATUSES, week_end
from requests.states import Kind, Status

MONTHS_SHOWN = 12
# Only answered requests count towards the time to close; expired and withdrawn ones were never
# answered, so they would flatter the figure.
ANSWERED = (Status.COMPLETED, Status.REJECTED)
CLOSE_WINDOW_DAYS = 365
FAILURE_WINDOW_DAYS = 30


@dataclass(frozen=True)
class MonthCounts:
    month: date  # the first day of the month
    counts: dict[str, int]  # per kind

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def labelled(self) -> list[tuple[str, int]]:
        """(kind's label, count) in the order of Kind, for the table under the chart."""
        labels = dict(Kind.choices)
        return [(labels[kind], self.counts.get(kind, 0)) for kind in Kind.values]


@dataclass(frozen=True)
class StoreHealth:
    name: str
    kind: str
    enabled: bool
    failed_now: int
    failures_recent: int
    last_failure_at: datetime | None
    last_check_ok: bool | None
    last_checked_at: datetime | None


def open_by_state() -> list[tuple[str, str, int]]:
    """(state, label, count) for every open state, in the lifecycle's order."""
    counts = dict(
        DataRequest.objects.filter(status__in=OPEN_STATUSES)
        .order_by()
        .values_list("status")
        .annotate(count=Count("pk"))
        .values_list("status", "count")
    )
    labels = dict(Status.choices)
    return [(status, labels[status], counts.get(status, 0)) for status in OPEN_STATUSES]


def deadlines(*, today: date) -> dict[str, int]:
    open_requests = DataRequest.objects.filter(status__in=OPEN_STATUSES)
    return {
        "overdue": open_requests.filter(due_on__lt=today).count(),
        "due_this_week": open_requests.filter(
            due_on__gte=today, due_on__lte=week_end(today)
        ).count(),
    }


def median_days_to_close(*, now: datetime) -> tuple[float | None, int]:
    """The median days from receipt to answer over the last year, and how many answers."""
    durations = [
        (closed_at - received_at).total_seconds() / 86400
        for received_at, closed_at in DataRequest.objects.filter(
            status__in=ANSWERED,
            closed_at__gte=now - timedelta(days=CLOSE_WINDOW_DAYS),
        ).values_list("received_at", "closed_at")
    ]
    if not durations:
        return None, 0
    return round(statistics.median(durations), 1), len(durations)


def _month_start(day: date, months_back: int) -> date:
    index = day.year * 12 + day.month - 1 - months_back
    return date(index // 12, index % 12 + 1, 1)


def requests_per_month(*, today: date, months: int = MONTHS_SHOWN) -> list[MonthCounts]:
    """Requests received per month and kind, oldest month first, months without any included."""
    first = _month_start(today, months - 1)
    since = timezone.make_aware(datetime.combine(first, datetime.min.time()))
    rows = (
        DataRequest.objects.filter(received_at__gte=since)
        .annotate(month=TruncMonth("received_at"))
        .order_by()
        .values_list("month", "kind")
        .annotate(count=Count("pk"))
    )
    found: dict[tuple[date, str], int] = {}
    for month, kind, count in rows:
        day = timezone.localtime(month).date() if isinstance(month, datetime) else month
        found[(day.replace(day=1), kind)] = found.get((day.replace(day=1), kind), 0) + count
    return [
        MonthCounts(
            month=_month_start(today, back),
            counts={kind: found.get((_month_start(today, back), kind), 0) for kind in Kind.values},
        )
        for back in range(months - 1, -1, -1)
    ]


def store_health(*, now: datetime) -> list[StoreHealth]:
    """Per connected store: jobs failed now, failures in the last 30 days, the last check."""
    failed_now = Counter(
        dict(
            Job.objects.filter(state=JobState.FAILED)
            .order_by()
            .values_list("store__name")
            .annotate(count=Count("pk"))
            .values_list("store__name", "count")
        )
    )
    recent: Counter[str] = Counter()
    last_failure: dict[str, datetime] = {}
    events = AuditEvent.objects.filter(
        action="job.failed", created_at__gte=now - timedelta(days=FAILURE_WINDOW_DAYS)
    ).values_list("details", "created_at")
    for details, created_at in events:
        store = (details or {}).get("store", "")
        recent[store] += 1
        if store not in last_failure or created_at > last_failure[store]:
            last_failure[store] = created_at
    return [
        StoreHealth(
            name=store.name,
            kind=store.get_kind_display(),
            enabled=store.enabled,
            failed_now=failed_now[store.name],
            failures_recent=recent[store.name],
            last_failure_at=last_failure.get(store.name),
            last_check_ok=store.last_check_ok,
            last_checked_at=store.last_checked_at,
        )
        for store in ConnectedStore.objects.order_by("name")
    ]


def today_and_now() -> tuple[date, datetime]:
    return clock.today(), timezone.now()
