"""Access requests: every record of the person, from every store, in one package they download.

1. Approval creates one access job per enabled store (`requests.services.jobs`). A job runs the
   finder across every enabled store, because a store's records can be reachable only through
   another's (the CRM's contacts through the shop's customer ids), and keeps this store's records,
   streaming them to a part, `packages/<reference>/parts/<store>.jsonl` in the package storage
   (`requests.engine.package.PartWriter` writes it on this machine's scratch disk; it is then
   stored whole, its files first, so a second delivery or a crash never leaves half a part, and a
   re-run replaces it). The job's counts
   per collection are its result. Manual stores wait for staff, who search the system by hand and
   confirm with a note (`job_confirm_manual`, shared by every kind, in
   `requests.services.job_staff`).
2. Once every job is done, the finaliser streams the parts into the ZIP (`write_package`):
   data.json, one CSV per collection, the person's files, index.html (the Art. 15 report in the
   request's language) and manifest.json, and records an `AccessPackage` that expires after
   PORTAL_PACKAGE_TTL_DAYS. Erasures of the same person held until this package existed are then
   moved on (see `requests.services.processing`).

The parts and the package live in the package storage (`requests.storage`): PORTAL_DATA_DIR on
one machine, or an S3-compatible bucket that workers on other machines (site queues) and the web
servers share. The finaliser reads the parts as streams and builds the ZIP on its scratch disk.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path, PurePath, PurePosixPath
from typing import IO, Any

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation

from requests import storage
from requests.assurance import searchable_identity
from requests.connectors.registry import connector_class
from requests.engine.ownership import find_owned
from requests.engine.package import (
    PackageError,
    PartSummary,
    PartWriter,
    csv_member_names,
    read_part,
    write_package,
)
from requests.engine.store import Connector, PermanentStoreError, Record, TransientStoreError
from requests.engine.storemap import Collection, StoreMap
from requests.filecrypt import ENCRYPTED_SUFFIX, encrypt_file
from requests.models import AccessPackage, ConnectedStore, DataRequest, Job, JobState
from requests.services import job_claims
from requests.services.audit import SYSTEM, audit_record
from requests.services.errors import ServiceError
from requests.services.jobs import JobOutcome, release_erasures_held_for
from requests.services.store_connections import kept_connectors
from requests.services.stores import store_map
from requests.states import Kind

log = logging.getLogger(__name__)

PACKAGES_FOLDER = "packages"
PACKAGE_FILE = "package.zip"
# The job's lease is looked at after this many records: often enough that a lease of a minute or
# two is renewed in time at any realistic store speed, rarely enough to cost nothing per record.
LEASE_CHECK_EVERY = 1000


class LeaseLost(PermanentStoreError):
    """The job's lease ran out and another worker took it; this run stops writing."""


# Names in the package storage (`requests.storage`), the same on every backend.


def package_prefix(reference: str) -> str:
    return f"{PACKAGES_FOLDER}/{reference}"


def parts_prefix(reference: str) -> str:
    return f"{package_prefix(reference)}/parts"


def part_name(reference: str, store_name: str) -> str:
    return f"{parts_prefix(reference)}/{store_name}.jsonl"


@contextmanager
def _scratch() -> Iterator[Path]:
    """A private folder on this machine for a part or package being built, removed after.

    Folders a killed worker left on this machine go first: a site's worker may never run the
    expiry sweep that also removes them."""
    try:
        storage.scratch_remove_stale(older_than=settings.CELERY_TASK_TIME_LIMIT)
        folder = storage.scratch_dir()
    except OSError as exc:
        raise ServiceError(
            f"The packages folder cannot be written ({exc.strerror or type(exc).__name__})."
        ) from None
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _storage_failed(exc: Exception) -> str:
    # The kind of error only: a storage's messages can name its host, bucket or paths.
    reason = getattr(exc, "strerror", None) or type(exc).__name__
    return f"the package storage could not be used ({reason})"


def _publish_part(reference: str, summary: PartSummary) -> None:
    """Store a committed part: its files first, then the part that names them, then drop the
    files of this store's earlier runs, which the new part no longer names."""
    prefix = parts_prefix(reference)
    try:
        if summary.files_dir:
            for part_file in summary.files:
                storage.put_file(
                    f"{prefix}/{summary.files_dir}/{part_file.spooled}",
                    Path(summary.file_name(part_file)),
                )
        storage.put_file(part_name(reference, summary.store), Path(summary.path))
        earlier = {name[len(prefix) + 1 :].split("/", 1)[0] for name in storage.names_under(prefix)}
        for folder in earlier:
            if folder.startswith(f"{summary.store}.files-") and folder != summary.files_dir:
                storage.delete_tree(f"{prefix}/{folder}")
    except storage.STORAGE_ERRORS as exc:
        raise TransientStoreError(_storage_failed(exc)) from None


def _open_stored(name: PurePath) -> IO[bytes]:
    return storage.open_stream(str(name))


def _stored_part(reference: str, store_name: str) -> PartSummary:
    name = part_name(reference, store_name)
    try:
        size = storage.size(name)
    except FileNotFoundError:
        raise PackageError(f"the part {store_name}.jsonl is missing") from None
    return read_part(PurePosixPath(name), open_file=_open_stored, size=size)


# --- the job in one store ----------------------------------------------------------------------


class _PartSink:
    """Receives every record the finder finds and keeps this job's store's, renewing the lease."""

    def __init__(self, job: Job, part: PartWriter, connector: Connector) -> None:
        self.job = job
        self.store = job.store.name
        self.part = part
        self._add = part.add
        self.connector = connector
        self._files = connector.reads_local_files
        self.seen = 0
        self._renew_every = settings.PORTAL_JOB_LEASE.total_seconds() / 4
        self._renewed = time.monotonic()

    def __call__(self, record: Record) -> None:
        # Called once per record of every store: kept to the bare minimum.
        if record.store == self.store:
            self._add(record.collection, record.data)
            if self._files:
                self._attach(record)
        self.seen += 1
        if not self.seen % LEASE_CHECK_EVERY:
            self.keep_lease()

    def keep_lease(self) -> None:
        if time.monotonic() - self._renewed < self._renew_every:
            return
        if not job_claims.job_renew_lease(job=self.job):
            raise LeaseLost("the job's lease ran out and another worker took it over")
        self._renewed = time.monotonic()

    def _attach(self, record: Record) -> None:
        collection = self.connector.store_map.collections.get(record.collection)
        path = record.data.get("path")
        if collection is None or not isinstance(path, str):
            return
        with self.connector.open_file(collection, path) as source:
            self.part.attach(record.collection, path, source)


def _find_into(identity: dict, connectors: dict[str, Connector], sink: _PartSink) -> None:
    """Run the finder over every store from the person's identity, handing each record to sink.

    A store that fails raises its StoreError (transient: the job is retried; permanent: staff
    see it): an access answer must be complete, never silently partial."""
    # Only the person's own rows in full; shared rows with the others' data withheld. Another
    # store that cannot be searched is left out rather than failing this store's job (issue 9).
    find_owned(
        connectors,
        identity,
        sink=sink,
        phone_region=settings.PORTAL_DEFAULT_PHONE_REGION,
        required=sink.store,
    )


def _manual_waiting_reason(store: ConnectedStore) -> str:
    system = store_map(store).system or (store.options or {}).get("system") or store.name
    return (
        f"Manual store: search {system} for the person's records, send them a copy, then confirm "
        f"with a note (POST /api/v1/staff/requests/<reference>/jobs/{store.name}/confirm/)."
    )


def access_execute(job: Job) -> JobOutcome:
    """Find the person's records in the job's store and write them to the store's part."""
    if connector_class(job.store.kind).is_manual:
        return JobOutcome(waiting_reason=_manual_waiting_reason(job.store))
    request = job.request
    with ExitStack() as stack:
        scratch = stack.enter_context(_scratch())
        # The job's own store is searched even if it was disabled after approval.
        connectors = stack.enter_context(kept_connectors(extra=job.store))
        part = stack.enter_context(
            PartWriter(scratch / f"{job.store.name}.jsonl", store=job.store.name)
        )
        sink = _PartSink(job, part, connectors[job.store.name])
        # Only what the person proved (or staff confirmed) is searched: never a typed phone.
        _find_into(searchable_identity(request=request), connectors, sink)
        sink.keep_lease()
        try:
            summary = part.commit()
        except PackageError as exc:
            raise ServiceError(str(exc)) from None
        _publish_part(request.reference, summary)
    return JobOutcome(counts=_job_counts(summary))


def _job_counts(summary: PartSummary) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {c.name: {"found": c.count} for c in summary.collections}
    for part_file in summary.files:
        counts.setdefault(part_file.collection, {"found": 0})
        counts[part_file.collection]["files"] = counts[part_file.collection].get("files", 0) + 1
    return counts


# --- the package -------------------------------------------------------------------------------


def art15_info(stored_map: StoreMap, collection: Collection | None) -> dict[str, Any]:
    """The Art. 15 information of one collection: its own, else the map's defaults."""
    base = stored_map.info
    own = collection.info if collection is not None else base
    categories: list[str] = []
    if collection is not None:
        for category in [
            *collection.categories,
            *(c for f in collection.fields.values() for c in f.categories),
        ]:
            if category not in categories:
                categories.append(category)
    return {
        "purposes": own.purposes or base.purposes,
        "legal_basis": own.legal_basis or base.legal_basis,
        "recipients": own.recipients or base.recipients,
        "retention": own.retention or base.retention,
        "source": own.source or base.source,
        "categories": categories,
    }


@dataclass
class _StoreReport:
    name: str
    kind: str
    system: str | None
    collections: list[dict[str, Any]]
    records: int
    files: int
    note: str = ""


def _reports(
    jobs: list[Job], parts: dict[str, PartSummary], csv_names: dict[tuple[str, str], str]
) -> list[_StoreReport]:
    reports = []
    for job in jobs:
        stored_map = store_map(job.store)
        if connector_class(job.store.kind).is_manual:
            reports.append(
                _StoreReport(
                    name=job.store.name,
                    kind=job.store.kind,
                    system=stored_map.system or (job.store.options or {}).get("system"),
                    collections=[
                        {"name": c.name, "count": None, "csv": None, **art15_info(stored_map, c)}
                        for c in stored_map.collections.values()
                    ],
                    records=0,
                    files=0,
                    note=str((job.counts or {}).get("note", "")),
                )
            )
            continue
        part = parts[job.store.name]
        files: dict[str, int] = {}
        for part_file in part.files:
            files[part_file.collection] = files.get(part_file.collection, 0) + 1
        reports.append(
            _StoreReport(
                name=job.store.name,
                kind=job.store.kind,
                system=None,
                collections=[
                    {
                        "name": c.name,
                        "count": c.count,
                        "files": files.get(c.name, 0),
                        "csv": csv_names[(part.store, c.name)],
                        **art15_info(stored_map, stored_map.collections.get(c.name)),
                    }
                    for c in part.collections
                ],
                records=part.records,
                files=len(part.files),
            )
        )
    return reports


def render_index(
    *, request: DataRequest, reports: list[_StoreReport], generated_at, expires_at
) -> str:
    with translation.override(request.language):
        return render_to_string(
            "package/index.html",
            {
                "request": request,
                "stores": reports,
                "total_records": sum(r.records for r in reports),
                "generated_at": generated_at,
                "expires_at": expires_at,
                "organisation": settings.PORTAL_ORGANISATION_NAME,
                "authority": settings.PORTAL_SUPERVISORY_AUTHORITY,
                "contact_email": settings.PORTAL_CONTACT_EMAIL,
                "portal_url": f"{settings.PORTAL_BASE_URL}/",
                "language": request.language,
            },
        )


def _package_details(package: AccessPackage) -> dict[str, Any]:
    return {
        "package_records": package.records,
        "package_size": package.size,
        "package_sha256": package.sha256,
        "package_expires_at": package.expires_at,
    }


def _encrypt_at_rest(path: Path) -> Path:
    """Replace the built ZIP by its encrypted form (PORTAL_PACKAGE_ENCRYPTION); downloads decrypt
    it on the fly (`requests.services.packages`)."""
    encrypted = path.with_name(path.name + ENCRYPTED_SUFFIX)
    try:
        encrypt_file(path, encrypted)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise PackageError(f"it could not be encrypted ({reason})") from None
    path.unlink()
    return encrypted


def access_finalise(request: DataRequest) -> dict:
    """Build the package from the parts, once. Raises ServiceError (staff must look) on failure.

    The request row stays locked while the package is written, so two deliveries of the advance
    task never build it twice; the parts are removed once the package is committed."""
    with ExitStack() as stack, transaction.atomic():
        locked = DataRequest.objects.select_for_update().get(pk=request.pk)
        existing = AccessPackage.objects.filter(request=locked).first()
        if existing is not None:
            return _package_details(existing)
        jobs = list(
            Job.objects.filter(request=locked, kind=Kind.ACCESS, state=JobState.DONE)
            .select_related("store")
            .order_by("store__name")
        )
        try:
            parts = {
                job.store.name: _stored_part(locked.reference, job.store.name)
                for job in jobs
                if not connector_class(job.store.kind).is_manual
            }
            ordered = [parts[name] for name in sorted(parts)]
            now = timezone.now()
            expires_at = now + settings.PORTAL_PACKAGE_TTL
            reports = _reports(jobs, parts, csv_member_names(ordered))
            index_html = render_index(
                request=locked, reports=reports, generated_at=now, expires_at=expires_at
            )
            scratch = stack.enter_context(_scratch())
            path = scratch / PACKAGE_FILE
            result = write_package(
                path=path,
                open_file=_open_stored,
                parts=ordered,
                index_html=index_html,
                meta={
                    "format": "dsr-access-package/1",
                    "organisation": settings.PORTAL_ORGANISATION_NAME,
                    "reference": locked.reference,
                    "generated_at": now.isoformat(),
                },
            )
            if settings.PORTAL_PACKAGE_ENCRYPTION:
                path = _encrypt_at_rest(path)
            stored = f"{package_prefix(locked.reference)}/{path.name}"
            storage.put_file(stored, path)
        except PackageError as exc:
            raise ServiceError(f"The access package could not be built: {exc}") from None
        except storage.STORAGE_ERRORS as exc:
            log.warning("package of request %s not stored: %s", locked.pk, type(exc).__name__)
            raise ServiceError(
                f"The access package could not be built: {_storage_failed(exc)}"
            ) from None
        package = AccessPackage.objects.create(
            request=locked,
            path=stored,
            size=result.size,
            sha256=result.sha256,
            records=result.records,
            counts=result.counts,
            created_at=now,
            expires_at=expires_at,
        )
        audit_record(
            action="package.created",
            actor=SYSTEM,
            request=locked,
            details={
                "records": result.records,
                "files": result.files,
                "stores": len(result.counts),
                "size": result.size,
                "sha256": result.sha256,
                "expires_at": expires_at,
            },
        )
        reference = locked.reference
        transaction.on_commit(partial(storage.delete_tree, parts_prefix(reference)), robust=True)
        release_erasures_held_for(access_request=locked)
    return _package_details(package)


# --- for staff ---------------------------------------------------------------------------------


def subject_history(*, request: DataRequest) -> dict[str, Any]:
    """The person's other requests, for staff: never a reason to refuse on its own (Art. 12(5))."""
    if not request.subject_key:
        return {"earlier_requests": 0, "same_kind_last_year": 0, "possibly_excessive": False}
    others = DataRequest.objects.filter(subject_key=request.subject_key).exclude(pk=request.pk)
    earlier = others.filter(received_at__lt=request.received_at)
    year_ago = request.received_at - timedelta(days=365)
    same_kind = earlier.filter(kind=request.kind, received_at__gte=year_ago).count()
    return {
        "earlier_requests": earlier.count(),
        "same_kind_last_year": same_kind,
        "possibly_excessive": same_kind + 1 >= settings.PORTAL_EXCESSIVE_REQUESTS_PER_YEAR,
    }
