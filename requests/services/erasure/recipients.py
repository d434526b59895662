"""Recipients (Art. 19) and manual stores: the erasures handed over to someone else. Webhook
services that answered "pending" are asked how their erasure stands (`recipients_check`,
scheduled); manual stores are staff tasks (`staff_tasks`); either, past its due date, moves the
request to needs_attention."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from datetime import time as day_time
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from requests import clock
from requests.connectors.registry import connector_class, kinds_where
from requests.crypto import keyed_hash
from requests.engine.store import StoreError, TransientStoreError
from requests.engine.storemap import StoreMap
from requests.models import ConnectedStore, DataRequest, Job, JobState
from requests.services import jobs as job_service
from requests.services.errors import ServiceError
from requests.services.lifecycle import request_flag_attention
from requests.services.stores import HANDED_OVER_KINDS, store_connector, store_map
from requests.states import Kind, Status

log = logging.getLogger(__name__)

# Jobs looked at per page by the scheduled recipients check.
CHECK_BATCH = 200
# The staff task list comes in pages of this many tasks, at most STAFF_TASKS_MAX_PAGE.
STAFF_TASKS_PAGE = 50
STAFF_TASKS_MAX_PAGE = 200


def manual_task_reason(store: ConnectedStore, *, kind: str) -> str:
    """What staff are asked to do in a manual store, and where they confirm it."""
    system = system_name(store)
    verb = "erase the person's records from" if kind == Kind.ERASURE else "search"
    return (
        f"Manual store: {verb} {system}, then confirm with a note "
        f"(POST /api/v1/staff/requests/<reference>/jobs/{store.name}/confirm/)."
    )


def system_name(store: ConnectedStore) -> str:
    """The system a store stands for, as staff and the certificate name it: its map's `system`,
    else its options', else the store's name."""
    try:
        stored_map = store_map(store)
    except ServiceError:
        stored_map = StoreMap()
    return stored_map.system or (store.options or {}).get("system") or store.name


def _owner(store: ConnectedStore) -> str | None:
    try:
        stored_map = store_map(store)
    except ServiceError:
        stored_map = StoreMap()
    return stored_map.owner or (store.options or {}).get("owner")


def downstream_of(job: Job) -> dict:
    """Where a webhook job's downstream erasure stands (its remote jobs, status, counts erased,
    when last asked), as kept in the job's counts; empty for any other job."""
    value = (job.counts or {}).get("downstream")
    return value if isinstance(value, dict) else {}


def task_due_on(job: Job) -> date | None:
    """When a handed-over job (manual task or pending recipient) is due."""
    handed = job.started_at or job.queued_at
    days = settings.PORTAL_MANUAL_TASK_DAYS
    candidates = [d for d in (job.request.due_on,) if d is not None]
    if days and handed is not None:
        candidates.append(clock.local_date(handed) + timedelta(days=days))
    return min(candidates) if candidates else None


def _handed_over_jobs():
    return (
        Job.objects.filter(state=JobState.WAITING)
        .filter(store__kind__in=HANDED_OVER_KINDS)
        .filter(request__status__in=[Status.PROCESSING, Status.NEEDS_ATTENTION])
        .select_related("store", "request")
    )


def _late() -> Q:
    """Handed-over jobs past their due date (`task_due_on` before today), as a query: the
    request's due date has passed, or the job was handed over more than
    PORTAL_MANUAL_TASK_DAYS local days ago."""
    today = clock.today()
    late = Q(request__due_on__lt=today)
    days = settings.PORTAL_MANUAL_TASK_DAYS
    if days:
        cutoff = timezone.make_aware(datetime.combine(today - timedelta(days=days), day_time.min))
        late |= Q(started_at__lt=cutoff) | Q(started_at__isnull=True, queued_at__lt=cutoff)
    return late


def staff_tasks(
    *, overdue: bool | None = None, limit: int = STAFF_TASKS_PAGE, offset: int = 0
) -> tuple[int, list[dict[str, Any]]]:
    """Open tasks for staff, one page: manual stores to handle by hand, and recipients still
    erasing. Returns how many there are in all, and the page (filtered and counted in the
    database; each store's map read once per page)."""
    limit = max(1, min(limit, STAFF_TASKS_MAX_PAGE))
    jobs = _handed_over_jobs()
    if overdue is not None:
        jobs = jobs.filter(_late()) if overdue else jobs.exclude(_late())
    count = jobs.count()
    today = clock.today()
    systems: dict[int, tuple[str, str | None]] = {}
    out = []
    for job in jobs.order_by("request__due_on", "pk")[offset : offset + limit]:
        due = task_due_on(job)
        late = due is not None and due < today
        manual = connector_class(job.store.kind).is_manual
        if manual and job.store_id not in systems:
            systems[job.store_id] = (system_name(job.store), _owner(job.store))
        entry: dict[str, Any] = {
            "request": job.request.reference,
            "request_status": job.request.status,
            "kind": job.kind,
            "store": job.store.name,
            "store_kind": job.store.kind,
            "task": "confirm_by_hand" if manual else "recipient_erasing",
            "system": systems[job.store_id][0] if manual else job.store.name,
            "instructions": job.error,
            "handed_over_at": job.started_at,
            "due_on": due,
            "overdue": late,
        }
        if manual:
            entry["owner"] = systems[job.store_id][1]
            entry["confirm_url"] = (
                f"/api/v1/staff/requests/{job.request.reference}/jobs/{job.store.name}/confirm/"
            )
        else:
            entry["downstream_jobs"] = downstream_of(job).get("jobs", [])
            entry["last_checked_at"] = downstream_of(job).get("checked_at")
        out.append(entry)
    return count, out


def request_job_summaries(*, request: DataRequest) -> list[dict[str, Any]]:
    """A request's jobs for staff; a waiting job says what it waits for, and when a handed-over
    job (a manual task, a recipient still erasing) is due."""
    out = []
    for job in request.jobs.select_related("store", "request").order_by("pk"):
        entry = job.summary()
        if job.state == JobState.HELD:
            entry["waiting_for"] = "other_work"  # `held_for`: the access package, or other stores
        elif job.state == JobState.WAITING:
            entry["waiting_for"] = (
                "staff" if connector_class(job.store.kind).is_manual else "recipient"
            )
            due = task_due_on(job)
            entry["due_on"] = due
            entry["overdue"] = due is not None and due < clock.today()
        out.append(entry)
    return out


def recipients_check() -> dict[str, int]:
    """Scheduled: ask each downstream service still erasing how it stands, and flag requests
    whose manual task or recipient is past its due date. Safe to run from several schedulers."""
    done = failed = flagged = 0
    # Requests that need staff for another reason are asked about too, so that their jobs
    # show where the recipients stand when staff look.
    pending = _handed_over_jobs().filter(
        kind=Kind.ERASURE, store__kind__in=kinds_where("erases_by_identity")
    )
    for job in pending.order_by("pk")[:CHECK_BATCH]:
        outcome = _check_downstream(job)
        done += outcome == "done"
        failed += outcome == "failed"
    today = clock.today()
    for job in _handed_over_jobs().filter(request__status=Status.PROCESSING).order_by("pk"):
        due = task_due_on(job)
        if due is not None and due < today and _flag_overdue(job, due):
            flagged += 1
    return {"done": done, "failed": failed, "flagged": flagged}


def _check_downstream(job: Job) -> str:
    """Ask the service about each of its erasure jobs still pending; move the job on when all
    are done (or one failed). Returns "done", "failed", "pending" or "raced"."""
    downstream = dict(downstream_of(job))
    statuses: dict[str, str] = dict(downstream.get("statuses") or {})
    erased: dict[str, int] = dict(downstream.get("erased_by_job") or {})
    failure = ""
    try:
        with store_connector(job.store) as connector:
            for remote in downstream.get("jobs") or []:
                if statuses.get(remote) == "done":
                    continue
                answer = connector.status(remote, request_id=job.request.reference)
                statuses[remote] = answer["status"]
                erased[remote] = int(answer.get("erased") or 0)
                if answer["status"] == "failed":
                    failure = recipient_failure(answer.get("reason"))
                    break
    except TransientStoreError as exc:
        log.info("recipient %s did not answer (%s); asking again later", job.store.name, exc)
        return "pending"
    except StoreError as exc:
        failure = str(exc)
    now = timezone.now()
    remotes = downstream.get("jobs") or []
    if failure:
        state = "failed"
    elif remotes and all(statuses.get(r) == "done" for r in remotes):
        state = "done"
    else:
        state = "pending"
    downstream.update(
        status=state,
        statuses=statuses,
        erased_by_job=erased,
        erased=sum(erased.values()),
        checked_at=now.isoformat(),
    )
    counts = {**(job.counts or {}), "downstream": downstream}
    if state == "pending":
        job_service.job_note_recipient(job=job, counts=counts)
        return "pending"
    if not job_service.job_recipient_answered(
        job=job,
        counts=counts,
        done=state == "done",
        reason=failure,
        erased=downstream["erased"],
    ):
        return "raced"
    return state


def recipient_failure(reason: Any) -> str:
    """What the portal keeps of a recipient's failure: never the service's own words (they may
    quote the person's data), only their length and a keyed hash, so staff can match them with
    the service's logs."""
    text = str(reason or "")
    if not text:
        return "the recipient reported that its erasure failed, with no reason"
    return (
        "the recipient reported that its erasure failed (its reason: "
        f"{len(text)} characters, keyed hash {keyed_hash(text, purpose='recipient-reason')[:16]})"
    )


def _flag(request_id: int, reason: str) -> bool:
    request = DataRequest.objects.select_for_update().get(pk=request_id)
    if request.status != Status.PROCESSING:
        return False
    request_flag_attention(request=request, reason=reason)
    return True


@transaction.atomic
def _flag_overdue(job: Job, due: date) -> bool:
    what = (
        f"the manual task in {system_name(job.store)}"
        if connector_class(job.store.kind).is_manual
        else f"the recipient {job.store.name} has not confirmed its erasure; it"
    )
    return _flag(job.request_id, f"{job.store.name}: {what} was due on {due.isoformat()}.")
