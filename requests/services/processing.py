"""Carrying out approved requests: starting their jobs, running one, and moving the request on.

Each job kind has an executor (what a job does in its store) and a finaliser (what happens once
every store is done: the access package, the erasure's verification sweep and certificate).

Jobs are written only by `requests.services.jobs` (the state machine); what holds a job back
(the same person's access package, the order between stores) is `requests.services.job_holds`.
`request_advance` releases held jobs once nothing holds them, and finalises the request once
every job is done; the reconciler's periodic advance of settled requests makes sure it runs.

A job on the shared queue moves its request on itself, in the same task, right after its result
is committed (no second trip through the broker: that hop and the task's overhead were a third of
a small erasure's time). The result is committed first and the advance takes its own locks, so
the database stays the source of truth: a worker that dies between the two leaves a settled job,
and the redelivered message (tasks are acknowledged late) or the reconciler moves the request on.
A job on a site's queue (`ConnectedStore.queue`) hands the advance to the shared queue instead:
the finaliser belongs to the central workers.
"""

from __future__ import annotations

import logging

from django.db import transaction

from requests.engine.store import PermanentStoreError, StoreError, TransientStoreError
from requests.models import DataRequest, Job, JobState
from requests.models.jobs import OPEN_JOB_STATES
from requests.redact import describe, frames
from requests.services import access, job_claims
from requests.services import jobs as job_service
from requests.services.erasure.certificate import erasure_finalise
from requests.services.erasure.run import erasure_execute
from requests.services.errors import ServiceError
from requests.services.jobs import Executor, Finaliser
from requests.services.lifecycle import request_complete, request_flag_attention
from requests.services.store_connections import one_store_list
from requests.states import Kind, Status

log = logging.getLogger(__name__)

# What a job of each kind does in its store, and what happens once every store is done (the
# access package; the erasure's verification sweep and certificate). Declared here, in one place,
# rather than registered by importing the kinds' modules.
EXECUTORS: dict[str, Executor] = {
    Kind.ACCESS: access.access_execute,
    Kind.ERASURE: erasure_execute,
}
FINALISERS: dict[str, Finaliser] = {
    Kind.ACCESS: access.access_finalise,
    Kind.ERASURE: erasure_finalise,
}


def _executor(kind: str) -> Executor | None:
    return EXECUTORS.get(kind)


def job_execute(*, job_id: int, request_id: int | None = None) -> None:
    """Claim and run one job; every outcome is written back to the job row. A job on the shared
    queue then moves its request on (see the module's docstring). `request_id`: the job's
    request, as its message names it (messages queued before it did look it up). The claim, the
    run and the request's sweep read the enabled stores once."""
    with one_store_list():
        job = job_claims.job_claim(job_id=job_id, request_id=request_id)
        if job is not None:
            _run(job)
            return
    # A second delivery of a job that finished: its first worker may have stopped between the
    # result and the advance. Moving the request on again is harmless.
    settled = job_claims.job_settled_request_id(job_id=job_id)
    if settled is not None:
        request_advance(request_id=settled)


def _run(job: Job) -> None:
    """Run a claimed job and record its outcome (and move the request on, on the shared queue)."""
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
        # Never the message (a driver's text can quote personal data): its kind, length, keyed
        # hash, and where it was raised.
        log.error("job %s failed with an unexpected %s\n%s", job.pk, describe(exc), frames(exc))
        job_service.job_fail(job=job, reason=f"internal error ({type(exc).__name__})")
    else:
        if job.store.queue:  # a site's worker: the shared queue's workers finalise
            job_service.job_finish(
                job=job, counts=outcome.counts, waiting_reason=outcome.waiting_reason
            )
            return
        # The result and the first step of the advance in one transaction, under the request's
        # lock that the result takes anyway.
        with transaction.atomic():
            if not job_service.job_finish(
                job=job,
                counts=outcome.counts,
                waiting_reason=outcome.waiting_reason,
                queue_advance=False,
            ):
                return
            request = job.request
            states = _ready(request) if request.status == Status.PROCESSING else None
        if states is not None:
            _finalise(request, states)


def request_start(*, request: DataRequest, locked: bool = False, first: bool = False) -> None:
    """Called on approval: create the jobs (held or queued), or move on at once when no store is
    connected. `locked`, `first`: as for `jobs_start`."""
    job_service.jobs_start(request=request, locked=locked, first=first)


def request_advance(*, request_id: int) -> DataRequest | None:
    """Move a processing request on once every job is settled. Idempotent."""
    with transaction.atomic():
        request = DataRequest.objects.select_for_update().filter(pk=request_id).first()
        if request is None or request.status != Status.PROCESSING:
            return None
        states = _ready(request)
    if states is None:
        return request
    with one_store_list():  # the sweep's connectors and its list of stores it cannot search
        return _finalise(request, states)


def _ready(request: DataRequest) -> list[str] | None:
    """With the request locked: release the held jobs nothing holds any more, flag a failed job
    for staff; the jobs' states when every job is done (time to finalise), else None."""
    states = list(request.jobs.values_list("state", flat=True))
    if JobState.HELD in states and job_service.jobs_release(request=request):
        return None
    if OPEN_JOB_STATES.intersection(states):
        return None
    if JobState.FAILED in states:
        request_flag_attention(request=request, reason="a store job failed")
        return None
    return states


def _finalise(request: DataRequest, states: list[str]) -> DataRequest:
    """Run the finaliser (outside any transaction: a sweep of every store, a package), then
    complete the request, writing what the finaliser left for the completion's transaction (the
    certificate) in the same commit."""
    finaliser = FINALISERS.get(request.kind)
    try:
        outcome = finaliser(request) if finaliser else {}
    except ServiceError as exc:
        with transaction.atomic():
            locked = DataRequest.objects.select_for_update().get(pk=request.pk)
            if locked.status != Status.PROCESSING:
                return locked
            return request_flag_attention(request=locked, reason=exc.message)
    with transaction.atomic():
        locked = DataRequest.objects.select_for_update().get(pk=request.pk)
        if locked.status != Status.PROCESSING:
            return locked
        details = outcome(locked) if callable(outcome) else outcome
        # The lock order stays request, then audit head: the completion writes under this lock.
        return request_complete(
            request=locked, details={"stores": len(states), **details}, locked=True
        )
