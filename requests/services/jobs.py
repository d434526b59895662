"""Jobs: the work of an approved request in each connected store, as a state machine.

This module is the only writer of jobs. Each move is checked against `JOB_TRANSITIONS`
(`requests.models.jobs`), made by a conditional UPDATE (so two workers never both make it) and
audited:

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
failing stops being taken up and fails with the reason, for staff to look at.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from requests.connectors.registry import connector_class
from requests.models import ConnectedStore, DataRequest, HeldFor, Job, JobState
from requests.models.jobs import OPEN_JOB_STATES, job_can_move
from requests.queueing import enqueue
from requests.services import job_holds
from requests.services.audit import SYSTEM, audit_record
from requests.services.errors import NotFound, ServiceError, TransitionNotAllowed
from requests.services.lifecycle import request_flag_attention, request_resume
from requests.services.store_connections import enabled_stores
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


def _lock_request(request_id: int) -> DataRequest:
    """First lock of every path that writes a job (see the lock order above)."""
    return DataRequest.objects.select_for_update().get(pk=request_id)


def _move(job: Job, to: str, *, from_states: tuple[str, ...] | None = None, **fields) -> bool:
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


def _audit(job: Job, action: str, *, actor: str = SYSTEM, **details) -> None:
    audit_record(
        action=action,
        actor=actor,
        request=job.request,
        details={"store": job.store.name, "kind": job.kind, **details},
    )


def _enqueue_job(job: Job) -> None:
    countdown = 0.0
    if job.not_before is not None:
        countdown = max(0.0, (job.not_before - timezone.now()).total_seconds())
    # The request's id rides along: the claim locks the request first without looking it up.
    enqueue("job_run", job.pk, job.request_id, queue=job.store.queue or None, countdown=countdown)


def _advance_on_commit(request_id: int) -> None:
    enqueue("request_process", request_id)


# --- start, hold and release -------------------------------------------------------------------


def _schedule(
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
            if job.state != JobState.HELD and _move(
                job, JobState.HELD, held_for=held_for, error=reason, not_before=None
            ):
                _audit(job, "job.held", actor=actor, held_for=held_for)
                held.append(job)
        elif job.state == JobState.QUEUED:
            queued.append(job)
            _enqueue_job(job)
        elif _move(job, JobState.QUEUED, error="", not_before=None, finished_at=None):
            _audit(job, "job.restarted", actor=actor)
            queued.append(job)
            _enqueue_job(job)
    return queued, held


# Inside the approval's transaction no savepoint of its own: a failure fails the approval.
@transaction.atomic(savepoint=False)
def jobs_start(*, request: DataRequest) -> list[Job]:
    """Called on approval: one job per enabled store, held or queued. The request is locked."""
    locked = _lock_request(request.pk)
    existing = set(
        Job.objects.filter(request=locked, kind=locked.kind).values_list("store_id", flat=True)
    )
    # One statement for every store's job; the request's lock keeps a second start from making
    # them again meanwhile.
    created = Job.objects.bulk_create(
        [
            Job(request=locked, store=store, kind=locked.kind)
            for store in ConnectedStore.objects.filter(enabled=True).order_by("name")
            if store.pk not in existing
        ]
    )
    _, held = _schedule(locked, created, actor=SYSTEM, others=bool(existing))
    if held and held[0].held_for == HeldFor.ACCESS:
        access = job_holds.access_first(locked)
        audit_record(
            action="request.held_for_access",
            actor=SYSTEM,
            request=locked,
            details={"access_request": access.reference if access else None, "jobs": len(held)},
        )
    elif held:
        audit_record(
            action="request.erasure_ordered",
            actor=SYSTEM,
            request=locked,
            details={"order": job_holds.erasure_order(locked)},
        )
    if not created and not locked.jobs.exists():
        _advance_on_commit(locked.pk)
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
        if _move(job, JobState.QUEUED, error=""):
            _audit(job, "job.released")
            _enqueue_job(job)
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
        _advance_on_commit(request_id)


# --- a worker's run ----------------------------------------------------------------------------


def _claims_exhausted(job: Job) -> str:
    return (
        f"claimed {job.attempts} times without finishing: its worker stopped or lost its lease "
        f"each time (at most {settings.PORTAL_JOB_MAX_ATTEMPTS} claims)"
    )


def job_claim(*, job_id: int, request_id: int | None = None) -> Job | None:
    """Take a job for this worker; None when another worker holds it, it is finished, or it was
    claimed too often (then it fails, with that reason). `request_id`: the job's request, when
    the message says it (else it is looked up, and only for a job that can be claimed)."""
    now = timezone.now()
    claimable = Q(state=JobState.QUEUED) | Q(state=JobState.RUNNING, lease_expires_at__lt=now)
    if request_id is None:
        request_id = (
            Job.objects.filter(claimable, pk=job_id)
            .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
            .values_list("request_id", flat=True)
            .first()
        )
        if request_id is None:
            return None
    with transaction.atomic():
        request = DataRequest.objects.select_for_update().filter(pk=request_id).first()
        if request is None or request.status != Status.PROCESSING:
            return None
        job = _claim_row(job_id=job_id, request_id=request_id, now=now)
        if job is None:
            # Not claimable, or a job whose workers kept dying: that one fails, with the reason.
            job = (
                Job.objects.filter(
                    pk=job_id,
                    request_id=request_id,
                    state=JobState.RUNNING,
                    lease_expires_at__lt=now,
                    attempts__gte=settings.PORTAL_JOB_MAX_ATTEMPTS,
                )
                .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
                .select_related("store")
                .first()
            )
            if job is not None:
                job.request = request
                _fail(job, request, _claims_exhausted(job), from_states=(job.state,))
            return None
        job.request = request
        job.store = _store_of(job)
        _audit(job, "job.claimed", attempt=job.attempts)
    return job


# The claim's moves (checked once: the table does not change while the portal runs).
_CLAIM_FROM = (JobState.QUEUED, JobState.RUNNING)


def _claim_row(*, job_id: int, request_id: int, now) -> Job | None:
    """With the request locked: move the job to running if it can be claimed now (queued, or
    running with its lease run out and claims left), in one conditional UPDATE that returns the
    row (PostgreSQL, SQLite); the job as claimed, or None. Elsewhere: read, then update."""
    for source in _CLAIM_FROM:
        if not job_can_move(source, JobState.RUNNING):
            raise TransitionNotAllowed(f"A job that is {source} cannot become running.")
    conn = transaction.get_connection()
    lease = now + settings.PORTAL_JOB_LEASE
    if conn.vendor not in ("postgresql", "sqlite"):
        return _claim_row_read_then_update(job_id=job_id, request_id=request_id, now=now)
    meta = Job._meta
    q = conn.ops.quote_name

    c = {
        name: q(meta.get_field(name).column)
        for name in (
            "id", "request_id", "state", "attempts", "lease_expires_at", "started_at", "error",
            "held_for", "not_before",
        )
    }  # fmt: skip
    when = conn.ops.adapt_datetimefield_value
    columns = ", ".join(q(f.column) for f in meta.concrete_fields)
    # Only the model's own table and column names, quoted by the backend, are put in the text;
    # every value is a parameter.
    sql = (
        f"UPDATE {q(meta.db_table)} SET {c['state']} = %s, "  # noqa: S608
        f"{c['attempts']} = {c['attempts']} + 1, {c['lease_expires_at']} = %s, "
        f"{c['started_at']} = %s, {c['error']} = '', {c['held_for']} = %s "
        f"WHERE {c['id']} = %s AND {c['request_id']} = %s AND ({c['state']} = %s OR "
        f"({c['state']} = %s AND {c['lease_expires_at']} < %s AND {c['attempts']} < %s)) "
        f"AND ({c['not_before']} IS NULL OR {c['not_before']} <= %s) "
        f"RETURNING {columns}"
    )
    params = [
        JobState.RUNNING,
        when(lease),
        when(now),
        HeldFor.NOTHING,
        job_id,
        request_id,
        JobState.QUEUED,
        JobState.RUNNING,
        when(now),
        settings.PORTAL_JOB_MAX_ATTEMPTS,
        when(now),
    ]
    # raw() turns the returned row into a Job with every field's database converters applied.
    return next(iter(Job.objects.raw(sql, params)), None)


def _claim_row_read_then_update(*, job_id: int, request_id: int, now) -> Job | None:
    job = (
        Job.objects.filter(
            Q(state=JobState.QUEUED)
            | Q(
                state=JobState.RUNNING,
                lease_expires_at__lt=now,
                attempts__lt=settings.PORTAL_JOB_MAX_ATTEMPTS,
            ),
            pk=job_id,
            request_id=request_id,
        )
        .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
        .first()
    )
    if job is None:
        return None
    attempts = job.attempts + 1
    if not _move(
        job,
        JobState.RUNNING,
        attempts=F("attempts") + 1,
        lease_expires_at=now + settings.PORTAL_JOB_LEASE,
        started_at=now,
        error="",
    ):
        return None
    # Exact without reading it back: every write of `attempts` holds the request's lock.
    job.attempts = attempts
    return job


def _store_of(job: Job) -> ConnectedStore:
    """The job's store from the enabled stores, which the worker reads for the run anyway
    (once per task, `one_store_list`); a disabled store's job still runs, and reads its own."""
    for store in enabled_stores():
        if store.pk == job.store_id:
            return store
    return ConnectedStore.objects.get(pk=job.store_id)


def job_renew_lease(*, job: Job) -> bool:
    """Called between batches; False means the job was taken away (its lease ran out)."""
    renewed = Job.objects.filter(pk=job.pk, state=JobState.RUNNING, attempts=job.attempts).update(
        lease_expires_at=timezone.now() + settings.PORTAL_JOB_LEASE
    )
    return renewed == 1


def job_settled_request_id(*, job_id: int) -> int | None:
    """The request of a job on the shared queue that is done or handed over, while the request
    is processing (a second delivery of its message moves the request on); None otherwise."""
    return (
        Job.objects.filter(
            pk=job_id,
            state__in=(JobState.DONE, JobState.WAITING),
            request__status=Status.PROCESSING,
            store__queue="",
        )
        .values_list("request_id", flat=True)
        .first()
    )


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
    job.request = _lock_request(job.request_id)
    state = JobState.WAITING if waiting_reason else JobState.DONE
    if not _move(
        job,
        state,
        counts=counts,
        error=waiting_reason,
        finished_at=None if waiting_reason else timezone.now(),
        lease_expires_at=None,
    ):
        return False
    _audit(job, "job.waiting" if waiting_reason else "job.done", counts=counts)
    if queue_advance:
        _advance_on_commit(job.request_id)
    return True


@transaction.atomic
def job_retry_later(*, job: Job, reason: str) -> bool:
    """A transient failure: queue the job again after a backoff, or fail it past the cap."""
    if job.attempts >= settings.PORTAL_JOB_MAX_ATTEMPTS:
        return job_fail(job=job, reason=f"{reason} (gave up after {job.attempts} attempts)")
    _lock_request(job.request_id)
    delay = min(
        settings.PORTAL_JOB_RETRY_BASE * (2 ** (job.attempts - 1)), settings.PORTAL_JOB_RETRY_MAX
    )
    not_before = timezone.now() + timedelta(seconds=delay)
    if not _move(
        job,
        JobState.QUEUED,
        error=reason[:MAX_REASON],
        not_before=not_before,
        lease_expires_at=None,
    ):
        return False
    _audit(job, "job.retry_scheduled", attempt=job.attempts, in_seconds=delay)
    _enqueue_job(job)
    return True


def _fail(job: Job, request: DataRequest, reason: str, **move) -> bool:
    if not _move(
        job,
        JobState.FAILED,
        error=reason[:MAX_REASON],
        finished_at=timezone.now(),
        lease_expires_at=None,
        **move,
    ):
        return False
    _audit(job, "job.failed", reason=reason[:MAX_REASON])
    if request.status == Status.PROCESSING:
        request_flag_attention(request=request, reason=f"{job.store.name}: {reason}"[:MAX_REASON])
    return True


@transaction.atomic
def job_fail(*, job: Job, reason: str) -> bool:
    """A permanent failure of a running job: the request needs staff, who see the reason and can
    retry. `reason` is the portal's own words (a code, counts), never a store's text."""
    request = _lock_request(job.request_id)
    return _fail(job, request, reason)


@transaction.atomic
def job_recipient_answered(
    *, job: Job, counts: dict, done: bool, reason: str = "", erased: int = 0
) -> bool:
    """A downstream service said how its erasure stands: done, or failed (`reason`, the portal's
    words only). False when the job moved meanwhile."""
    request = _lock_request(job.request_id)
    job.request = request
    now = timezone.now()
    if done:
        if not _move(job, JobState.DONE, counts=counts, error="", finished_at=now):
            return False
        _audit(job, "job.done", recipient="done", erased=erased)
        _advance_on_commit(job.request_id)
        return True
    if not _move(job, JobState.FAILED, counts=counts, error=reason[:MAX_REASON], finished_at=now):
        return False
    _audit(job, "job.failed", reason=reason[:MAX_REASON])
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
    request = _lock_request(request.pk)
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
    if not moved and not _move(job, JobState.FAILED, error=reason[:MAX_REASON]):
        return
    _audit(job, "job.failed", reason=reason[:MAX_REASON])


# --- staff ---------------------------------------------------------------------------------------


@transaction.atomic
def request_retry_failed_jobs(*, request: DataRequest, actor: str) -> DataRequest:
    """Staff retry: failed jobs start again, through the same holds as at the start (so stores
    keep their order), and the request goes back to processing."""
    locked = _lock_request(request.pk)
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
        _advance_on_commit(updated.pk)
        return updated
    updated = request_resume(
        request=locked, actor=actor, action="request.retried", details={"jobs": len(failed)}
    )
    # A restarted job has all its claims again; its earlier counts are kept until it runs.
    Job.objects.filter(pk__in=[job.pk for job in failed]).update(attempts=0)
    for job in failed:
        job.attempts = 0
    _, held = _schedule(updated, failed, actor=actor)
    # Jobs queued while the request needed staff found it so and were not claimed: send again.
    restarted = {job.pk for job in failed}
    for queued in Job.objects.filter(request=updated, state=JobState.QUEUED).select_related(
        "store"
    ):
        if queued.pk not in restarted:
            _enqueue_job(queued)
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
    locked = _lock_request(request.pk)
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
    if not _move(job, JobState.DONE, counts={**counts, "note": note}, error="", finished_at=now):
        raise TransitionNotAllowed("This job changed meanwhile; look again.")
    _audit(job, "job.confirmed", actor=actor)
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
            _enqueue_job(queued)
    _advance_on_commit(locked.pk)
    return job


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
            _enqueue_job(job)
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
            _enqueue_job(job)
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
