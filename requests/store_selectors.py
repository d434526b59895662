"""Reads for the stores pages: each live store with its health, and a store's history.

Health is what a DPO needs to trust a store before approving work in it: the last connection
check (kept on the store by `store_health.store_check`) and the latest job that failed in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Max
from django.db.models.functions import Coalesce

from requests.models import AuditEvent, ConnectedStore, Job
from requests.models.jobs import JobState
from requests.services.stores import live_stores

# A store's history page shows this many events, newest first; the audit trail keeps them all.
HISTORY_LIMIT = 200


@dataclass(frozen=True)
class StoreRow:
    store: ConnectedStore
    failed_jobs: int
    last_failure_at: datetime | None


def stores_with_health() -> list[StoreRow]:
    failures = {
        row["store"]: row
        for row in Job.objects.filter(state=JobState.FAILED)
        .order_by()
        .values("store")
        .annotate(count=Count("pk"), last=Max(Coalesce("finished_at", "updated_at")))
    }
    return [
        StoreRow(
            store=store,
            failed_jobs=failures.get(store.pk, {}).get("count", 0),
            last_failure_at=failures.get(store.pk, {}).get("last"),
        )
        for store in live_stores().order_by("name")
    ]


def store_last_failure(store: ConnectedStore) -> datetime | None:
    return Job.objects.filter(store=store, state=JobState.FAILED).aggregate(
        last=Max(Coalesce("finished_at", "updated_at"))
    )["last"]


def store_history(store: ConnectedStore) -> list[AuditEvent]:
    """The audit events about this store (added, map saved, enabled, disabled, deleted), newest
    first. Events name a store by its name in their details, never by its URL."""
    return list(
        AuditEvent.objects.filter(action__startswith="store.", details__store=store.name).order_by(
            "-id"
        )[:HISTORY_LIMIT]
    )
