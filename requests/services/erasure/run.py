"""Execution of one store's erasure job: the person's records erased in the job's store (found
through every store), renewing the job's lease between the engine's batches."""

from __future__ import annotations

import json
import time
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from requests.assurance import searchable_identity
from requests.connectors.registry import connector_class

# The engine is reached through its module, at call time, so that tests can stand in for
# `erase_person` and `find_remaining` on `requests.engine.erasure`.
from requests.engine import erasure as erasure_engine
from requests.engine.store import Connector, PermanentStoreError
from requests.models import DataRequest, Job
from requests.services import job_claims
from requests.services.erasure.recipients import manual_task_reason, system_name
from requests.services.errors import ServiceError
from requests.services.jobs import JobOutcome
from requests.services.store_connections import kept_connectors
from requests.states import Kind

# Counts a store's erasure reports per collection, in the order the certificate shows them.
COUNT_NAMES = ("deleted", "masked", "nullified", "held", "kept")


class LeaseLost(PermanentStoreError):
    """The job's lease ran out and another worker took the job; this run stops (and rolls back)."""


class JobLease:
    """The engine's `progress` callback: renews the job's lease between batches, at most every
    quarter of the lease, and stops the run when another worker has taken the job."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.every = settings.PORTAL_JOB_LEASE.total_seconds() / 4
        self.renewed = time.monotonic()

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        now = time.monotonic()
        if now - self.renewed < self.every:
            return
        if not job_claims.job_renew_lease(job=self.job):
            raise LeaseLost("the job's lease ran out and another worker took it over")
        self.renewed = now


def erasure_identity(request: DataRequest) -> dict[str, str]:
    """The identifiers an erasure searches by: only what the person proved (or staff confirmed),
    since erasing by a typed phone would erase whoever holds it (see
    `requests.assurance.searchable_identity`). Raises ServiceError once they were purged."""
    identity = searchable_identity(request=request)
    if not identity:
        raise ServiceError("This request's identity data were purged; nothing can be erased.")
    return identity


def erase_in_store(
    connectors: dict[str, Connector],
    identity: dict,
    *,
    store: str,
    progress=None,
    request_id: str | None = None,
) -> Any:
    """Erase the person's records in one store through the engine, with the portal's hash key
    and phone region; the engine's result (its status and counts per collection)."""
    return erasure_engine.erase_person(
        connectors,
        identity,
        store=store,
        hash_key=settings.PORTAL_HASH_KEY.encode(),
        phone_region=settings.PORTAL_DEFAULT_PHONE_REGION,
        progress=progress,
        request_id=request_id,
    )


def result_collections(counts: dict) -> dict[str, dict]:
    """The per-collection counts of a store's erasure result, whatever keys surround them."""
    collections = counts.get("collections")
    if isinstance(collections, dict):
        return collections
    return {
        name: value
        for name, value in counts.items()
        if isinstance(value, dict) and any(k in value for k in (*COUNT_NAMES, "found"))
    }


def erasure_execute(job: Job) -> JobOutcome:
    """Erase the person's records in the job's store (found through every store)."""
    if connector_class(job.store.kind).is_manual:
        return JobOutcome(
            counts={"task": {"system": system_name(job.store), "action": "erase by hand"}},
            waiting_reason=manual_task_reason(job.store, kind=Kind.ERASURE),
        )
    identity = erasure_identity(job.request)
    with kept_connectors(extra=job.store) as connectors:
        result = erase_in_store(
            connectors,
            identity,
            store=job.store.name,
            progress=JobLease(job),
            # Webhook calls name the portal request (the service's erasure is idempotent by it).
            request_id=job.request.reference,
        )
    counts = json.loads(json.dumps(result.to_json(), cls=DjangoJSONEncoder))
    if result.status == erasure_engine.MANUAL:
        return JobOutcome(
            counts=counts, waiting_reason=manual_task_reason(job.store, kind=Kind.ERASURE)
        )
    if result.status == erasure_engine.PENDING:
        counts["downstream"] = {
            "jobs": list(result.jobs),
            "status": "pending",
            "since": timezone.now().isoformat(),
        }
        return JobOutcome(
            counts=counts,
            waiting_reason=(
                f"Sent to {job.store.name}; the service is still erasing (it answered pending). "
                "The portal asks it how the erasure stands until it is done."
            ),
        )
    return JobOutcome(counts=counts)
