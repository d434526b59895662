"""Staff's hands on jobs: retrying a request's failed jobs, confirming a manual store's job.

Both move jobs through the state machine of `requests.services.jobs` (its moves, holds and
queueing), under the request's lock first as every path there does.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from requests.connectors.registry import connector_class
from requests.models import DataRequest, Job, JobState
from requests.models.jobs import OPEN_JOB_STATES
from requests.services import job_holds
from requests.services.audit import SYSTEM, audit_record
from requests.services.errors import NotFound, ServiceError, TransitionNotAllowed
from requests.services.jobs import (
    job_audit,
    job_enqueue,
    job_move,
    jobs_schedule,
    lock_request,
    request_advance_on_commit,
)
from requests.services.lifecycle import request_resume
from requests.states import Status


@transaction.atomic
def request_retry_failed_jobs(*, request: DataRequest, actor: str) -> DataRequest:
    """Staff retry: failed jobs start again, through the same holds as at the start (so stores
    keep their order), and the request goes back to processing."""
    locked = lock_request(request.pk)
    if locked.status != Status.NEEDS_ATTENTION:
        raise TransitionNotAllowed("Only a request that needs attention can be retried.")
    failed = list(Job.objects.filter(request=locked, state=JobState.FAILED).select_related("store"))
    if not failed:
        if locked.jobs.filter(state__in=OPEN_JOB_STATES).exists():
            raise ServiceError(
                "No failed job to retry; the request waits for jobs still open.",
                code="nothing_to_retry",
            )
        # Every job is done: what failed came after them (building the package, the sweep).
        # Going back to processing runs that last step again.
        updated = request_resume(
            request=locked, actor=actor, action="request.retried", details={"jobs": 0}
        )
        request_advance_on_commit(updated.pk)
        return updated
    updated = request_resume(
        request=locked, actor=actor, action="request.retried", details={"jobs": len(failed)}
    )
    # A restarted job has all its claims again; its earlier counts are kept until it runs.
    Job.objects.filter(pk__in=[job.pk for job in failed]).update(attempts=0)
    for job in failed:
        job.attempts = 0
    _, held = jobs_schedule(updated, failed, actor=actor)
    # Jobs queued while the request needed staff found it so and were not claimed: send again.
    restarted = {job.pk for job in failed}
    for queued in Job.objects.filter(request=updated, state=JobState.QUEUED).select_related(
        "store"
    ):
        if queued.pk not in restarted:
            job_enqueue(queued)
    if held:
        audit_record(
            action="request.erasure_ordered",
            actor=SYSTEM,
            request=updated,
            details={"order": job_holds.erasure_order(updated), "retry": True},
        )
    return updated


# A staff note on a manual job: what was done in the system (it may name the person).
MAX_NOTE_LENGTH = 5000


@transaction.atomic
def job_confirm_manual(*, request: DataRequest, store_name: str, actor: str, note: str) -> Job:
    """Staff confirm a manual store's job by hand: an access copy sent, an erasure done.

    The note says what was done; it is kept on the job for staff (and shown to the person in the
    access report), never written to the audit trail or an erasure certificate (it may name the
    person). A request that needs attention only because a task was overdue goes back to
    processing once it is confirmed (it stays for staff while a job has failed)."""
    note = (note or "").strip()
    if not note:
        raise ServiceError("Say what was done in this system.", field="note")
    if len(note) > MAX_NOTE_LENGTH:
        raise ServiceError(f"At most {MAX_NOTE_LENGTH} characters.", field="note")
    locked = lock_request(request.pk)
    job = (
        Job.objects.select_for_update()
        .select_related("store", "request")
        .filter(request=locked, store__name=store_name)
        .first()
    )
    if job is None:
        raise NotFound("This request has no job for a store of that name.")
    if not connector_class(job.store.kind).is_manual:
        raise ServiceError(
            "Only jobs of manual stores are confirmed by hand; this store is searched by the "
            "portal.",
            code="not_manual",
        )
    if locked.status not in (Status.PROCESSING, Status.NEEDS_ATTENTION):
        raise TransitionNotAllowed(f"The request is {locked.status}, not processing.")
    if job.state != JobState.WAITING:
        raise TransitionNotAllowed(f"This job is {job.state}, not waiting for confirmation.")
    now = timezone.now()
    counts = {**(job.counts or {}), "confirmed_by": actor, "confirmed_at": now.isoformat()}
    if not job_move(job, JobState.DONE, counts={**counts, "note": note}, error="", finished_at=now):
        raise TransitionNotAllowed("This job changed meanwhile; look again.")
    job_audit(job, "job.confirmed", actor=actor)
    if (
        locked.status == Status.NEEDS_ATTENTION
        and not Job.objects.filter(request=locked, state=JobState.FAILED).exists()
    ):
        request_resume(
            request=locked,
            actor=actor,
            action="request.resumed",
            details={"confirmed": job.store.name},
        )
        for queued in Job.objects.filter(request=locked, state=JobState.QUEUED).select_related(
            "store"
        ):
            job_enqueue(queued)
    request_advance_on_commit(locked.pk)
    return job
