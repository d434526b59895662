"""What a request would find or erase in each store, for staff before they decide."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

from django.conf import settings

from requests.assurance import identifier_states, searchable_identity, unproven_identity
from requests.engine.erasure import loop_warnings
from requests.engine.finder import find_person, json_value
from requests.engine.ownership import find_owned
from requests.engine.store import StoreError
from requests.models import ConnectedStore, DataRequest
from requests.services.candidates import ProvenRecords, find_candidates
from requests.services.errors import ServiceError
from requests.services.stores import (
    UNSEARCHABLE_KINDS,
    open_connectors,
    preview_add_store_failures,
    store_map,
)
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
        # What the package and the erasure will see: the same classification (issue 9).
        working = {n: c for n, c in connectors.items() if n not in result.errors}
        ownership = _classified_samples(working, searchable_identity(request=request), result)
    preview = result.to_json()
    preview_add_store_failures(preview, failures)
    proven.annotate(preview)
    preview["identifiers"] = identifier_states(request=request)
    preview["candidates"] = candidates
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
    preview["erasure_warnings"] = {
        name: warnings
        for name, stored_map in maps.items()
        if (warnings := loop_warnings(name, stored_map))
    }
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
