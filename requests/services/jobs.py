"""Jobs: the work of an approved request in each connected store, as a state machine.

This module owns the moves of a job: each is checked against `JOB_TRANSITIONS`
(`requests.models.jobs`), made by a conditional UPDATE (so two workers never both make it) and
audited. The worker's claim and lease are in `requests.services.job_claims`, staff's retry and
confirmation in `requests.services.job_staff`; both move jobs through `job_move` and the helpers
here (the locks, the audit, the queueing), nothing else writes a job:

    hold      queued/failed -> held     it waits for other work (`requests.services.job_holds`)
    release   held -> queued            what held it is done
    claim     queued -> running         a worker takes it, with a lease it renews while working;
              running -> running        ... or takes over one whose lease ran out
    hand over running -> waiting        a manual task for staff, a downstream service still erasing
    finish    running/waiting -> done
    retry     running -> queued         a transient failure, tried again after a backoff
    fail      running/waiting/done -> failed
    restart   failed -> queued/held     staff retry, through the same holds as the start

Lock order, on every path: the request row, then the job rows, then the audit chain's head
(`audit_record` takes it last). A path that needs only some of them takes them in this order, so
two paths never wait for each other. Every move of a job holds its request's row lock, so the
moves of one request's jobs never interleave; renewing a lease (no move) locks the job alone.

Claims are capped (PORTAL_JOB_MAX_ATTEMPTS): a job whose workers keep dying or whose store keeps
failing stops being taken up and fails with the reason, for staff to look at. The reconciler
(`jobs_reconcile`) queues again what the broker lost or a dead worker left running.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from requests.models import ConnectedStore, DataRequest, HeldFor, Job, JobState
from requests.models.jobs import OPEN_JOB_STATES, job_can_move
from requests.queueing import enqueue
from requests.services import job_holds
from requests.services.audit import SYSTEM, audit_record
from requests.services.errors import TransitionNotAllowed
from requests.services.lifecycle import request_flag_attention
from requests.states import Kind, Status

log = logging.getLogger(__name__)


@dataclass
class JobOutcome:
    """What an executor reports: counts per collection, and why the job waits, if it does."""

    counts: dict = field(default_factory=dict)
    waiting_reason: str = ""


# What a job of a kind does in its store (`requests.services.processing.EXECUTORS`).
Executor = Callable[[Job], JobOutcome]
# Returns details for the completion event, or raises ServiceError to flag the request for staff.
# It may instead return a step that writes what goes with the completion (the erasure's
# certificate): called with the locked request in the completion's transaction, it returns the
# details, so the two are committed together.
CompletionStep = Callable[[DataRequest], dict]
Finaliser = Callable[[DataRequest], dict | CompletionStep]

# Longest reason kept on a job (reasons are the portal's own words; never a service's).
MAX_REASON = 500


def lock_request(request_id: int) -> DataRequest:
    """First lock of every path that writes a job (see the lock order above)."""
    return DataRequest.objects.select_for_update().get(pk=request_id)


def job_move(job: Job, to: str, *, from_states: tuple[str, ...] | None = None, **fields) -> bool:
    """Move `job` from its current state (or any of `from_states`) to `to`, if it is still there
    and, when it is running, still this worker's (same claim). False when it moved meanwhile."""
    sources = from_states or (job.state,)
    for source in sources:
        if not job_can_move(source, to):
            raise TransitionNotAllowed(f"A job that is {source} cannot become {to}.")
    current = Job.objects.filter(pk=job.pk, state__in=sources)
    if JobState.RUNNING in sources:
        current = current.filter(attempts=job.attempts)
    if to != JobState.HELD:
        fields.setdefault("held_for", HeldFor.NOTHING)
    moved = current.update(state=to, **fields) == 1
    if moved:
        job.state = to
        for name, value in fields.items():
            setattr(job, name, value)
    return moved


def job_audit(job: Job, action: str, *, actor: str = SYSTEM, **details) -> None:
    audit_record(
        action=action,
        actor=actor,
        request=job.request,
        details={"store": job.store.name, "kind": job.kind, **details},
    )


def job_enqueue(job: Job) -> None:
    countdown = 0.0
    if job.not_before is not None:
        countdown = max(0.0, (job.not_before - timezone.now()).total_seconds())
    # The request's id rides along: the claim locks the request first without looking it up.
    enqueue("job_run", job.pk, job.request_id, queue=job.store.queue or None, countdown=countdown)


def request_advance_on_commit(request_id: int) -> None:
    enqueue("request_process", request_id)


# --- start, hold and release -------------------------------------------------------------------


def jobs_schedule(
    request: DataRequest, jobs: list[Job], *, actor: str, others: bool | None = None
) -> tuple[list[Job], list[Job]]:
    """Hold the jobs that must wait and queue the others (on commit). Shared by the start and the
    staff retry, so a retry keeps the order between stores. The request row is locked. `others`:
    whether the request has jobs besides `jobs` (None: look)."""
    holds = job_holds.holds_for(request, jobs, others=others)
    queued, held = [], []
    for job in jobs:
        job.request = request
        hold = holds.get(job.pk)
        if hold is not None:
            held_for, reason = hold
            if job.state != JobState.HELD and job_move(
                job, JobState.HELD, held_for=held_for, error=reason, not_before=None
            ):
                job_audit(job, "job.held", actor=actor, held_for=held_for)
                held.append(job)
        elif job.state == JobState.QUEUED:
            queued.append(job)
            job_enqueue(job)
        elif job_move(job, JobState.QUEUED, error="", not_before=None, finished_at=None):
            job_audit(job, "job.restarted", actor=actor)
            queued.append(job)
            job_enqueue(job)
    return queued, held


# Inside the approval's transaction no savepoint of its own: a failure fails the approval.
@transaction.atomic(savepoint=False)
def jobs_start(*, request: DataRequest, locked: bool = False, first: bool = False) -> list[Job]:
    """Called on approval: one job per enabled store, held or queued. The request is locked here,
    or, with `locked`, the caller took its lock in this transaction and passes the row it read
    under it (the approval: a second lock and read would be a round trip for nothing).
    `first`: the request has no jobs yet, so none are looked for (the approval: it was in review,
    never processing; were one there, the unique job per request and store fails the start)."""
    row = request if locked else lock_request(request.pk)
    existing: set[int] = set()
    if not first:
        existing = set(
            Job.objects.filter(request=row, kind=row.kind).values_list("store_id", flat=True)
        )
    # One statement for every store's job; the request's lock keeps a second start from making
    # them again meanwhile.
    created = Job.objects.bulk_create(
        [
            Job(request=row, store=store, kind=row.kind)
            for store in ConnectedStore.objects.filter(enabled=True).order_by("name")
            if store.pk not in existing
        ]
    )
    _, held = jobs_schedule(row, created, actor=SYSTEM, others=bool(existing))
    if held and held[0].held_for == HeldFor.ACCESS:
        access = job_holds.access_first(row)
        audit_record(
            action="request.held_for_access",
            actor=SYSTEM,
            request=row,
            details={"access_request": access, "jobs": len(held)},
        )
    elif held:
        audit_record(
            action="request.erasure_ordered",
            actor=SYSTEM,
            request=row,
            details={"order": job_holds.erasure_order(row)},
        )
    if not created and (first or not row.jobs.exists()):
        request_advance_on_commit(row.pk)
    return created


def jobs_release(*, request: DataRequest) -> int:
    """Queue the request's held jobs that nothing holds any more; the others keep (or get) the
    reason they wait. Runs with the request row locked (by `request_advance`)."""
    held = list(Job.objects.filter(request=request, state=JobState.HELD).select_related("store"))
    if not held:
        return 0
    holds = job_holds.holds_for(request, held)
    released = []
    for job in held:
        job.request = request
        hold = holds.get(job.pk)
        if hold is not None:
            held_for, reason = hold
            if (job.held_for, job.error) != hold:
                Job.objects.filter(pk=job.pk, state=JobState.HELD).update(
                    held_for=held_for, error=reason
                )
            continue
        if job_move(job, JobState.QUEUED, error=""):
            job_audit(job, "job.released")
            job_enqueue(job)
            released.append(job)
    if released:
        audit_record(
            action="request.released_for_erasure",
            actor=SYSTEM,
            request=request,
            details={"jobs": len(released)},
        )
    return len(released)


def release_erasures_held_for(*, access_request: DataRequest) -> None:
    """Move on the person's erasures held for this access request (on commit)."""
    if not access_request.subject_key:
        return
    held = (
        DataRequest.objects.filter(
            subject_key=access_request.subject_key,
            kind=Kind.ERASURE,
            status=Status.PROCESSING,
            jobs__state=JobState.HELD,
        )
        .values_list("pk", flat=True)
        .distinct()
    )
    for request_id in held:
        request_advance_on_commit(request_id)


# --- a worker's result ---------------------------------------------------------------------------


# No savepoint when the caller's transaction holds it (the worker moving the request on in the
# same transaction): a failure rolls that back too.
@transaction.atomic(savepoint=False)
def job_finish(
    *, job: Job, counts: dict, waiting_reason: str = "", queue_advance: bool = True
) -> bool:
    """Record a job's result: done, or handed over (waiting, with the reason). False if the job
    is no longer this worker's to finish. The request is moved on by a task queued on commit, or,
    with `queue_advance=False`, by the caller (in the same worker task); `job.request` is then
    the request as locked here."""
    job.request = lock_request(job.request_id)
    state = JobState.WAITING if waiting_reason else JobState.DONE
    if not job_move(
        job,
        state,
        counts=counts,
        error=waiting_reason,
        finished_at=None if waiting_reason else timezone.now(),
        lease_expires_at=None,
    ):
        return False
    job_audit(job, "job.waiting" if waiting_reason else "job.done", counts=counts)
    if queue_advance:
        request_advance_on_commit(job.request_id)
    return True


@transaction.atomic
def job_retry_later(*, job: Job, reason: str) -> bool:
    """A transient failure: queue the job again after a backoff, or fail it past the cap."""
    if job.attempts >= settings.PORTAL_JOB_MAX_ATTEMPTS:
        return job_fail(job=job, reason=f"{reason} (gave up after {job.attempts} attempts)")
    lock_request(job.request_id)
    delay = min(
        settings.PORTAL_JOB_RETRY_BASE * (2 ** (job.attempts - 1)), settings.PORTAL_JOB_RETRY_MAX
    )
    not_before = timezone.now() + timedelta(seconds=delay)
    if not job_move(
        job,
        JobState.QUEUED,
        error=reason[:MAX_REASON],
        not_before=not_before,
        lease_expires_at=None,
    ):
        return False
    job_audit(job, "job.retry_scheduled", attempt=job.attempts, in_seconds=delay)
    job_enqueue(job)
    return True


def job_fail_locked(job: Job, request: DataRequest, reason: str, **move) -> bool:
    if not job_move(
        job,
        JobState.FAILED,
        error=reason[:MAX_REASON],
        finished_at=timezone.now(),
        lease_expires_at=None,
        **move,
    ):
        return False
    job_audit(job, "job.failed", reason=reason[:MAX_REASON])
    if request.status == Status.PROCESSING:
        request_flag_attention(request=request, reason=f"{job.store.name}: {reason}"[:MAX_REASON])
    return True


@transaction.atomic
def job_fail(*, job: Job, reason: str) -> bool:
    """A permanent failure of a running job: the request needs staff, who see the reason and can
    retry. `reason` is the portal's own words (a code, counts), never a store's text."""
    request = lock_request(job.request_id)
    return job_fail_locked(job, request, reason)


@transaction.atomic
def job_recipient_answered(
    *, job: Job, counts: dict, done: bool, reason: str = "", erased: int = 0
) -> bool:
    """A downstream service said how its erasure stands: done, or failed (`reason`, the portal's
    words only). False when the job moved meanwhile."""
    request = lock_request(job.request_id)
    job.request = request
    now = timezone.now()
    if done:
        if not job_move(job, JobState.DONE, counts=counts, error="", finished_at=now):
            return False
        job_audit(job, "job.done", recipient="done", erased=erased)
        request_advance_on_commit(job.request_id)
        return True
    if not job_move(
        job, JobState.FAILED, counts=counts, error=reason[:MAX_REASON], finished_at=now
    ):
        return False
    job_audit(job, "job.failed", reason=reason[:MAX_REASON])
    if request.status == Status.PROCESSING:
        request_flag_attention(request=request, reason=f"{job.store.name}: {reason}"[:MAX_REASON])
    return True


def job_note_recipient(*, job: Job, counts: dict) -> bool:
    """Keep what a downstream service still erasing last said (no state change)."""
    return (
        Job.objects.filter(pk=job.pk, state=JobState.WAITING, attempts=job.attempts).update(
            counts=counts
        )
        == 1
    )


@transaction.atomic
def job_fail_for_sweep(*, request: DataRequest, store_name: str, reason: str) -> None:
    """The verification sweep found records left in a store: its job fails, so that staff's retry
    runs that store again."""
    request = lock_request(request.pk)
    store = ConnectedStore.objects.filter(name=store_name).first()
    if store is None:
        return
    job, made = Job.objects.get_or_create(
        request=request,
        store=store,
        kind=request.kind,
        defaults={"state": JobState.FAILED, "error": reason, "finished_at": timezone.now()},
    )
    job.request = request
    moved = made or job.state == JobState.FAILED
    if not moved and not job_move(job, JobState.FAILED, error=reason[:MAX_REASON]):
        return
    job_audit(job, "job.failed", reason=reason[:MAX_REASON])


# The reconciler looks at jobs in pages of this size so a backlog never loads at once.
RECONCILE_BATCH = 500


def jobs_reconcile() -> dict[str, int]:
    """Re-queue jobs the broker lost or whose worker died, and move finished requests on.

    Safe to run at any time and from several schedulers at once: every step is a conditional
    UPDATE or an idempotent task.
    """
    now = timezone.now()
    stale = now - settings.PORTAL_JOB_REQUEUE_AFTER
    requeued = 0
    # Queued jobs whose message has had time to arrive but that nobody started: the broker may
    # have lost it (a Redis restart empties it). A duplicate message is harmless: claims are atomic.
    lost = (
        Job.objects.filter(state=JobState.QUEUED, updated_at__lt=stale)
        .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
        .filter(request__status=Status.PROCESSING)
        .select_related("store")
        .order_by("pk")[:RECONCILE_BATCH]
    )
    for job in lost:
        Job.objects.filter(pk=job.pk, state=JobState.QUEUED).update(updated_at=now)
        with transaction.atomic():
            job_enqueue(job)
        requeued += 1
    # Running jobs whose lease ran out: their worker died mid-way.
    expired = (
        Job.objects.filter(state=JobState.RUNNING, lease_expires_at__lt=now)
        .filter(request__status=Status.PROCESSING)
        .select_related("store")
        .order_by("pk")[:RECONCILE_BATCH]
    )
    for job in expired:
        with transaction.atomic():
            job_enqueue(job)
        requeued += 1
    # Requests whose jobs are all settled but that were not moved on (a lost advance message).
    advanced = 0
    # Not those with a job handed over (a manual task, a recipient still erasing): finishing that
    # job moves the request on. Oldest first, and each one looked at is touched, so the next run
    # takes the next page instead of the same requests again.
    settled = list(
        DataRequest.objects.filter(status=Status.PROCESSING, updated_at__lt=stale)
        .exclude(jobs__state__in=[JobState.QUEUED, JobState.RUNNING, JobState.WAITING])
        .order_by("updated_at", "pk")
        .values_list("pk", flat=True)[:RECONCILE_BATCH]
    )
    DataRequest.objects.filter(pk__in=settled, updated_at__lt=stale).update(updated_at=now)
    for request_id in settled:
        enqueue("request_process", request_id)
        advanced += 1
    return {"requeued": requeued, "advanced": advanced}


def open_jobs(request: DataRequest):
    return request.jobs.filter(state__in=OPEN_JOB_STATES)
