"""Erasure requests: every record of the person erased, in an order the stores accept, verified,
and certified without keeping personal data.

1. Jobs. Approval creates one erasure job per enabled store (`requests.services.jobs`), queued on
   commit. A job uses connectors to every enabled store (the finder needs them all: a store's
   records can be reachable only through another's; each worker keeps them between jobs, see
   `requests.services.stores.kept_connectors`) and calls the engine's `erase_person` for its own
   store: one transaction per SQL store, in bounded batches, renewing the job's lease between
   batches (a worker that lost its lease stops, and its transaction rolls back). Transient store
   errors are retried with backoff up to a cap; permanent ones fail the job and the request needs
   staff, who see the reason and retry (`POST .../retry/`).
2. Order across stores. When store B's map references store A, B's records are found through A's
   (the shop's customer ids lead to the CRM's contacts), so A must not be erased before B. The
   rule comes from the maps (`store_dependencies`): a reference followed from parent to child
   (`follow: children`, the default, or `both`) makes the referenced store wait for the
   referencing one; `follow: parent` the other way round; `follow: none` orders nothing. Stores
   that wait are HELD (`held_for` "order"), like erasures held for the person's access package,
   by the rules in `requests.services.job_holds`, at the start and at a staff retry alike;
   `request_advance` releases each once the stores before it are done (a downstream service that
   accepted the erasure counts as done: it has every identifier it needs). References in a loop
   across stores order nothing.
3. Recipients (Art. 19). Webhook stores receive the erasure through the engine; when the service
   answers "pending", the job waits and `recipients_check` (scheduled) asks the service how it
   stands until it is done or failed. Manual stores become staff tasks, due
   PORTAL_MANUAL_TASK_DAYS after they are handed over (never after the request's due date); staff
   confirm them (`requests.services.jobs.job_confirm_manual`). A task or a pending recipient past
   its due date moves the request to needs_attention.
4. Verification sweep (the finaliser). Once every job is done, the finder runs again over every
   store (`find_remaining`); the request completes only if nothing is left but held records.
   Otherwise the jobs of the stores where records remain are marked failed with what remains
   (counts per collection, no data) and the request needs staff; their retry runs those stores
   again, then the sweep.
5. Certificate. Issued with the completion: stores, collections, counts deleted, masked, set to
   null, held (with the legal basis) and kept (with the reason), times, recipients, the sweep's
   result; its SHA-256 is in the `request.completed` audit event, whose hash is the audit chain's
   at completion. No personal data, not even the email. The person gets an email summary.
6. Suppression ledger. At completion each identifier that singles the person out (email, phone,
   account id, custom types; never names) is kept as a keyed hash only. After a backup is
   restored, `manage.py erasures reapply --since <backup time>` scans each store's identity fields
   in bounded batches (SQL columns streamed, Redis keys by SCAN, file paths walked), hashes each
   value's normal form, and erases the matches through the engine again (`suppression_reapply`).
   Webhook and manual stores cannot list their values: the command names them, for their owners
   to reapply their own erasures.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as day_time
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from requests import clock
from requests.assurance import searchable_identity
from requests.connectors.base import (
    Connector,
    PermanentStoreError,
    StoreError,
    TransientStoreError,
)
from requests.crypto import keyed_hash
from requests.engine.erasure import store_order
from requests.engine.storemap import StoreMap
from requests.models import (
    AuditEvent,
    ConnectedStore,
    DataRequest,
    ErasureCertificate,
    Job,
    JobState,
    StoreKind,
    SuppressionEntry,
)
from requests.queueing import enqueue
from requests.services import jobs as job_service
from requests.services.audit import SYSTEM, audit_record
from requests.services.errors import NotFound, ServiceError
from requests.services.job_holds import request_maps
from requests.services.jobs import JobOutcome
from requests.services.stores import UNSEARCHABLE_KINDS, kept_connectors, open_connectors, store_map
from requests.states import Kind, Status

log = logging.getLogger(__name__)

CERTIFICATE_FORMAT = "dsr-erasure-certificate/1"
# Identity types never kept in the suppression ledger nor used to erase again: a name does not
# single a person out, and erasing every "Ada Lovelace" in a restored backup would be wrong.
NOT_SUPPRESSIBLE = frozenset({"name"})
# Counts a store's erasure reports per collection, in the order the certificate shows them.
COUNT_NAMES = ("deleted", "masked", "nullified", "held", "kept")
# Jobs looked at per page by the scheduled recipients check.
CHECK_BATCH = 200


class LeaseLost(PermanentStoreError):
    """The job's lease ran out and another worker took the job; this run stops (and rolls back)."""


# --- order across stores -----------------------------------------------------------------------


# --- the job in one store ----------------------------------------------------------------------


class _Lease:
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
        if not job_service.job_renew_lease(job=self.job):
            raise LeaseLost("the job's lease ran out and another worker took it over")
        self.renewed = now


def manual_task_reason(store: ConnectedStore, *, kind: str) -> str:
    system = _system_name(store)
    verb = "erase the person's records from" if kind == Kind.ERASURE else "search"
    return (
        f"Manual store: {verb} {system}, then confirm with a note "
        f"(POST /api/v1/staff/requests/<reference>/jobs/{store.name}/confirm/)."
    )


def _system_name(store: ConnectedStore) -> str:
    try:
        stored_map = store_map(store)
    except ServiceError:
        stored_map = StoreMap()
    return stored_map.system or (store.options or {}).get("system") or store.name


def _identity(request: DataRequest) -> dict[str, str]:
    # Only what the person proved (or staff confirmed): erasing by a typed phone would erase
    # whoever holds it (see requests.assurance.searchable_identity).
    identity = searchable_identity(request=request)
    if not identity:
        raise ServiceError("This request's identity data were purged; nothing can be erased.")
    return identity


def _erase_store(
    connectors: dict[str, Connector],
    identity: dict,
    *,
    store: str,
    progress=None,
    request_id: str | None = None,
) -> Any:
    from requests.engine.erasure import erase_person

    return erase_person(
        connectors,
        identity,
        store=store,
        hash_key=settings.PORTAL_HASH_KEY.encode(),
        phone_region=settings.PORTAL_DEFAULT_PHONE_REGION,
        progress=progress,
        request_id=request_id,
    )


def erasure_execute(job: Job) -> JobOutcome:
    """Erase the person's records in the job's store (found through every store)."""
    if job.store.kind == StoreKind.MANUAL:
        return JobOutcome(
            counts={"task": {"system": _system_name(job.store), "action": "erase by hand"}},
            waiting_reason=manual_task_reason(job.store, kind=Kind.ERASURE),
        )
    from requests.engine.erasure import MANUAL, PENDING

    identity = _identity(job.request)
    with kept_connectors(extra=job.store) as connectors:
        result = _erase_store(
            connectors,
            identity,
            store=job.store.name,
            progress=_Lease(job),
            # Webhook calls name the portal request (the service's erasure is idempotent by it).
            request_id=job.request.reference,
        )
    counts = json.loads(json.dumps(result.to_json(), cls=DjangoJSONEncoder))
    if result.status == MANUAL:
        return JobOutcome(
            counts=counts, waiting_reason=manual_task_reason(job.store, kind=Kind.ERASURE)
        )
    if result.status == PENDING:
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


def _downstream(job: Job) -> dict:
    value = (job.counts or {}).get("downstream")
    return value if isinstance(value, dict) else {}


# --- recipients: pending downstream erasures and manual tasks ----------------------------------


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
        .filter(Q(store__kind=StoreKind.MANUAL) | Q(store__kind=StoreKind.WEBHOOK))
        .filter(request__status__in=[Status.PROCESSING, Status.NEEDS_ATTENTION])
        .select_related("store", "request")
    )


# The staff task list comes in pages of this many tasks, at most STAFF_TASKS_MAX_PAGE.
STAFF_TASKS_PAGE = 50
STAFF_TASKS_MAX_PAGE = 200


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
        manual = job.store.kind == StoreKind.MANUAL
        if manual and job.store_id not in systems:
            systems[job.store_id] = (_system_name(job.store), _owner(job.store))
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
            entry["downstream_jobs"] = _downstream(job).get("jobs", [])
            entry["last_checked_at"] = _downstream(job).get("checked_at")
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
            entry["waiting_for"] = "staff" if job.store.kind == StoreKind.MANUAL else "recipient"
            due = task_due_on(job)
            entry["due_on"] = due
            entry["overdue"] = due is not None and due < clock.today()
        out.append(entry)
    return out


def _owner(store: ConnectedStore) -> str | None:
    try:
        stored_map = store_map(store)
    except ServiceError:
        stored_map = StoreMap()
    return stored_map.owner or (store.options or {}).get("owner")


def recipients_check() -> dict[str, int]:
    """Scheduled: ask each downstream service still erasing how it stands, and flag requests
    whose manual task or recipient is past its due date. Safe to run from several schedulers."""
    done = failed = flagged = 0
    # Requests that need staff for another reason are asked about too, so that their jobs
    # show where the recipients stand when staff look.
    pending = _handed_over_jobs().filter(kind=Kind.ERASURE, store__kind=StoreKind.WEBHOOK)
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
    from requests.services.stores import store_connector

    downstream = dict(_downstream(job))
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
    from requests.services.lifecycle import request_flag_attention

    request = DataRequest.objects.select_for_update().get(pk=request_id)
    if request.status != Status.PROCESSING:
        return False
    request_flag_attention(request=request, reason=reason)
    return True


@transaction.atomic
def _flag_overdue(job: Job, due: date) -> bool:
    what = (
        f"the manual task in {_system_name(job.store)}"
        if job.store.kind == StoreKind.MANUAL
        else f"the recipient {job.store.name} has not confirmed its erasure; it"
    )
    return _flag(job.request_id, f"{job.store.name}: {what} was due on {due.isoformat()}.")


def _advance_on_commit(request_id: int) -> None:
    enqueue("request_process", request_id)


# --- the verification sweep and the certificate ------------------------------------------------


@dataclass
class SweepResult:
    ran_at: datetime
    # store -> collection -> {"remaining": n, "held": n}
    stores: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    not_checked: list[str] = field(default_factory=list)
    # The maps the sweep searched with, for the certificate (not part of its JSON).
    maps: dict[str, StoreMap] = field(default_factory=dict, repr=False)

    @property
    def remaining(self) -> int:
        return sum(c.get("remaining", 0) for per in self.stores.values() for c in per.values())

    @property
    def held(self) -> int:
        return sum(c.get("held", 0) for per in self.stores.values() for c in per.values())

    def left_over(self) -> dict[str, dict[str, int]]:
        return {
            store: {name: c["remaining"] for name, c in per.items() if c.get("remaining")}
            for store, per in self.stores.items()
            if any(c.get("remaining") for c in per.values())
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "ran_at": self.ran_at,
            "remaining": self.remaining,
            "held": self.held,
            "stores": self.stores,
            "not_checked": self.not_checked,
        }


def erasure_sweep(*, request: DataRequest) -> SweepResult:
    """Search every store again for what is left of the person (counts only)."""
    from requests.engine.erasure import find_remaining

    identity = _identity(request)
    with kept_connectors() as connectors:
        for connector in connectors.values():
            connector.options["request_id"] = request.reference  # named in webhook finds
        try:
            found = find_remaining(
                connectors, identity, phone_region=settings.PORTAL_DEFAULT_PHONE_REGION
            )
        finally:
            for connector in connectors.values():
                connector.options.pop("request_id", None)
        maps = {name: connector.store_map for name, connector in connectors.items()}
    not_checked = sorted(
        ConnectedStore.objects.filter(enabled=True, kind__in=UNSEARCHABLE_KINDS).values_list(
            "name", flat=True
        )
    )
    stores = {
        store: {
            name: {"remaining": int(c.get("remaining", 0)), "held": int(c.get("held", 0))}
            for name, c in per.items()
        }
        for store, per in (found or {}).items()
    }
    return SweepResult(ran_at=timezone.now(), stores=stores, not_checked=not_checked, maps=maps)


def _describe_left_over(left: dict[str, dict[str, int]]) -> str:
    parts = [
        f"{store}.{collection}: {count}"
        for store, per in sorted(left.items())
        for collection, count in sorted(per.items())
    ]
    return "; ".join(parts)


def erasure_finalise(request: DataRequest) -> dict:
    """Verify that nothing but held records is left, then issue the certificate and write the
    suppression ledger. Raises ServiceError (staff must look) when something remains."""
    existing = ErasureCertificate.objects.filter(request=request).first()
    if existing is not None:
        return _completion_details(existing)
    try:
        sweep = erasure_sweep(request=request)
    except PermanentStoreError as exc:
        raise ServiceError(f"The verification sweep could not search every store: {exc}") from None
    left = sweep.left_over()
    if left:
        for store_name, per in left.items():
            job_service.job_fail_for_sweep(
                request=request,
                store_name=store_name,
                reason="The verification sweep found records left: "
                + ", ".join(f"{name}: {count}" for name, count in sorted(per.items())),
            )
        audit_record(
            action="erasure.sweep_failed",
            actor=SYSTEM,
            request=request,
            details={"remaining": left, "held": sweep.held},
        )
        raise ServiceError(
            "The verification sweep found records left after the erasure: "
            f"{_describe_left_over(left)}. Retry to erase them again.",
            code="records_left",
        )
    with transaction.atomic():
        locked = DataRequest.objects.select_for_update().get(pk=request.pk)
        existing = ErasureCertificate.objects.filter(request=locked).first()
        if existing is not None:
            return _completion_details(existing)
        suppressed = suppression_record(request=locked)
        content = certificate_content(request=locked, sweep=sweep, suppressed=suppressed)
        certificate = ErasureCertificate.objects.create(
            request=locked,
            issued_at=sweep.ran_at,
            content=content,
            sha256=certificate_digest(content),
        )
    # The completion event (written next, by request_advance) carries these details: the
    # certificate's digest and the sweep's result enter the audit chain there.
    return _completion_details(certificate)


def _completion_details(certificate: ErasureCertificate) -> dict[str, Any]:
    totals = certificate.content.get("totals", {})
    return {
        "certificate_sha256": certificate.sha256,
        **{name: totals.get(name, 0) for name in COUNT_NAMES},
        "sweep_remaining": certificate.content.get("sweep", {}).get("remaining", 0),
        "sweep_held": certificate.content.get("sweep", {}).get("held", 0),
        "suppressed_identifiers": certificate.content.get("suppression", {}).get("identifiers", 0),
    }


def certificate_digest(content: dict) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _collections_of(counts: dict) -> dict[str, dict]:
    """The per-collection counts of a job's result, whatever keys surround them."""
    collections = counts.get("collections")
    if isinstance(collections, dict):
        return collections
    return {
        name: value
        for name, value in counts.items()
        if isinstance(value, dict) and any(k in value for k in (*COUNT_NAMES, "found"))
    }


def _store_entry(job: Job, maps: dict[str, StoreMap]) -> dict[str, Any]:
    counts = job.counts or {}
    stored_map = maps.get(job.store.name) or StoreMap()
    entry: dict[str, Any] = {
        "store": job.store.name,
        "kind": job.store.kind,
        "state": job.state,
        "attempts": job.attempts,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
    }
    if job.store.kind == StoreKind.MANUAL:
        entry["method"] = "by hand (manual store)"
        entry["system"] = _system_name(job.store)
        entry["confirmed_by"] = counts.get("confirmed_by")
        entry["collections"] = []
        return entry
    entry["method"] = (
        "sent to the recipient (Art. 19)"
        if job.store.kind == StoreKind.WEBHOOK
        else "erased by the portal"
    )
    collections = []
    for name, values in sorted(_collections_of(counts).items()):
        row: dict[str, Any] = {"name": name}
        for count_name in COUNT_NAMES:
            row[count_name] = int(values.get(count_name, 0) or 0)
        collection = stored_map.collections.get(name)
        basis = values.get("basis") or (collection.erasure.basis if collection else None)
        if row["held"] and basis:
            row["basis"] = str(basis)
        reasons = values.get("notes")
        if reasons:
            row["reasons"] = [str(r) for r in reasons] if isinstance(reasons, list) else [reasons]
        collections.append(row)
    entry["collections"] = collections
    notes = counts.get("notes")
    if notes:
        entry["notes"] = [str(n) for n in notes] if isinstance(notes, list) else [str(notes)]
    downstream = _downstream(job)
    if downstream:
        entry["recipient"] = {
            "status": downstream.get("status"),
            "erased": downstream.get("erased"),
            "checked_at": downstream.get("checked_at"),
        }
    return entry


def certificate_content(
    *, request: DataRequest, sweep: SweepResult, suppressed: list[SuppressionEntry]
) -> dict[str, Any]:
    """The certificate: what was done, where and when; counts and reasons, no personal data."""
    jobs = list(
        Job.objects.filter(request=request, kind=Kind.ERASURE)
        .select_related("store")
        .order_by("store__name")
    )
    maps = dict(sweep.maps)
    for job in jobs:
        if job.store.name not in maps:  # manual stores, and stores disabled since
            maps.update(request_maps(request))
            break
    stores = [_store_entry(job, maps) for job in jobs]
    totals = dict.fromkeys(COUNT_NAMES, 0)
    held, kept = [], []
    for entry in stores:
        for row in entry["collections"]:
            for name in COUNT_NAMES:
                totals[name] += row[name]
            if row["held"]:
                held.append(
                    {
                        "store": entry["store"],
                        "collection": row["name"],
                        "count": row["held"],
                        "basis": row.get("basis", ""),
                    }
                )
            if row["kept"]:
                kept.append(
                    {
                        "store": entry["store"],
                        "collection": row["name"],
                        "count": row["kept"],
                        "reasons": row.get("reasons", []),
                    }
                )
    approved = (
        AuditEvent.objects.filter(request=request, action="request.approved")
        .order_by("sequence")
        .last()
    )
    return {
        "format": CERTIFICATE_FORMAT,
        "organisation": settings.PORTAL_ORGANISATION_NAME,
        "reference": request.reference,
        "kind": request.kind,
        "identity_types": sorted(searchable_identity(request=request)),
        "received_at": request.received_at,
        "verified_at": request.verified_at,
        "approved_at": approved.created_at if approved else None,
        "approved_by": approved.actor if approved else None,
        "due_on": request.due_on,
        "issued_at": sweep.ran_at,
        "stores": stores,
        "totals": totals,
        "held": held,
        "kept": kept,
        "recipients": [
            {
                "store": entry["store"],
                "kind": entry["kind"],
                "method": entry["method"],
                "finished_at": entry["finished_at"],
            }
            for entry in stores
            if entry["kind"] in (StoreKind.WEBHOOK, StoreKind.MANUAL)
        ],
        "sweep": sweep.to_json(),
        "suppression": {
            "identifiers": len(suppressed),
            "types": sorted({entry.identity_type for entry in suppressed}),
        },
    }


def erasure_certificate(*, request: DataRequest) -> dict[str, Any]:
    """The certificate of a completed erasure, with the audit event that vouches for it."""
    if request.kind != Kind.ERASURE:
        raise NotFound("Only erasure requests have a certificate.")
    certificate = ErasureCertificate.objects.filter(request=request).first()
    if certificate is None and request.status == Status.COMPLETED:
        raise NotFound(
            "This erasure was completed before certificates were issued: see its timeline."
        )
    if certificate is None or request.status != Status.COMPLETED:
        raise NotFound(
            "The certificate is issued when the erasure is completed and verified; this request "
            f"is {request.status}."
        )
    completed = (
        AuditEvent.objects.filter(request=request, action="request.completed")
        .order_by("sequence")
        .last()
    )
    document = json.loads(json.dumps(certificate.content, cls=DjangoJSONEncoder))
    document["completed_at"] = request.closed_at
    document["certificate_sha256"] = certificate.sha256
    document["audit"] = {
        "event": completed.sequence if completed else None,
        "action": "request.completed",
        "hash": completed.hash if completed else None,
        "certificate_sha256_in_event": (completed.details or {}).get("certificate_sha256")
        if completed
        else None,
    }
    return json.loads(json.dumps(document, cls=DjangoJSONEncoder))


def request_retry(*, request: DataRequest, actor: str) -> DataRequest:
    """Staff retry of a request that needs attention: its failed jobs run again."""
    return job_service.request_retry_failed_jobs(request=request, actor=actor)


# --- the suppression ledger --------------------------------------------------------------------


def _suppression_purpose(identity_type: str) -> str:
    return f"suppression:{identity_type}"


def suppression_hash(identity_type: str, normal_value: str) -> str:
    return keyed_hash(normal_value, purpose=_suppression_purpose(identity_type))


def _normal(identity_type: str, value: Any) -> str | None:
    from requests.engine.normalise import normalise

    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    try:
        normal = normalise(identity_type, text, region=settings.PORTAL_DEFAULT_PHONE_REGION)
    except ValueError:
        return None
    return normal or None


def suppression_record(*, request: DataRequest) -> list[SuppressionEntry]:
    """Keep a keyed hash of each identifier of the erased person that singles them out."""
    entries = []
    for identity_type, value in sorted(searchable_identity(request=request).items()):
        if identity_type in NOT_SUPPRESSIBLE:
            continue
        normal = _normal(identity_type, value)
        if not normal:
            continue
        entry, _ = SuppressionEntry.objects.get_or_create(
            identity_type=identity_type,
            value_hash=suppression_hash(identity_type, normal),
            defaults={"request": request},
        )
        entries.append(entry)
    return entries


@dataclass
class ReapplySummary:
    since: datetime | None
    dry_run: bool
    ledger: int = 0
    scanned: int = 0  # identity values read from the stores
    matched: int = 0  # distinct erased identifiers found again
    # store -> collection -> count name -> n
    erased: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # store -> why it was not scanned

    def to_json(self) -> dict[str, Any]:
        return {
            "since": self.since,
            "dry_run": self.dry_run,
            "ledger": self.ledger,
            "scanned": self.scanned,
            "matched": self.matched,
            "erased": self.erased,
            "skipped": self.skipped,
        }

    @property
    def records(self) -> int:
        return sum(
            n
            for per in self.erased.values()
            for counts in per.values()
            for name, n in counts.items()
            if name in ("deleted", "masked", "nullified")
        )


Progress = Callable[[str], None]


def suppression_reapply(
    *,
    since: datetime | None,
    store_names: list[str] | None = None,
    batch: int = 1000,
    dry_run: bool = False,
    actor: str = SYSTEM,
    progress: Progress | None = None,
) -> ReapplySummary:
    """Erase again the people in the suppression ledger whose records came back (a restored
    backup): scan every identity field of every store, in batches of `batch` values, hash each
    value's normal form and look the hashes up in the ledger; erase each match in every store
    through the engine, in the stores' order. Only `since` (the backup's time) onwards, when given.

    The scan keeps nothing: each batch of values is hashed, compared and dropped; only the values
    that match an erased identifier are held until they are erased again.
    """
    say = progress or (lambda message: None)
    summary = ReapplySummary(since=since, dry_run=dry_run)
    ledger = SuppressionEntry.objects.all()
    if since is not None:
        ledger = ledger.filter(created_at__gte=since)
    summary.ledger = ledger.count()
    types = set(ledger.values_list("identity_type", flat=True).distinct())
    if not types:
        say("The suppression ledger has no entries to reapply.")
        return summary
    say(f"Ledger: {summary.ledger} erased identifier(s) of type {', '.join(sorted(types))}.")
    stores = ConnectedStore.objects.filter(enabled=True).order_by("name")
    if store_names:
        unknown = sorted(set(store_names) - set(stores.values_list("name", flat=True)))
        if unknown:
            raise ServiceError(f"No enabled store named {', '.join(unknown)}.", field="store")
    matches: dict[tuple[str, str], int] = {}  # (type, normal value) -> ledger entry id
    with ExitStack() as stack:
        connectors = open_connectors(stack)
        for store in stores:
            if store_names and store.name not in store_names:
                continue
            connector = connectors.get(store.name)
            if connector is None:
                summary.skipped[store.name] = "a manual store: its owner checks it by hand"
                continue
            if type(connector).scan_values is Connector.scan_values:
                summary.skipped[store.name] = (
                    f"{connector.kind} stores cannot list their identity values; "
                    "ask the recipient to reapply its own erasures"
                )
                say(f"{store.name}: skipped ({summary.skipped[store.name]})")
                continue
            for collection in connector.store_map.collections.values():
                for field_name, identity_type in collection.identity_fields().items():
                    if identity_type not in types or identity_type in NOT_SUPPRESSIBLE:
                        continue
                    scanned = found = 0
                    for values in connector.scan_values(collection, field_name, batch=batch):
                        scanned += len(values)
                        found += _match_batch(ledger, identity_type, values, matches)
                        say(
                            f"{store.name}.{collection.name}.{field_name}: {scanned} value(s) "
                            f"scanned, {found} erased identifier(s) found"
                        )
                    say(
                        f"{store.name}.{collection.name}.{field_name}: done, {scanned} value(s) "
                        f"read, {found} erased identifier(s) found"
                    )
                    summary.scanned += scanned
        summary.matched = len(matches)
        say(f"{summary.matched} erased identifier(s) found again in the stores.")
        if not dry_run and matches:
            _erase_matches(connectors, matches, summary, say)
    with transaction.atomic():
        audit_record(action="suppression.reapplied", actor=actor, details=summary.to_json())
    return summary


def _match_batch(ledger, identity_type: str, values: list[Any], matches: dict) -> int:
    hashed: dict[str, str] = {}
    for value in values:
        normal = _normal(identity_type, value)
        if normal:
            hashed[suppression_hash(identity_type, normal)] = normal
    if not hashed:
        return 0
    found = 0
    for entry_id, value_hash in ledger.filter(
        identity_type=identity_type, value_hash__in=list(hashed)
    ).values_list("pk", "value_hash"):
        matches[(identity_type, hashed[value_hash])] = entry_id
        found += 1
    return found


def _erase_matches(
    connectors: dict[str, Connector], matches: dict, summary: ReapplySummary, say: Progress
) -> None:
    maps = {name: connector.store_map for name, connector in connectors.items()}
    order = store_order(maps)
    for done, ((identity_type, value), entry_id) in enumerate(sorted(matches.items()), start=1):
        for store in order:
            result = _erase_store(connectors, {identity_type: value}, store=store)
            for name, counts in _collections_of(result.to_json()).items():
                target = summary.erased.setdefault(store, {}).setdefault(name, {})
                for count_name in COUNT_NAMES:
                    target[count_name] = target.get(count_name, 0) + int(
                        counts.get(count_name, 0) or 0
                    )
        SuppressionEntry.objects.filter(pk=entry_id).update(
            last_reapplied_at=timezone.now(), reapplied=F("reapplied") + 1
        )
        say(f"erased again: {done}/{len(matches)}")
