"""What holds a job back: the rules, read only. `requests.services.jobs` applies them.

Two things hold a job (state HELD, `held_for` saying which):

- Access before erasure (`HeldFor.ACCESS`). When a person asked for a copy of their data and also
  for its erasure, the copy is made first. An erasure whose person (same `subject_key`) has a
  verified access request still open and without a package waits for that package; an access
  request closed without one (rejected, withdrawn) holds nothing any more.
- Order across stores (`HeldFor.ORDER`). When store B's map references store A, B's records are
  found through A's (the shop's customer ids lead to the CRM's contacts), so A must not be erased
  before B (`requests.engine.erasure.store_dependencies` reads the rule from the maps). A store
  waits while a store before it is not done; a downstream service that accepted the erasure counts
  as done (it has every identifier it needs).

The same rules hold jobs at the start and at a staff retry, and release them: a retry of two
dependent stores that both failed runs them in their order again.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from django.db import connection

from requests.connectors.registry import connector_class
from requests.engine.erasure import store_dependencies
from requests.engine.storemap import StoreMap
from requests.models import AccessPackage, DataRequest, HeldFor, Job, JobState
from requests.services.errors import ServiceError
from requests.services.stores import store_map
from requests.states import Kind, Status

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

# A hold: what the job is held for, and the reason staff read.
Hold = tuple[str, str]


def access_first(request: DataRequest) -> str | None:
    """The reference of the person's open access request whose package must exist before this
    erasure runs. Every approval of an erasure asks, so the statement is sent as it is: building
    it through the ORM was a fifth of the approval's CPU."""
    if request.kind != Kind.ERASURE or not request.subject_key:
        return None
    with connection.cursor() as cursor:
        cursor.execute(_access_first_sql(), [request.subject_key, Kind.ACCESS, request.pk])
        found = cursor.fetchone()
    return found[0] if found else None


@cache
def _access_first_sql() -> str:
    requests_meta, packages_meta = DataRequest._meta, AccessPackage._meta
    quote = connection.ops.quote_name

    def column(meta, name: str) -> str:
        return quote(meta.get_field(name).column)

    statuses = ", ".join(f"'{status}'" for status in ACCESS_FIRST_STATUSES)
    # Only the models' own table and column names, quoted, and the statuses (constants of this
    # module); the person's key and the request are parameters. `subject_key` is indexed.
    return (
        f"SELECT r.{column(requests_meta, 'reference')} FROM {quote(requests_meta.db_table)} r"  # noqa: S608
        f" WHERE r.{column(requests_meta, 'subject_key')} = %s"
        f" AND r.{column(requests_meta, 'kind')} = %s"
        f" AND r.{column(requests_meta, 'status')} IN ({statuses})"
        f" AND r.{column(requests_meta, 'id')} <> %s"
        f" AND NOT EXISTS (SELECT 1 FROM {quote(packages_meta.db_table)} p"
        f" WHERE p.{column(packages_meta, 'request')} = r.{column(requests_meta, 'id')})"
        f" ORDER BY r.{column(requests_meta, 'received_at')} LIMIT 1"
    )


def request_maps(request: DataRequest, jobs: Iterable[Job] | None = None) -> dict[str, StoreMap]:
    """The maps of the stores the request has jobs in (an unreadable map counts as empty: its
    job fails with the map's problem). `jobs`: the request's jobs with their stores, when the
    caller read them already."""
    if jobs is None:
        jobs = Job.objects.filter(request=request).select_related("store")
    maps = {}
    for job in jobs:
        try:
            maps[job.store.name] = store_map(job.store)
        except ServiceError:
            maps[job.store.name] = StoreMap()
    return maps


def erasure_order(request: DataRequest) -> dict[str, list[str]]:
    """For each store that waits: the stores erased before it."""
    order = store_dependencies(request_maps(request))
    return {store: sorted(befores) for store, befores in sorted(order.items()) if befores}


def order_reason(store: str, befores: Iterable[str]) -> str:
    names = ", ".join(sorted(befores))
    return (
        f"Waits for the erasure in {names}: records there are found through {store}'s, so "
        f"{store} is erased after."
    )


def _prerequisite_done(job: Job | None) -> bool:
    if job is None or job.state == JobState.DONE:
        return True
    downstream = (job.counts or {}).get("downstream")
    # A downstream service that accepted the erasure has every identifier it needs.
    return (
        job.state == JobState.WAITING
        and connector_class(job.store.kind).erases_by_identity
        and isinstance(downstream, dict)
        and bool(downstream.get("jobs"))
    )


def holds_for(
    request: DataRequest, jobs: list[Job], *, others: bool | None = None
) -> dict[int, Hold]:
    """Which of `jobs` (about to run, or held) must wait, and for what: {job id: hold}.
    `others`: whether the request has jobs besides these, when the caller knows (None: look)."""
    if request.kind != Kind.ERASURE or not jobs:
        return {}
    access = access_first(request)
    if access is not None:
        reason = HELD_FOR_ACCESS.format(reference=access)
        return {job.pk: (HeldFor.ACCESS, reason) for job in jobs}
    if len(jobs) < 2:
        if others is None:
            others = Job.objects.filter(request=request).exclude(pk=jobs[0].pk).exists()
        if not others:  # a single store orders nothing
            return {}
    every = list(Job.objects.filter(request=request).select_related("store"))
    order = store_dependencies(request_maps(request, every))
    by_store = {job.store.name: job for job in every}
    holds = {}
    for job in jobs:
        waiting_for = {
            before
            for before in order.get(job.store.name, set())
            if not _prerequisite_done(by_store.get(before))
        }
        if waiting_for:
            holds[job.pk] = (HeldFor.ORDER, order_reason(job.store.name, waiting_for))
    return holds
