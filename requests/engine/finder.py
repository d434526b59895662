"""The finder: every record of one person, in every connected store.

`find_person(stores, identity)` starts from each identity field whose type the person gave
(normalised: trimmed lower-case emails, E.164 phones, collapsed case-folded names) and walks the
reference graph (`requests.engine.graph`) across stores: the person's customers give the ids
looked up in `invoice.customer_id`, the invoices the ids looked up in `invoice_line.invoice_id`,
and a CRM in another store keyed by the shop's customer id is reached through its cross-store
reference. Each (collection, field, value) is looked up once, FIND_BATCH values per query.

Results: counts per store and collection and a small sample of each (the staff preview), and
every record streamed to `sink(record)` as it arrives, with its key: access (issue 5) writes them
to the package as they come; erasure (issue 4) collects the keys per collection it must delete.

Why memory stays bounded whatever the size of the stores, and nearly whatever the person holds:
- rows are never kept: each is counted, passed to the sink and dropped; only `sample_size` rows
  per collection are kept for the preview;
- values waiting to be looked up are kept per lookup target and sent as soon as FIND_BATCH of them
  are ready, even while the results that produced them are still streaming (a nested lookup on
  its own connection, up to MAX_NESTED_LOOKUPS deep); so a person with ten million invoice lines
  costs one batch of invoice ids at a time, not ten million ids;
- the walk remembers values only where the same value could come twice (a target fed by several
  references, or by a column that is not its collection's key, such as the `track_id` of many
  invoice lines) and record keys only in collections with several ways in (found by email and by
  reference): both are the person's own values, never the store's;
- connectors stream their results in driver chunks (see requests.connectors.sql.find).
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from requests.engine.graph import Entry, Node, WalkPlan, walk_plan
from requests.engine.normalise import email_forms, normalise
from requests.engine.store import (
    FIND_BATCH,
    Connector,
    PermanentStoreError,
    Record,
    StoreError,
    TransientStoreError,
)

# How deep lookups may nest while the results that fed them are still open. Each level holds
# one connection and one driver chunk; deeper than this, values wait for the outer result to end.
MAX_NESTED_LOOKUPS = 6

DEFAULT_SAMPLE_SIZE = 5

RecordSink = Callable[[Record], None]

# Walk plans by the maps they were made from, so a worker searching person after person with the
# same connectors plans once. A map is never changed in place once searched (maps are loaded per
# job); the cache holds the maps themselves, so the ids in its keys stay theirs.
_PLANS: dict[tuple, tuple[WalkPlan, tuple]] = {}
_PLAN_CACHE_SIZE = 64


@dataclass
class FindResult:
    # store -> collection -> number of the person's records (every collection the walk reached).
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    # store -> collection -> the first few records, for the staff preview.
    samples: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)
    lookups: int = 0  # queries (lookups) made, all stores together
    # store -> why it could not be searched (only with skip_failed_stores; the result is then
    # incomplete for that store and whatever is reached through it).
    errors: dict[str, str] = field(default_factory=dict)
    transient: set[str] = field(default_factory=set)  # stores in `errors` worth a retry
    unsearchable: list[str] = field(default_factory=list)  # stores handled by hand (manual)
    warnings: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(sum(per.values()) for per in self.counts.values())

    @property
    def complete(self) -> bool:
        return not self.errors

    def count(self, store: str, collection: str) -> int:
        return self.counts.get(store, {}).get(collection, 0)

    def to_json(self) -> dict[str, Any]:
        """The preview as JSON-ready data (sample values as text where JSON has no type)."""
        return {
            "total": self.total,
            "complete": self.complete,
            "stores": {
                store: {
                    "collections": {
                        name: {
                            "count": count,
                            "sample": [
                                {k: json_value(v) for k, v in row.items()}
                                for row in self.samples.get(store, {}).get(name, [])
                            ],
                        }
                        for name, count in per.items()
                    },
                    **({"error": self.errors[store]} if store in self.errors else {}),
                }
                for store, per in self.counts.items()
            },
            "errors": dict(self.errors),
            "unsearchable": list(self.unsearchable),
            "warnings": list(self.warnings),
            "lookups": self.lookups,
        }


def json_value(value: Any) -> Any:
    """A JSON-ready form of a value read from a store."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return {"base64": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [json_value(v) for v in value]
    return str(value)


def normalise_identity(
    identity: Mapping[str, str | Sequence[str]], *, phone_region: str | None = None
) -> tuple[dict[str, list[str]], list[str]]:
    """Identity values in normal form by type, and warnings (never quoting a value)."""
    out: dict[str, list[str]] = {}
    warnings: list[str] = []
    for identity_type, raw in identity.items():
        values = [raw] if isinstance(raw, str) else list(raw or [])
        normal: list[str] = []
        for value in values:
            if value is None or not str(value).strip():
                continue
            try:
                one = normalise(identity_type, str(value), region=phone_region)
            except ValueError:
                warnings.append(f"a {identity_type} value could not be read; it was not searched")
                continue
            normal.extend(email_forms(one) if identity_type == "email" else [one])
        if normal:
            out[identity_type] = list(dict.fromkeys(normal))
    return out, warnings


def find_person(
    stores: Mapping[str, Connector],
    identity: Mapping[str, str | Sequence[str]],
    *,
    sink: RecordSink | None = None,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    phone_region: str | None = None,
    skip_failed_stores: bool = False,
) -> FindResult:
    """Find every record of the person in `stores` (name -> connector, each with its map).

    `identity`: type -> value or values (`{"email": "LUISG@Embraer.com.br "}`), normalised here.
    `sink`: called with each record (store, collection, key, data) as it is found; use it to
    stream an access package or collect keys for erasure. Records are never held otherwise.
    `phone_region`: how numbers without a country code are read (ISO code such as "FR").
    `skip_failed_stores`: a store that fails is reported in `errors` and the walk goes on (for
    the preview); by default its StoreError is raised, naming the store.
    """
    values, warnings = normalise_identity(identity, phone_region=phone_region)
    walk = _Walk(stores, values, sink, sample_size, phone_region, skip_failed_stores)
    walk.result.warnings.extend(warnings)
    walk.run()
    return walk.result


def _cached_plan(maps: dict, identity_types) -> WalkPlan:
    key = (tuple((name, id(m)) for name, m in maps.items()), frozenset(identity_types))
    hit = _PLANS.get(key)
    if hit is not None:
        return hit[0]
    plan = walk_plan(maps, identity_types)
    if len(_PLANS) >= _PLAN_CACHE_SIZE:
        _PLANS.clear()
    _PLANS[key] = (plan, tuple(maps.values()))
    return plan


def _value_key(value: Any) -> Any:
    # 42 from one store and "42" from another are the same reference value.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _row_fingerprint(row: dict[str, Any]) -> Any:
    return tuple(sorted((k, repr(v)) for k, v in row.items()))


class _Walk:
    def __init__(self, stores, identity, sink, sample_size, phone_region, skip_failed):
        self.result = FindResult()
        self.connectors: dict[str, Connector] = {}
        for name, connector in stores.items():
            if connector.searchable:
                self.connectors[name] = connector
            else:
                self.result.unsearchable.append(name)
        self.maps = {name: c.store_map for name, c in self.connectors.items()}
        self.identity = identity
        self.plan: WalkPlan = _cached_plan(self.maps, identity)
        self.sink = sink
        self.sample_size = sample_size
        self.phone_region = phone_region
        self.skip_failed = skip_failed
        self.pending: dict[Entry, list[Any]] = {}
        self.seen_values: dict[Entry, set[Any]] = {e: set() for e in self.plan.remember}
        self.seen_keys: dict[Node, set[Any]] = {n: set() for n in self.plan.multi_entry}
        self.open_streams: dict[str, int] = dict.fromkeys(self.connectors, 0)
        for name in self.connectors:
            # Every store searched shows in the preview, with nothing found where that is so.
            self.result.counts.setdefault(name, {})
            self.result.samples.setdefault(name, {})
        for node in self.plan.reachable:
            self.result.counts.setdefault(node.store, {})[node.collection] = 0
            self.result.samples.setdefault(node.store, {})[node.collection] = []

    def run(self) -> None:
        for seed in self.plan.seeds:
            self.pending.setdefault(seed, []).extend(self.identity[seed.identity])
        while True:
            entry = self._next_pending()
            if entry is None:
                return
            buffer = self.pending[entry]
            batch, self.pending[entry] = buffer[:FIND_BATCH], buffer[FIND_BATCH:]
            self._lookup(entry, batch, 0)

    def _next_pending(self) -> Entry | None:
        best, size = None, 0
        for entry, buffer in self.pending.items():
            if len(buffer) > size:
                best, size = entry, len(buffer)
        return best

    def _can_nest(self, entry: Entry, depth: int) -> bool:
        if depth >= MAX_NESTED_LOOKUPS:
            return False
        store = entry.node.store
        return self.connectors[store].concurrent_finds or self.open_streams[store] == 0

    def _lookup(self, entry: Entry, values: list[Any], depth: int) -> None:
        node = entry.node
        if node.store in self.result.errors:
            return
        connector = self.connectors[node.store]
        collection = self.maps[node.store].collections[node.collection]
        key_fields = collection.key
        # Most collections have a one-field key: built without a generator, once per row.
        single_key = key_fields[0] if len(key_fields) == 1 else None
        key: tuple[Any, ...]
        edges = self.plan.edges_from.get(node, ())
        seen_keys = self.seen_keys.get(node)
        sample = self.result.samples[node.store][node.collection]
        sink, sample_size = self.sink, self.sample_size
        pending, seen_values = self.pending, self.seen_values
        found = 0
        via = "identity" if entry.identity else ("mention" if node.mentioned else "")
        self.result.lookups += 1
        self.open_streams[node.store] += 1
        try:
            if entry.identity:
                rows = connector.find_identity(
                    collection,
                    entry.field,
                    entry.identity,
                    values,
                    phone_region=self.phone_region,
                )
            else:
                rows = connector.find(collection, entry.field, values)
            for row in rows:
                if single_key is not None:
                    key = (row.get(single_key),)
                else:
                    key = tuple(row.get(k) for k in key_fields)
                if seen_keys is not None:
                    mark = key if key_fields else _row_fingerprint(row)
                    if mark in seen_keys:
                        continue
                    seen_keys.add(mark)
                found += 1
                if len(sample) < sample_size:
                    sample.append(row)
                if sink is not None:
                    sink(Record(node.store, node.collection, key, row, via))
                for edge in edges:
                    value = row.get(edge.source_field)
                    if value is None:
                        continue
                    target = edge.target
                    remembered = seen_values.get(target)
                    if remembered is not None:
                        mark = _value_key(value)
                        if mark in remembered:
                            continue
                        remembered.add(mark)
                    buffer = pending.get(target)
                    if buffer is None:
                        buffer = pending[target] = []
                    buffer.append(value)
                    if len(buffer) >= FIND_BATCH and self._can_nest(target, depth + 1):
                        pending[target] = []
                        self._lookup(target, buffer, depth + 1)
        except StoreError as exc:
            if getattr(exc, "store", None) is not None:
                raise  # already named by the nested lookup that failed
            message = f"store {node.store}: {exc}"
            if not self.skip_failed:
                error = (TransientStoreError if exc.transient else PermanentStoreError)(message)
                error.store = node.store
                raise error from None
            self.result.errors[node.store] = message
            if exc.transient:
                self.result.transient.add(node.store)
            for waiting in [e for e in self.pending if e.node.store == node.store]:
                del self.pending[waiting]
        finally:
            self.open_streams[node.store] -= 1
            self.result.counts[node.store][node.collection] += found
