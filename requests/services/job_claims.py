"""A worker's claim on a job and its lease (the moves queued -> running and running -> running
of the state machine in `requests.services.jobs`, which owns the moves this module makes).

A claim locks the job's request first (the lock order of `requests.services.jobs`), then moves
the job to running with a lease the worker renews between batches; a job whose lease ran out is
taken over by the next claim. Claims are capped (PORTAL_JOB_MAX_ATTEMPTS): a job whose workers
keep dying stops being taken up and fails with the reason, for staff to look at.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from requests.models import ConnectedStore, DataRequest, HeldFor, Job, JobState
from requests.models.jobs import job_can_move
from requests.services.errors import TransitionNotAllowed
from requests.services.jobs import job_audit, job_fail_locked, job_move
from requests.services.store_connections import enabled_stores
from requests.states import Status


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
                job_fail_locked(job, request, _claims_exhausted(job), from_states=(job.state,))
            return None
        job.request = request
        job.store = _store_of(job)
        job_audit(job, "job.claimed", attempt=job.attempts)
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
    if not job_move(
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
