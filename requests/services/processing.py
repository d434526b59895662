"""Carrying out approved requests: starting their jobs, running one, and moving the request on.

Each job kind has an executor (what a job does in its store) and a finaliser (what happens once
every store is done: the access package, the erasure's verification sweep and certificate).

Jobs are written only by `requests.services.jobs` (the state machine); what holds a job back
(the same person's access package, the order between stores) is `requests.services.job_holds`.
`request_advance` releases held jobs once nothing holds them, and finalises the request once
every job is done; the reconciler's periodic advance of settled requests makes sure it runs.
"""

from __future__ import annotations

import logging

from django.db import transaction

from requests.engine.store import PermanentStoreError, StoreError, TransientStoreError
from requests.models import DataRequest, JobState
from requests.models.jobs import OPEN_JOB_STATES
from requests.redact import describe, frames
from requests.services import access
from requests.services import jobs as job_service
from requests.services.erasure.certificate import erasure_finalise
from requests.services.erasure.run import erasure_execute
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
    Kind.ERASURE: erasure_execute,
}
FINALISERS: dict[str, Finaliser] = {
    Kind.ACCESS: access.access_finalise,
    Kind.ERASURE: erasure_finalise,
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
        # Never the message (a driver's text can quote personal data): its kind, length, keyed
        # hash, and where it was raised.
        log.error("job %s failed with an unexpected %s\n%s", job.pk, describe(exc), frames(exc))
        job_service.job_fail(job=job, reason=f"internal error ({type(exc).__name__})")
    else:
        job_service.job_finish(
            job=job, counts=outcome.counts, waiting_reason=outcome.waiting_reason
        )


def request_start(*, request: DataRequest) -> None:
    """Called on approval: create the jobs (held or queued), or move on at once when no store is
    connected."""
    job_service.jobs_start(request=request)


def request_advance(*, request_id: int) -> DataRequest | None:
    """Move a processing request on once every job is settled. Idempotent."""
    with transaction.atomic():
        request = DataRequest.objects.select_for_update().filter(pk=request_id).first()
        if request is None or request.status != Status.PROCESSING:
            return None
        if job_service.jobs_release(request=request):
            return request
        states = list(request.jobs.values_list("state", flat=True))
        if OPEN_JOB_STATES.intersection(states):
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
