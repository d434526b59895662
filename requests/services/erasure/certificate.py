"""The finaliser of an erasure and its certificate: `erasure_finalise` runs the verification
sweep; when nothing but held records is left it writes the suppression ledger and issues the
certificate (what was done, where and when; counts and reasons, no personal data), whose digest
enters the audit chain with the completion event."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder

from requests.assurance import searchable_identity
from requests.connectors.registry import connector_class
from requests.engine.store import PermanentStoreError
from requests.engine.storemap import StoreMap
from requests.models import (
    AuditEvent,
    DataRequest,
    ErasureCertificate,
    Job,
    SuppressionEntry,
)
from requests.services import jobs as job_service
from requests.services.audit import SYSTEM, audit_event_sealed, audit_record
from requests.services.erasure.recipients import downstream_of, system_name
from requests.services.erasure.run import COUNT_NAMES, erasure_identity, result_collections
from requests.services.erasure.suppression import suppression_record
from requests.services.erasure.sweep import SweepResult, erasure_sweep
from requests.services.errors import NotFound, ServiceError
from requests.services.job_holds import request_maps
from requests.services.jobs import CompletionStep
from requests.services.stores import HANDED_OVER_KINDS
from requests.states import Kind, Status

CERTIFICATE_FORMAT = "dsr-erasure-certificate/1"


def _describe_left_over(left: dict[str, dict[str, int]]) -> str:
    parts = [
        f"{store}.{collection}: {count}"
        for store, per in sorted(left.items())
        for collection, count in sorted(per.items())
    ]
    return "; ".join(parts)


def erasure_finalise(request: DataRequest) -> dict | CompletionStep:
    """Verify that nothing but held records is left; raises ServiceError (staff must look) when
    something remains. Otherwise returns the step that writes the suppression ledger and issues
    the certificate in the completion's transaction (`request_advance`), so the certificate, the
    ledger and the completion are committed together."""
    existing = ErasureCertificate.objects.filter(request=request).first()
    if existing is not None:  # issued by a run that stopped before completing the request
        return _completion_details(existing)
    identity = erasure_identity(request)
    try:
        sweep = erasure_sweep(request=request, identity=identity)
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

    def issue(locked: DataRequest) -> dict[str, Any]:
        # The request is locked and still processing, so no other run issues one meanwhile.
        suppressed = suppression_record(request=locked, identity=identity)
        content = certificate_content(
            request=locked, sweep=sweep, suppressed=suppressed, identity=identity
        )
        certificate = ErasureCertificate.objects.create(
            request=locked,
            issued_at=sweep.ran_at,
            content=content,
            sha256=certificate_digest(content),
        )
        # The completion event carries these details: the certificate's digest and the sweep's
        # result enter the audit chain there.
        return _completion_details(certificate)

    return issue


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
    """The certificate's SHA-256, over its canonical JSON (sorted keys, no spaces)."""
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)
    return hashlib.sha256(canonical.encode()).hexdigest()


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
    if connector_class(job.store.kind).is_manual:
        entry["method"] = "by hand (manual store)"
        entry["system"] = system_name(job.store)
        entry["confirmed_by"] = counts.get("confirmed_by")
        entry["collections"] = []
        return entry
    entry["method"] = (
        "sent to the recipient (Art. 19)"
        if connector_class(job.store.kind).erases_by_identity
        else "erased by the portal"
    )
    collections = []
    for name, values in sorted(result_collections(counts).items()):
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
    downstream = downstream_of(job)
    if downstream:
        entry["recipient"] = {
            "status": downstream.get("status"),
            "erased": downstream.get("erased"),
            "checked_at": downstream.get("checked_at"),
        }
    return entry


def certificate_content(
    *,
    request: DataRequest,
    sweep: SweepResult,
    suppressed: list[SuppressionEntry],
    identity: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The certificate: what was done, where and when; counts and reasons, no personal data.
    `identity`: the searchable identity, when the caller read it already (only its types are
    named)."""
    if identity is None:
        identity = searchable_identity(request=request)
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
        AuditEvent.objects.filter(request=request, action="request.approved").order_by("id").last()
    )
    return {
        "format": CERTIFICATE_FORMAT,
        "organisation": settings.PORTAL_ORGANISATION_NAME,
        "reference": request.reference,
        "kind": request.kind,
        "identity_types": sorted(identity),
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
            if entry["kind"] in HANDED_OVER_KINDS
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
        AuditEvent.objects.filter(request=request, action="request.completed").order_by("id").last()
    )
    if completed is not None:
        # The certificate names the event's place in the chain, so it must have one.
        completed = audit_event_sealed(completed)
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
