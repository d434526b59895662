"""Carrying out approved requests: starting their jobs, running one, and moving the request on.

Each job kind has an executor (what a job does in its store) and a finaliser (what happens once
every store is done: the access package, the erasure's verification sweep and certificate).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from django.db import transaction

from requests.connectors.base import PermanentStoreError, StoreError, TransientStoreError
from requests.models import DataRequest, Job, JobState
from requests.services import jobs as job_service
from requests.services.errors import ServiceError
from requests.services.lifecycle import request_complete, request_flag_attention
from requests.states import Status

log = logging.getLogger(__name__)


@dataclass
class JobOutcome:
    """What an executor reports: counts per collection, and why the job waits, if it does."""

    counts: dict = field(default_factory=dict)
    waiting_reason: str = ""


Executor = Callable[[Job], JobOutcome]
# Returns details for the completion event, or raises ServiceError to flag the request for staff.
Finaliser = Callable[[DataRequest], dict]

EXECUTORS: dict[str, Executor] = {}
FINALISERS: dict[str, Finaliser] = {}


def register_executor(kind: str):
    def decorator(function: Executor) -> Executor:
        EXECUTORS[kind] = function
        return function

    return decorator


def register_finaliser(kind: str):
    def decorator(function: Finaliser) -> Finaliser:
        FINALISERS[kind] = function
        return function

    return decorator


def _load_kinds() -> None:
    # The modules register their executors and finalisers when imported.
    from requests.services import access, erasure  # noqa: F401


def job_execute(*, job_id: int) -> None:
    """Claim and run one job; every outcome is written back to the job row."""
    job = job_service.job_claim(job_id=job_id)
    if job is None:
        return
    _load_kinds()
    executor = EXECUTORS.get(job.kind)
    try:
        if executor is None:
            raise PermanentStoreError(f"no executor for {job.kind} jobs")
        outcome = executor(job)
    except TransientStoreError as exc:
        job_service.job_retry_later(job=job, reason=str(exc))
    except (StoreError, ServiceError) as exc:
        job_service.job_fail(job=job, reason=str(exc))
    except Exception as exc:
        # Log the kind of error only: messages from drivers can quote personal data.
        log.exception("job %s failed with an unexpected %s", job.pk, type(exc).__name__)
        job_service.job_fail(job=job, reason=f"internal error ({type(exc).__name__})")
    else:
        job_service.job_finish(
            job=job, counts=outcome.counts, waiting_reason=outcome.waiting_reason
        )


@transaction.atomic
def request_start(*, request: DataRequest) -> None:
    """Called on approval: create the jobs, or move on at once when no store is connected."""
    from requests import tasks

    created = job_service.jobs_create_for_request(request=request)
    if not created and not request.jobs.exists():
        transaction.on_commit(partial(tasks.request_process.delay, request.pk))


def request_advance(*, request_id: int) -> DataRequest | None:
    """Move a processing request on once every job is settled. Idempotent."""
    with transaction.atomic():
        request = DataRequest.objects.select_for_update().filter(pk=request_id).first()
        if request is None or request.status != Status.PROCESSING:
            return None
        states = set(request.jobs.values_list("state", flat=True))
        if states & {JobState.QUEUED, JobState.RUNNING, JobState.WAITING}:
            return request
        if JobState.FAILED in states:
            return request_flag_attention(request=request, reason="a store job failed")
    _load_kinds()
    finaliser = FINALISERS.get(request.kind)
    try:
        details = finaliser(request) if finaliser else {}
    except ServiceError as exc:
        with transaction.atomic():
            locked = DataRequest.objects.select_for_update().get(pk=request_id)
            if locked.status != Status.PROCESSING:
                return locked
            return request_flag_attention(request=locked, reason=exc.message)
    with transaction.atomic():
        locked = DataRequest.objects.select_for_update().get(pk=request_id)
        if locked.status != Status.PROCESSING:
            return locked
        return request_complete(request=locked, details={"stores": len(states), **details})
