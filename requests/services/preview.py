"""What a request would find or erase in each store, for staff before they decide."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

from django.conf import settings

from requests.assurance import identifier_states, searchable_identity, unproven_identity
from requests.engine.finder import find_person, json_value
from requests.engine.ownership import find_owned
from requests.engine.store import StoreError
from requests.models import ConnectedStore, DataRequest
from requests.services.candidates import ProvenRecords, find_candidates
from requests.services.errors import ServiceError
from requests.services.store_checks import redact
from requests.services.store_connections import open_connectors
from requests.services.store_health import store_readiness_of
from requests.services.stores import UNSEARCHABLE_KINDS, live_stores, store_map
from requests.states import Status

PREVIEW_SAMPLE_SIZE = 3


def _classified_samples(connectors, identity, result) -> dict:
    """Ownership counts per store and collection, and samples as the package shows them (the
    person's rows in full, shared rows with the others' data withheld) in place of the walk's."""
    samples: dict[str, dict[str, list]] = {}

    def keep(record) -> None:
        bucket = samples.setdefault(record.store, {}).setdefault(record.collection, [])
        if len(bucket) < PREVIEW_SAMPLE_SIZE:
            bucket.append({k: json_value(v) for k, v in record.data.items()})

    try:
        ownership = find_owned(
            connectors, identity, sink=keep, phone_region=settings.PORTAL_DEFAULT_PHONE_REGION
        )
    except StoreError as exc:
        result.warnings.append(f"ownership could not be decided: {exc}")
        return {}
    for store, per in result.samples.items():
        for name in per:
            per[name] = samples.get(store, {}).get(name, [])
    return ownership.counts()


def _add_store_failures(preview: dict[str, Any], failures: dict[str, str]) -> None:
    """Report, in a preview, the stores that could not be opened (each under its own name) and
    hide the addresses in the errors of those that failed while searched."""
    urls = dict(live_stores().values_list("name", "url"))
    errors = preview.setdefault("errors", {})
    for name, message in list(errors.items()):
        errors[name] = redact(message, urls.get(name, ""))
        entry = preview.get("stores", {}).get(name)
        if entry is not None and "error" in entry:
            entry["error"] = errors[name]
    for name, message in failures.items():
        errors[name] = message
        preview.setdefault("stores", {}).setdefault(name, {"collections": {}})["error"] = message
    if failures:
        preview["complete"] = False


def request_preview(*, request: DataRequest) -> dict[str, Any]:
    """Counts per store and collection with a small sample; a failing store is reported, not fatal.

    Searched by the proven identifiers only; records reached only by the others are `candidates`
    (counts, no samples), and records whose identity fields differ from what the person gave
    are counted in each collection's `identity_mismatch`.

    For an erasure, each collection also says what erasure would do there (delete, mask, hold).
    """
    if request.status in {Status.AWAITING_VERIFICATION, Status.EXPIRED}:
        raise ServiceError("The identity is not verified: nothing is searched before that.")
    if not request.identity:
        raise ServiceError("This request's identity data were purged.")
    with ExitStack() as stack:
        failures: dict[str, str] = {}  # a store that cannot be opened is named, not fatal
        connectors = open_connectors(stack, failures=failures)
        region = settings.PORTAL_DEFAULT_PHONE_REGION
        # Only proven identifiers are searched; the others only find candidates, shown apart.
        proven = ProvenRecords(connectors, request.identity, region)
        result = find_person(
            connectors,
            searchable_identity(request=request),
            sink=proven,
            sample_size=PREVIEW_SAMPLE_SIZE,
            phone_region=region,
            skip_failed_stores=True,
        )
        candidates = find_candidates(
            connectors, unproven_identity(request=request), proven, phone_region=region
        )
        maps = {name: connector.store_map for name, connector in connectors.items()}
        kinds = {name: connector.kind for name, connector in connectors.items()}
        # What the package and the erasure will see: the same classification (issue 9).
        working = {n: c for n, c in connectors.items() if n not in result.errors}
        ownership = _classified_samples(working, searchable_identity(request=request), result)
    preview = result.to_json()
    _add_store_failures(preview, failures)
    proven.annotate(preview)
    preview["identifiers"] = identifier_states(request=request)
    preview["candidates"] = candidates
    # What erasure will refuse or do differently in each store, in `stores check`'s words.
    readiness = {name: store_readiness_of(name, kinds[name], maps) for name in maps}
    for store_name, store in preview["stores"].items():
        stored_map = maps.get(store_name)
        for collection_name, entry in store["collections"].items():
            collection = stored_map.collections.get(collection_name) if stored_map else None
            classified = ownership.get(store_name, {}).get(collection_name)
            if classified is None and collection is not None and entry["count"]:
                # Rows whose ownership followed from the walk: the person's, or catalogue data.
                what = "reference" if collection.effective_role == "reference" else "alone"
                classified = {"alone": 0, "shared": 0, "reference": 0, "reasons": {}}
                classified[what] = entry["count"]
            if classified is not None:
                entry["ownership"] = classified
                entry["count"] = classified["alone"] + classified["shared"]
                entry["count"] += classified["reference"]
            if collection is not None:
                entry["erasure"] = collection.erasure.action.value
                if collection.erasure.action == "delete":
                    # What a row of the person's that a kept row still points at gets instead.
                    entry["erasure_fallback"] = collection.erasure.fallback.value
                if collection.erasure.basis:
                    entry["hold_basis"] = collection.erasure.basis
                instead = readiness[store_name].erasure_instead.get(collection_name)
                if instead is not None:
                    # "mask" (a loop no nullable reference breaks) or "refuse" (no key).
                    entry["erasure_instead"] = instead
    preview["erasure_warnings"] = {
        name: [*ready.problems, *ready.warnings]
        for name, ready in readiness.items()
        if ready.problems or ready.warnings
    }
    preview["erasure_notes"] = {name: r.notes for name, r in readiness.items() if r.notes}
    preview["total"] = sum(
        entry["count"]
        for store in preview["stores"].values()
        for entry in store["collections"].values()
    )
    preview["manual"] = [
        {"store": store.name, "system": store_map(store).system or store.name}
        for store in ConnectedStore.objects.filter(enabled=True, kind__in=UNSEARCHABLE_KINDS)
    ]
    preview["kind"] = request.kind
    return preview
