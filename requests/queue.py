"""Reading the staff queue: filters, search, sorting and counts per state.

Search never reads plaintext identity: an email address typed by staff is normalised and turned
into the same keyed hash the request keeps (`subject_key`), and compared with that. Anything else
typed is compared with references, exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from django.conf import settings
from django.db.models import (
    Count,
    DateTimeField,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce

from requests.identity import IdentityError, clean_intake_identity
from requests.models import DataRequest
from requests.services.lifecycle import subject_key_for
from requests.states import TERMINAL, Kind, Status

OPEN = "open"
ALL = "all"
OVERDUE = "overdue"
DUE_THIS_WEEK = "week"

# Sort keys offered as column headers; each is a stable order (ties broken by reference).
SORTS = {
    "due": (F("due_on").asc(nulls_last=True), "received_at", "reference"),
    "-due": (F("due_on").desc(nulls_last=True), "-received_at", "reference"),
    "received": ("received_at", "reference"),
    "-received": ("-received_at", "reference"),
    "kind": ("kind", F("due_on").asc(nulls_last=True), "reference"),
    "-kind": ("-kind", F("due_on").asc(nulls_last=True), "reference"),
    "status": ("status", F("due_on").asc(nulls_last=True), "reference"),
    "-status": ("-status", F("due_on").asc(nulls_last=True), "reference"),
    "reference": ("reference",),
    "-reference": ("-reference",),
}
DEFAULT_SORT = "due"
OPEN_STATUSES = tuple(status for status in Status.values if status not in TERMINAL)


@dataclass(frozen=True)
class QueueFilters:
    """What the queue shows. `status` is a state, `open` (the default) or `all`."""

    status: str = OPEN
    kind: str = ""
    due: str = ""
    flagged: bool = False
    mine: bool = False  # assigned to the staff member looking
    q: str = ""
    sort: str = DEFAULT_SORT


class SearchError(ValueError):
    """Search text that cannot be searched for (an email address that is not one)."""


def week_end(today: date) -> date:
    """The Sunday closing today's week (weeks run Monday to Sunday, as in ISO 8601)."""
    return today + timedelta(days=6 - today.weekday())


def with_history(queryset: QuerySet[DataRequest]) -> QuerySet[DataRequest]:
    """Annotate each request with `earlier_same_kind`: the same person's requests of the same
    kind in the year before it (Art. 12(5)), the count `subject_history` gives one request."""
    year_before = ExpressionWrapper(
        OuterRef("received_at") - timedelta(days=365), output_field=DateTimeField()
    )
    earlier = (
        DataRequest.objects.exclude(subject_key="")
        .filter(
            subject_key=OuterRef("subject_key"),
            kind=OuterRef("kind"),
            received_at__lt=OuterRef("received_at"),
            received_at__gte=year_before,
        )
        .values("subject_key")
        .annotate(count=Count("pk"))
        .values("count")
    )
    return queryset.annotate(
        earlier_same_kind=Coalesce(Subquery(earlier, output_field=IntegerField()), Value(0))
    )


def flagged_threshold() -> int:
    """Earlier same-kind requests from which a request is flagged as possibly excessive."""
    return settings.PORTAL_EXCESSIVE_REQUESTS_PER_YEAR - 1


def _search(queryset: QuerySet[DataRequest], text: str) -> QuerySet[DataRequest]:
    if "@" in text:
        try:
            email = clean_intake_identity({"email": text})["email"]
        except IdentityError as exc:
            raise SearchError(exc.message) from None
        return queryset.filter(subject_key=subject_key_for(email))
    return queryset.filter(reference=text)


def queue_requests(filters: QueueFilters, *, today: date, user=None) -> QuerySet[DataRequest]:
    """The requests the filters select, in the chosen order, each with `earlier_same_kind`.
    `user` is who looks: the one `mine` means."""
    queryset = with_history(DataRequest.objects.select_related("assigned_to"))
    text = filters.q.strip()
    if text:
        queryset = _search(queryset, text)
    # A search looks in every state unless one is chosen: the request asked about may be closed.
    if filters.status == OPEN and not text:
        queryset = queryset.filter(status__in=OPEN_STATUSES)
    elif filters.status in Status.values:
        queryset = queryset.filter(status=filters.status)
    if filters.kind in Kind.values:
        queryset = queryset.filter(kind=filters.kind)
    if filters.due == OVERDUE:
        queryset = queryset.filter(status__in=OPEN_STATUSES, due_on__lt=today)
    elif filters.due == DUE_THIS_WEEK:
        queryset = queryset.filter(
            status__in=OPEN_STATUSES, due_on__gte=today, due_on__lte=week_end(today)
        )
    if filters.flagged:
        queryset = queryset.filter(earlier_same_kind__gte=flagged_threshold())
    if filters.mine:
        queryset = queryset.filter(assigned_to=user) if user is not None else queryset.none()
    return queryset.order_by(*SORTS.get(filters.sort, SORTS[DEFAULT_SORT]))


def queue_counts() -> dict[str, int]:
    """Requests per state, every state present (zero when none), plus `open` and `all`."""
    counts = dict.fromkeys(Status.values, 0)
    counts.update(
        DataRequest.objects.order_by()
        .values_list("status")
        .annotate(count=Count("pk"))
        .values_list("status", "count")
    )
    counts[OPEN] = sum(counts[status] for status in OPEN_STATUSES)
    counts[ALL] = sum(counts[status] for status in Status.values)
    return counts
