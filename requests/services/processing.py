"""Carrying out approved requests: starting their jobs, running one, and moving the request on.

Each job kind has an executor (what a job does in its store) and a finaliser (what happens once
every store is done: the access package, the erasure's verification sweep and certificate).

Access before erasure: when a person asked for a copy of their data and also for its erasure, the
copy is made from the data before anything is erased. An erasure approved while the same person
(same `subject_key`) has a verified access request that is still open and has no package yet
starts with its jobs held: WAITING and never claimed (`attempts == 0`), with the reason shown to
staff. Nothing claims a waiting job and the reconciler does not queue it. Once that access
request's package is built (its finaliser calls `release_erasures_held_for`), or the access
request is closed without one (rejected, withdrawn), `request_advance` of the erasure queues the
held jobs; the reconciler's periodic advance of settled requests makes sure that happens.
"""

from __future__ import annotations

import logging

from django.db import transaction

from requests.connectors.base import PermanentStoreError, StoreError, TransientStoreError
from requests.models import DataRequest, Job, JobState
from requests.queueing import enqueue
from requests.services import access, erasure
from requests.services import jobs as job_service
from requests.services.audit import SYSTEM, audit_record
from requests.services.errors import ServiceError
from requests.services.jobs import Executor, Finaliser
from requests.services.lifecycle import request_complete, request_flag_attention
from requests.states import Kind, Status

log = logging.getLogger(__name__)

# What a job of each kind does in its store, and what happens once every store is done (the
# access package; the erasure's verification sweep and certificate). Declared here, in one place,
# rather than registered by importing the kinds' modules.
EXECUTORS: dict[str, Executor] = {
    Kind.ACCESS: access.access_execute,
    Kind.ERASURE: erasure.erasure_execute,
}
FINALISERS: dict[str, Finaliser] = {
    Kind.ACCESS: access.access_finalise,
    Kind.ERASURE: erasure.erasure_finalise,
}


def _executor(kind: str) -> Executor | None:
    return EXECUTORS.get(kind)


def job_execute(*, job_id: int) -> None:
    """Claim and run one job; every outcome is written back to the job row."""
    job = job_service.job_claim(job_id=job_id)
    if job is None:
        return
    executor = _executor(job.kind)
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


# Access requests that hold back the same person's erasure until their package exists: verified
# and not closed (one still awaiting verification may not be the person's, and could be filed
# only to delay an erasure).
ACCESS_FIRST_STATUSES = (
    Status.IN_REVIEW,
    Status.AWAITING_INFORMATION,
    Status.PROCESSING,
    Status.NEEDS_ATTENTION,
)
HELD_FOR_ACCESS = "Held until the access package of the same person's request {reference} is built."


def access_first(request: DataRequest) -> DataRequest | None:
    """The person's open access request whose package must exist before this erasure runs."""
    if request.kind != Kind.ERASURE or not request.subject_key:
        return None
    return (
        DataRequest.objects.filter(
            subject_key=request.subject_key,
            kind=Kind.ACCESS,
            status__in=ACCESS_FIRST_STATUSES,
            package__isnull=True,
        )
        .exclude(pk=request.pk)
        .order_by("received_at")
        .first()
    )


def _held_jobs(request: DataRequest):
    return Job.objects.filter(request=request, state=JobState.WAITING, attempts=0)


@transaction.atomic
def request_start(*, request: DataRequest) -> None:
    """Called on approval: create the jobs, or move on at once when no store is connected."""
    created = job_service.jobs_create_for_request(request=request)
    access = access_first(request)
    if access is not None and created:
        # Their queued messages find the jobs waiting and do nothing.
        Job.objects.filter(pk__in=[job.pk for job in created]).update(
            state=JobState.WAITING, error=HELD_FOR_ACCESS.format(reference=access.reference)
        )
        audit_record(
            action="request.held_for_access",
            actor=SYSTEM,
            request=request,
            details={"access_request": access.reference, "jobs": len(created)},
        )
    # Stores found through another store's records are erased before it (see erasure.py).
    erasure.erasure_order_hold(request=request, jobs=created)
    if not created and not request.jobs.exists():
        enqueue("request_process", request.pk)


def _release_held_jobs(request: DataRequest) -> int:
    """Queue an erasure's held jobs once nothing holds them. Runs with the request row locked."""
    held = list(_held_jobs(request).select_related("store"))
    if not held or access_first(request) is not None:
        return 0
    held = erasure.erasure_ready_jobs(request=request, held=held)
    if not held:
        return 0
    Job.objects.filter(pk__in=[job.pk for job in held], state=JobState.WAITING, attempts=0).update(
        state=JobState.QUEUED, error=""
    )
    audit_record(
        action="request.released_for_erasure",
        actor=SYSTEM,
        request=request,
        details={"jobs": len(held)},
    )
    for job in held:
        job.state = JobState.QUEUED
        job_service._enqueue_job(job)
    return len(held)


def request_advance(*, request_id: int) -> DataRequest | None:
    """Move a processing request on once every job is settled. Idempotent."""
    with transaction.atomic():
        request = DataRequest.objects.select_for_update().filter(pk=request_id).first()
        if request is None or request.status != Status.PROCESSING:
            return None
        if request.kind == Kind.ERASURE and _release_held_jobs(request):
            return request
        states = set(request.jobs.values_list("state", flat=True))
        if states & {JobState.QUEUED, JobState.RUNNING, JobState.WAITING}:
            return request
        if JobState.FAILED in states:
            return request_flag_attention(request=request, reason="a store job failed")
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
