"""What the preview shows besides the person's records: candidates and identity mismatches.

- Candidates: records found only by identifiers nobody proved (a typed phone, account id, any
  name). They are counted per store and collection, never sampled (they may be someone else's),
  and stay out of every package and erasure until staff confirm the identifier
  (`requests.services.identifiers.request_confirm_identity`).
- Mismatches: records found by a proven identifier whose other identity fields (a phone, a name)
  differ from what the person gave. Counted per collection with the types that differ, no
  values: staff look before they approve.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from requests.engine.finder import find_person, normalise_identity
from requests.engine.normalise import national_digits, normalise
from requests.engine.store import Connector, Record


def _mark(record: Record) -> int:
    # Keys only (hashed), never the records: a preview of a person with millions of rows keeps
    # one integer per row found by the proven identifiers.
    ident = record.key or tuple(sorted((k, repr(v)) for k, v in record.data.items()))
    return hash((record.store, record.collection, repr(ident)))


def _agrees(identity_type: str, stored: Any, wanted: list[str], region: str | None) -> bool | None:
    """Whether a stored identity value is one the person gave; None when it cannot be read."""
    text = str(stored).strip()
    if not text:
        return None
    try:
        return normalise(identity_type, text, region=region) in wanted
    except ValueError:
        if identity_type != "phone":
            return None
    digits = "".join(ch for ch in text if ch.isdigit())
    if not digits:
        return None
    return any(digits.endswith(national_digits(w)) for w in wanted)


class ProvenRecords:
    """A finder sink for the search by proven identifiers: remembers which records it found and
    counts those whose identity fields disagree with what the person gave."""

    def __init__(
        self,
        connectors: Mapping[str, Connector],
        given: Mapping[str, str],
        phone_region: str | None,
    ) -> None:
        self.maps = {name: c.store_map for name, c in connectors.items()}
        self.given, _ = normalise_identity(given, phone_region=phone_region)
        self.region = phone_region
        self.marks: set[int] = set()
        self.mismatches: dict[tuple[str, str], dict[str, Any]] = {}
        self._fields: dict[tuple[str, str], dict[str, tuple[str, str | None]]] = {}

    def _identity_fields(self, store: str, collection: str) -> dict[str, tuple[str, str | None]]:
        """Each identity field the person gave a value for: its type and how its national phone
        numbers are read (the map's region, else the portal's)."""
        key = (store, collection)
        fields = self._fields.get(key)
        if fields is None:
            store_map = self.maps.get(store)
            spec = store_map.collections.get(collection) if store_map is not None else None
            fields = {
                name: (itype, store_map.phone_region_for(spec, name, self.region))
                for name, itype in (spec.identity_fields().items() if spec else ())
                if itype in self.given
            }
            self._fields[key] = fields
        return fields

    def __call__(self, record: Record) -> None:
        self.marks.add(_mark(record))
        differing = [
            itype
            for name, (itype, region) in self._identity_fields(
                record.store, record.collection
            ).items()
            if record.data.get(name) is not None
            and _agrees(itype, record.data[name], self.given[itype], region) is False
        ]
        if differing:
            entry = self.mismatches.setdefault(
                (record.store, record.collection), {"count": 0, "types": set()}
            )
            entry["count"] += 1
            entry["types"].update(differing)

    def annotate(self, preview: dict[str, Any]) -> None:
        """Add `identity_mismatch` (count and types, no values) to each collection of a preview."""
        total = 0
        for store_name, store in preview.get("stores", {}).items():
            for collection_name, entry in store.get("collections", {}).items():
                found = self.mismatches.get((store_name, collection_name))
                count = found["count"] if found else 0
                total += count
                entry["identity_mismatch"] = {
                    "count": count,
                    "types": sorted(found["types"]) if found else [],
                }
        preview["identity_mismatches"] = total


class _CandidateCounter:
    def __init__(self, proven: ProvenRecords) -> None:
        self.proven = proven.marks
        self.counts: dict[str, dict[str, int]] = {}

    def __call__(self, record: Record) -> None:
        if _mark(record) in self.proven:
            return
        per = self.counts.setdefault(record.store, {})
        per[record.collection] = per.get(record.collection, 0) + 1


def find_candidates(
    connectors: Mapping[str, Connector],
    unproven: Mapping[str, str],
    proven: ProvenRecords,
    *,
    phone_region: str | None,
) -> dict[str, Any]:
    """Records reached from the unproven identifiers that the proven ones did not reach."""
    counter = _CandidateCounter(proven)
    result = None
    if unproven:
        result = find_person(
            connectors,
            dict(unproven),
            sink=counter,
            sample_size=0,
            phone_region=phone_region,
            skip_failed_stores=True,
        )
    return {
        "total": sum(sum(per.values()) for per in counter.counts.values()),
        "identifier_types": sorted(unproven),
        "stores": {
            store: {"collections": {name: {"count": n} for name, n in sorted(per.items())}}
            for store, per in sorted(counter.counts.items())
        },
        "errors": sorted(result.errors) if result is not None else [],
        "note": (
            "Records reached only through identifiers nobody proved. They are not the person's "
            "until staff confirm the identifier (confirm-identity); a name alone never makes "
            "them so. They are never packaged or erased."
        ),
    }
