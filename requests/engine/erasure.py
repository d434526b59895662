"""Erasure of one person's records in one connected store: planned, ordered, safe for others.

Entry points (plain Python, no Django; the erasure executor in requests.services.erasure.run calls
them once per (request, store) job):

    erase_person(connectors, identity, *, store, hash_key, phone_region=None, progress=None,
                 request_id=None) -> StoreErasure
    find_remaining(connectors, identity, *, phone_region=None)
        -> {store: {collection: {"remaining": n, "held": n}}}
    store_order(maps) -> [store, ...]      # the order in which to run the stores' jobs

`connectors` is every enabled store (name -> connector with its map), `identity` the verified
identity (type -> value or values, normalised here). `hash_key` keys the `hash` mask strategy
(HMAC-SHA256); `progress()` is called between batches (the caller renews its job lease there and
may raise to abort: a SQL store's transaction is then rolled back). `request_id` is sent to
webhook stores (their erase call is idempotent per request); without it the connector's
`request_id` option is used.

What `erase_person` does for `store`:
1. runs the finder over the stores that can lead to `store` or refer into it (a CRM reached
   through the shop's customer ids is the person's even though the CRM has no email column),
   keeping only keys: those of `store`'s records, and those of the person's records elsewhere
   that refer into `store` (so they are not mistaken for other people's);
   The same walk decides whose each row is (requests.engine.ownership): only rows that are the
   person's alone are erased; shared rows (another person owns them too, or they only mention
   the person) are never deleted or masked: their references to the person's rows that are
   deleted are set to null where the reference is nullable, and otherwise the person's row they
   point at takes its fallback; reference data is never touched;
2. plans per collection from the map: `delete`, `mask` (every field with a mask strategy, and
   identity and categorised fields without one, which get the column's default: null where
   allowed, else a keyed hash) or `hold` (Art. 17(3): the records stay, only fields with a mask
   strategy are masked, and the basis is reported);
3. executes in the reference graph's order, children before parents (`erasure_order`),
   through the connector's erasure primitives (requests.engine.store: `transaction`,
   `delete_keys`, `delete_unreferenced`, `mask_keys`, `nullify`, `referrers`), in batches of
   ERASE_BATCH keys; a SQL store does all of it in one transaction, whether or not the database
   enforces its foreign keys: the engine orders and checks, it never relies on cascades.
   Before deleting a batch it makes sure none of those records is still referred to by a record
   that survives the erasure (other people's, or the person's own held, masked or kept ones),
   through every reference in every map that points at the collection, whatever its `follow`:
   references from other stores by asking those stores first (`referrers`), references within
   the store in the DELETE itself (`... AND NOT EXISTS (...)`, so the common case costs one
   statement per batch; only records that stay are then looked up, to say why). A record of the
   person in another store whose collection is deleted does not count: its own job erases it.
   Records still referred to are never deleted (no cascade into anyone): the collection's
   `erasure.fallback` applies instead: `mask` the record, `nullify` the referring fields (the
   referring records' own foreign keys, only where every such reference is `nullable` and in
   the same store; else mask, and say so), or `keep` it, and a note says why.
   Loops of references (employee.reports_to, comment.parent_id) are ordered by leaving out their
   nullable references; the person's own records that are to be deleted have those links
   cleared first (only where they point at the person's records), so the person's reply to
   her own comment never keeps that comment.

Webhook stores are asked to erase (their answer may be `pending`: StoreErasure.status says so and
`jobs` names what to poll with the connector's `status`). Manual stores are not touched:
StoreErasure.status is `manual` and the caller makes a staff task.

Idempotence. Running `erase_person` again, after a crash or after success, is harmless:
- a SQL store's erasure is one transaction: after a crash nothing of it happened, and the next
  run starts afresh; after success, deleted records are simply not found again;
- Redis keys and files are removed one batch at a time; a second run finds what is left;
- a masked record is found again only while something still identifies it: its identity fields
  are masked (unless the map says `keep` for them), so a masked customer is no longer the
  person's and neither are the records reached only through it. Records that stay reachable
  (held records whose identity fields are kept, and what is reached through them) are found and
  handled again: `null` and `fixed` masks write the same values and count nothing (only records
  that change are counted); `hash` and `random` write new meaningless values and count again.
  Held records are reported as held on every run, and so are records kept by the `keep`
  fallback (their identity is untouched, so they are found again).
The order of the stores' jobs matters across stores: a store whose records are reached through
another store's records (the CRM through the shop) must be erased first, or its records can no
longer be found once the shop's customer is gone. `store_order` gives that order.

Masks: `null`; `fixed` (mask_value, cut to the column); `random` (random text of the value's
length, or a number of as many digits, a date, bytes of the same length); `hash` (HMAC-SHA256 of
the stored text keyed with `hash_key`, hex, cut to the column's length); `keep`.

StoreErasure holds counts and reasons only: never a value, a key or an identity.
"""

from __future__ import annotations

import decimal
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from requests.engine.finder import find_person, normalise_identity
from requests.engine.graph import (
    DeclaredReference,
    Node,
    blocking_cycles,
    declared_references,
    walk_edges,
)
from requests.engine.ownership import (
    ALONE,
    REASONS,
    SHARED,
    Ownership,
    RowCollector,
    decide,
    model_for,
    streaming_plan,
)
from requests.engine.store import Connector, FieldMask, PermanentStoreError, Record
from requests.engine.storemap import (
    Collection,
    EraseAction,
    Fallback,
    Follow,
    MaskStrategy,
    Role,
    StoreMap,
)

# Keys per erasure statement (DELETE ... WHERE key IN (...), UPDATE ..., referrer checks): a
# person's ten thousand records take ten statements per collection, while one statement stays
# far under every driver's bound-parameter limit and holds its locks for milliseconds.
ERASE_BATCH = 1000

Identity = Mapping[str, str | Sequence[str]]
Progress = Callable[[], None]

COUNTS = ("deleted", "masked", "nullified", "held", "kept")

# StoreErasure.status values.
DONE = "done"  # the store's erasure is complete
PENDING = "pending"  # a webhook service erases in the background: poll its jobs
MANUAL = "manual"  # nothing was executed: a person must do it (staff task)


@dataclass
class CollectionErasure:
    """What happened to the person's records in one collection (counts, never values)."""

    deleted: int = 0
    masked: int = 0
    # Set to null: shared records whose references to the person's deleted records were
    # cleared (the records stay), and the person's records deleted after clearing other
    # records' references to them (fallback nullify).
    nullified: int = 0
    held: int = 0  # kept under a retention hold (Art. 17(3)); see `basis`
    kept: int = 0  # kept by the `keep` fallback: others' records still refer to them
    basis: str | None = None  # the legal basis of a hold
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.deleted + self.masked + self.nullified + self.held + self.kept

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "deleted": self.deleted,
            "masked": self.masked,
            "nullified": self.nullified,
            "held": self.held,
            "kept": self.kept,
            "notes": list(self.notes),
        }
        if self.basis:
            out["basis"] = self.basis
        return out


@dataclass
class StoreErasure:
    """The result of erasing the person in one store: JSON-ready, free of personal data."""

    store: str
    kind: str
    status: str = DONE
    collections: dict[str, CollectionErasure] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)  # webhook jobs to poll while pending
    statements: int = 0  # erasure statements (or calls) made in the store, for tests/benchmarks

    def collection(self, name: str) -> CollectionErasure:
        return self.collections.setdefault(name, CollectionErasure())

    def count(self, what: str) -> int:
        """Total of one count (`deleted`, `masked`, ...) over the store's collections."""
        return sum(getattr(c, what) for c in self.collections.values())

    @property
    def changed(self) -> int:
        """Records deleted, masked or nullified by this run (held and kept change nothing)."""
        return self.count("deleted") + self.count("masked") + self.count("nullified")

    def to_json(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "kind": self.kind,
            "status": self.status,
            "collections": {name: c.to_json() for name, c in self.collections.items()},
            "totals": {what: self.count(what) for what in COUNTS},
            "notes": list(self.notes),
            "jobs": list(self.jobs),
        }


def erase_person(
    connectors: Mapping[str, Connector],
    identity: Identity,
    *,
    store: str,
    hash_key: bytes,
    phone_region: str | None = None,
    progress: Progress | None = None,
    request_id: str | None = None,
) -> StoreErasure:
    """Erase the person's records in `store` (see the module docstring); StoreError on failure,
    with `transient` saying whether a retry can help. An exception raised by `progress` stops
    the erasure (a SQL store's transaction is rolled back) and is raised unchanged."""
    target = connectors.get(store)
    if target is None:
        raise PermanentStoreError(f"store {store} is not among the connected stores")
    result = StoreErasure(store, target.kind)
    if not target.searchable:
        result.status = MANUAL
        system = target.store_map.system or target.options.get("system") or store
        result.notes.append(
            f"nothing was executed: a person must erase the records in {system} by hand and "
            "confirm (staff task)"
        )
        return result

    graph = _Graph(connectors)
    watch: dict[Node, set[str]] = {}
    for cname, collection in target.store_map.collections.items():
        node = Node(store, cname)
        incoming = graph.incoming.get(node, [])
        fields = {r.reference.field for r in incoming} | set(collection.reference_fields())
        watch.setdefault(node, set()).update(fields)
        for ref in incoming:
            watch.setdefault(ref.node, set())
        if target.erases_by_identity:
            # The service is sent the values its references point at (the shop's customer ids),
            # found wherever the referenced records are.
            for points_at in collection.reference_fields().values():
                referred = Node(points_at.store or store, points_at.collection)
                watch.setdefault(referred, set()).add(points_at.field)
    collector = _Collector(watch)
    searched = graph.stores_leading_to(set(watch))
    if target.erases_by_identity:
        find_person(
            {name: graph.connectors[name] for name in searched},
            identity,
            sink=_reporting(collector.add, progress),
            phone_region=phone_region,
            sample_size=0,
        )
        _erase_by_identity(target, collector, identity, phone_region, request_id, progress, result)
        return result
    # One walk feeds both: the erasure's keys and the ownership of the rows it reached. Rows of
    # collections whose ownership follows from the walk (a customer's orders) are the person's
    # by construction and are not collected twice; the others are decided once the walk ends.
    searched_connectors = {name: graph.connectors[name] for name in searched}
    searched_maps = {name: graph.maps[name] for name in searched}
    values, _ = normalise_identity(identity, phone_region=phone_region)
    streamed, collect, _, _ = streaming_plan(searched_maps, values)
    by_arrival = {
        (n.store, n.collection)
        for n, state in streamed.items()
        if state == ALONE and n not in collect
    }
    model = model_for(graph.maps)
    rows = RowCollector(model)
    add_key, add_row = collector.add, rows.add

    def sink(record: Record) -> None:
        add_key(record)
        if record.via == "mention" or (record.store, record.collection) not in by_arrival:
            add_row(record)

    find_person(
        searched_connectors,
        identity,
        sink=_reporting(sink, progress),
        phone_region=phone_region,
        sample_size=0,
    )
    ownership = decide(model, rows.rows, graph.connectors)
    collector.keep_alone(ownership, alone_by_arrival=by_arrival)
    _StoreRun(target, graph, collector, hash_key, progress, result, ownership).run()
    return result


def _reporting(sink: Callable[[Record], None], progress: Progress | None):
    """The search's sink, calling `progress` with each record found: a search can outlast the
    caller's lease (a big store, a slow one), and the caller renews it there (at its own pace)."""
    if progress is None:
        return sink

    def reporting(record: Record) -> None:
        sink(record)
        progress()

    return reporting


def find_remaining(
    connectors: Mapping[str, Connector],
    identity: Identity,
    *,
    phone_region: str | None = None,
) -> dict[str, dict[str, dict[str, int]]]:
    """The verification sweep: the finder again, over every store.

    Returns store -> collection -> {"remaining": n, "held": n} for every collection where
    something of the person was found. `held`: shared records and reference data (never the
    person's alone, so never erased: see requests.engine.ownership), records in collections
    under a hold (their
    identity fields were kept, so they are found again: expected), and records of collections
    whose fallback is `keep` that records of others (or the person's records that are kept)
    still refer to. Everything else is `remaining`: the erasure is not complete. Manual stores
    cannot be searched and are not in the answer.
    """
    graph = _Graph(connectors)
    kept_on_purpose: set[Node] = set()
    watch: dict[Node, set[str]] = {}
    for store, store_map in graph.maps.items():
        for cname, collection in store_map.collections.items():
            erasure = collection.erasure
            if erasure.action == EraseAction.DELETE and erasure.fallback == Fallback.KEEP:
                node = Node(store, cname)
                kept_on_purpose.add(node)
                incoming = graph.incoming.get(node, [])
                watch.setdefault(node, set()).update(r.reference.field for r in incoming)
                for ref in incoming:
                    watch.setdefault(ref.node, set())
    collector = _Collector(watch)
    model = model_for(graph.maps)
    rows = RowCollector(model)
    add_key, add_row = collector.add, rows.add

    def sink(record: Record) -> None:
        add_key(record)
        add_row(record)

    find_person(graph.connectors, identity, sink=sink, phone_region=phone_region, sample_size=0)
    ownership = decide(model, rows.rows, graph.connectors)
    # Shared rows and reference data were never the person's to erase: they are kept on
    # purpose (held), whatever still leads to them. Only rows that are the person's alone count.
    collector.keep_alone(ownership)
    out: dict[str, dict[str, dict[str, int]]] = {}
    for node, states in sorted(ownership.state.items()):
        found = sum(1 for state in states.values() if state == ALONE)
        others = len(states) - found
        if not found and not others:
            continue
        collection = graph.collection(node)
        held = others
        if collection.erasure.action == EraseAction.HOLD:
            held += found
        elif node in kept_on_purpose:
            records = sorted(collector.records.get(node, {}).items())
            for batch in _batches(records):
                blocks = _blocks(graph, collector, node, batch, graph.connectors[node.store])
                held += len(blocks)
        out.setdefault(node.store, {})[node.collection] = {
            "remaining": found + others - held,
            "held": held,
        }
    return out


def store_dependencies(maps: Mapping[str, StoreMap]) -> dict[str, set[str]]:
    """For each store, the stores whose erasure must be done before its own starts.

    Derived from cross-store references (`Reference.store`): with `follow: children` or `both`
    the referencing store's records are found through the referenced store's keys, so the
    referenced store waits for the referencing one; with `follow: parent` the referenced store's
    records are found through the referencing store's values, so it goes first. Stores in a loop
    of such references do not wait for one another (nothing could go first).
    """
    waits: dict[str, set[str]] = {name: set() for name in maps}
    for store, stored_map in maps.items():
        for collection in stored_map.collections.values():
            for reference in collection.reference_fields().values():
                other = reference.store
                if not other or other == store or other not in maps:
                    continue
                if reference.follow in (Follow.CHILDREN, Follow.BOTH):
                    waits[other].add(store)
                elif reference.follow == Follow.PARENT:
                    waits[store].add(other)

    def reaches(start: str, goal: str) -> bool:
        seen, stack = {start}, [start]
        while stack:
            for following in waits[stack.pop()]:
                if following == goal:
                    return True
                if following not in seen:
                    seen.add(following)
                    stack.append(following)
        return False

    return {
        store: {before for before in befores if not reaches(before, store)}
        for store, befores in waits.items()
    }


def store_order(maps: Mapping[str, StoreMap]) -> list[str]:
    """Store names in the order their erasure jobs should run: each after the stores it waits
    for (`store_dependencies`); stores that wait for none of the rest keep their names' order."""
    waits = store_dependencies(maps)
    order: list[str] = []
    remaining = sorted(maps)
    while remaining:
        ready = [s for s in remaining if not waits[s] - set(order)] or remaining[:1]
        for name in ready:
            order.append(name)
            remaining.remove(name)
    return order


# The reference graph of every searchable store ------------------------------------------------


class _Graph:
    def __init__(self, connectors: Mapping[str, Connector]) -> None:
        self.connectors = {n: c for n, c in connectors.items() if c.searchable}
        self.maps = {n: c.store_map for n, c in self.connectors.items()}
        # Every reference pointing at each collection, from any store, whatever its `follow`.
        self.incoming: dict[Node, list[DeclaredReference]] = defaultdict(list)
        for ref in declared_references(self.maps):
            target_map = self.maps.get(ref.target.store)
            if target_map is not None and ref.target.collection in target_map.collections:
                self.incoming[ref.target].append(ref)

    def collection(self, node: Node) -> Collection:
        return self.maps[node.store].collections[node.collection]

    def stores_leading_to(self, nodes: set[Node]) -> set[str]:
        """The stores the finder must search to find the person's records in `nodes`: theirs,
        and those of every collection the walk reaches them from."""
        back: dict[Node, set[Node]] = defaultdict(set)
        for edge in walk_edges(self.maps):
            back[edge.target.node].add(edge.source)
        seen = {n for n in nodes if n.store in self.maps}
        queue = list(seen)
        while queue:
            for source in back.get(queue.pop(), ()):
                if source not in seen:
                    seen.add(source)
                    queue.append(source)
        return {n.store for n in seen}


def _norm(value: Any) -> Any:
    # 42 from one driver and "42" from another store are the same reference value.
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | uuid.UUID | decimal.Decimal):
        return str(value)
    return value


def norm_key(key: Sequence[Any]) -> tuple:
    return _norm_key(key)


def _norm_key(key: Sequence[Any]) -> tuple:
    if len(key) == 1 and type(key[0]) is int:  # the common case, on the finder's hot path
        return (str(key[0]),)
    return tuple(_norm(v) for v in key)


class _Collector:
    """Keeps from the finder's stream only what the erasure needs: for each watched collection,
    each record's key and the values of a few named fields (references), never whole records."""

    def __init__(self, watch: Mapping[Node, set[str]]) -> None:
        self.fields = {node: tuple(sorted(fields)) for node, fields in watch.items()}
        self.index = {node: {f: i for i, f in enumerate(fs)} for node, fs in self.fields.items()}
        # node -> normalised key -> (key as found, values of the watched fields)
        self.records: dict[Node, dict[tuple, tuple[tuple, tuple]]] = defaultdict(dict)
        # (store, collection) -> (the records of that node, its watched fields): one dict look-up
        # per record streamed by the finder.
        self._targets = {
            (node.store, node.collection): (self.records[node], fields)
            for node, fields in self.fields.items()
        }

    def add(self, record: Record) -> None:
        target = self._targets.get((record.store, record.collection))
        if target is None:
            return
        records, fields = target
        data = record.data
        key = record.key
        records[_norm_key(key)] = (key, tuple([data.get(f) for f in fields]) if fields else ())

    def value(self, node: Node, values: tuple, field_name: str) -> Any:
        return values[self.index[node][field_name]]

    def keep_alone(self, ownership: Ownership, alone_by_arrival=frozenset()) -> None:
        """Forget every record that is not the person's alone: shared records and reference data
        are never erased, and count as other people's wherever they refer to the person's.
        `alone_by_arrival`: (store, collection) whose every record is (see streaming_plan)."""
        for node, records in self.records.items():
            if (node.store, node.collection) in alone_by_arrival:
                continue
            states = ownership.state.get(node, {})
            if () in records and ALONE in states.values():
                # No key: every record here is (), and ownership tells the rows apart by
                # content (ownership.RowIds). One of them the person's alone is enough for the
                # erasure to refuse the collection, as it must.
                continue
            for nkey in [k for k in records if states.get(k) != ALONE]:
                del records[nkey]

    def values_of(self, node: Node, field_name: str) -> list[Any]:
        if field_name not in self.index.get(node, {}):
            return []
        found = (self.value(node, v, field_name) for _, v in self.records.get(node, {}).values())
        return list(dict.fromkeys(v for v in found if v is not None))


def _batches(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), ERASE_BATCH):
        yield items[start : start + ERASE_BATCH]


def _sorted_records(records: Mapping[tuple, tuple]) -> list[tuple[tuple, tuple]]:
    # Keys in a stable order, so two erasures touching the same rows lock them in the same order.
    try:
        return sorted(records.items())
    except TypeError:
        return sorted(records.items(), key=lambda item: repr(item[0]))


@dataclass
class _Block:
    """Why one of the person's records cannot be deleted: who still refers to it."""

    others: int = 0  # records that are not the person's
    own: int = 0  # the person's own records that the erasure keeps (held, masked or kept)
    # The references it comes through, by (referring collection, field).
    refs: dict[tuple[Node, str], DeclaredReference] = field(default_factory=dict)


def _blocks(
    graph: _Graph,
    collector: _Collector,
    node: Node,
    batch: Sequence[tuple[tuple, tuple[tuple, tuple]]],
    same_store: Connector,
    *,
    in_transaction: bool = False,
    refs: Sequence[DeclaredReference] | None = None,
) -> dict[tuple, _Block]:
    """The records of `batch` (the person's, in `node`) that surviving records still refer to,
    through every reference in every map that points at the collection.

    Inside the erasure's transaction (`in_transaction`) every referrer found in the same store
    survives: the person's deletable records that referred to the batch are already gone
    (children first) or had their link cleared. Elsewhere, and in the sweep, a referrer that is
    the person's own record in a collection whose records are deleted does not count: it is
    erased by its own store's job (or, in the sweep, is itself left over).
    """
    blocks: dict[tuple, _Block] = {}
    for ref in graph.incoming.get(node, []) if refs is None else refs:
        referred = ref.reference.field
        by_value: dict[Any, list[tuple]] = defaultdict(list)
        originals: dict[Any, Any] = {}
        for nkey, (_, values) in batch:
            value = collector.value(node, values, referred)
            if value is not None:
                by_value[_norm(value)].append(nkey)
                originals.setdefault(_norm(value), value)
        if not by_value:
            continue
        same = ref.node.store == node.store
        connector = same_store if same else graph.connectors.get(ref.node.store)
        if connector is None:
            continue
        referring = graph.collection(ref.node)
        erased_elsewhere = referring.erasure.action == EraseAction.DELETE and (
            referring.erasure.fallback != Fallback.KEEP
        )
        own = collector.records.get(ref.node, {})
        rows = connector.referrers(referring, ref.field, list(originals.values()))
        for key, value in rows:
            nkey = _norm_key(key)
            mine = nkey in own
            if mine and erased_elsewhere and not (same and in_transaction):
                continue
            for target in by_value.get(_norm(value), ()):
                if ref.node == node and nkey == target:
                    continue  # a record referring to itself does not keep itself
                block = blocks.setdefault(target, _Block())
                if mine:
                    block.own += 1
                else:
                    block.others += 1
                block.refs[(ref.node, ref.field)] = ref
    return blocks


# One store's erasure ----------------------------------------------------------------------------


# Orders by the map they were computed from: a worker erasing person after person with the same
# connector orders its collections once, not per person (the loop analysis copies the map). The
# cache holds the maps themselves, so their ids stay theirs.
_ORDERS: dict[tuple[str, int], tuple[StoreMap, tuple]] = {}
_ORDER_CACHE_SIZE = 64


def erasure_order(
    store: str, store_map: StoreMap
) -> tuple[list[str], list[DeclaredReference], dict[str, str]]:
    """Collections children first, the references that order had to leave out, and the
    collections in loops no nullable reference breaks (name -> the loop, described).
    Computed once per map (see _ORDERS); each caller gets its own lists.

    Every reference inside the store orders the collections (the referring one first), except
    references from or to reference data (never deleted), a record's references to its own
    collection and nullable references inside a loop (employee.reports_to;
    customer.last_order_id <-> order.customer_id): those are returned, and erasure clears them on
    the person's own records before it deletes anything. A loop of references none of which is
    nullable (a store managed by one of its own staff, store.manager_id <-> staff.store_id) cannot
    be ordered: its collections are placed together, and the person's records in them are
    masked instead of deleted, or deleted at once where the database defers the loop's checks
    to the commit (Connector.defer_references, _StoreRun.delete_loop).
    """
    hit = _ORDERS.get((store, id(store_map)))
    if hit is None or hit[0] is not store_map:
        if len(_ORDERS) >= _ORDER_CACHE_SIZE:
            _ORDERS.clear()
        hit = _ORDERS[(store, id(store_map))] = (store_map, _erasure_order(store, store_map))
    order, late, looped = hit[1]
    return list(order), list(late), dict(looped)


def _erasure_order(
    store: str, store_map: StoreMap
) -> tuple[list[str], list[DeclaredReference], dict[str, str]]:
    refs = [
        r
        for r in declared_references({store: store_map})
        if r.target.store == store
        and r.target.collection in store_map.collections
        and Role.REFERENCE
        not in (
            store_map.collections[r.node.collection].effective_role,
            store_map.collections[r.target.collection].effective_role,
        )
    ]
    # A non-nullable reference to its own collection cannot be cleared: a loop (masked) below.
    late = [r for r in refs if r.node.collection == r.target.collection and r.reference.nullable]
    edges = [r for r in refs if r.node.collection != r.target.collection]

    def reaches(start: str, goal: str, edges: list[DeclaredReference]) -> bool:
        seen, stack = {start}, [start]
        while stack:
            current = stack.pop()
            for r in edges:
                if r.node.collection != current:
                    continue
                nxt = r.target.collection
                if nxt == goal:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        return False

    in_loops = [r for r in edges if reaches(r.target.collection, r.node.collection, edges)]
    cut = [r for r in in_loops if r.reference.nullable]
    late.extend(cut)
    edges = [r for r in edges if r not in cut]
    looped: dict[str, str] = {}
    for cycle in blocking_cycles(store, _without_reference_data(store_map)):
        loop = cycle.describe()
        for ref in cycle.references:
            looped.setdefault(ref.node.collection, loop)
            looped.setdefault(ref.target.collection, loop)
    edges = [
        r for r in edges if not (r.node.collection in looped and r.target.collection in looped)
    ]
    # A loop's collections are placed together, once what refers to any of them is: erasure may
    # delete a loop at once (see _StoreRun.delete_loop), after its referrers, before its parents.
    loops = {c: [m for m in looped if looped[m] == loop] for c, loop in looped.items()}
    order: list[str] = []
    remaining = list(store_map.collections)
    while remaining:
        placed = set(order)
        ready = [
            c
            for c in remaining
            if all(
                r.node.collection in placed
                for m in loops.get(c, [c])
                for r in edges
                if r.target.collection == m
            )
        ] or remaining[:1]  # unreachable: every loop left is broken above; never loop forever
        order.extend(ready)
        remaining = [c for c in remaining if c not in ready]
    return order, late, looped


def _without_reference_data(store_map: StoreMap) -> StoreMap:
    """The map without references from or to reference data (they never order a delete)."""
    copy = store_map.model_copy(deep=True)
    for collection in copy.collections.values():
        for spec in collection.fields.values():
            ref = spec.references
            if ref is None or ref.store:
                continue
            target = copy.collections.get(ref.collection)
            if Role.REFERENCE in (
                collection.effective_role,
                target.effective_role if target else None,
            ):
                spec.references = None
    return copy


def masked_fields(collection: Collection) -> list[str]:
    """The fields erasure overwrites when it masks a record of `collection` (for `stores check`
    and the preview, which say so before anyone approves: requests.engine.readiness)."""
    return [mask.field for mask in _full_masks(collection)]


def _hold_masks(collection: Collection) -> list[FieldMask]:
    """A hold masks only the fields the map gives a strategy: the rest is what the law keeps."""
    return [
        FieldMask(name, spec.mask, spec.mask_value)
        for name, spec in collection.fields.items()
        if spec.mask is not None and spec.mask != MaskStrategy.KEEP
    ]


def _full_masks(collection: Collection) -> list[FieldMask]:
    """Masking a record anonymises it: fields with a strategy get it; identity fields and fields
    with data categories get the column's default (null, or a keyed hash where null is not
    allowed). Keys and references stay: they are the record's structure, not its content."""
    out = _hold_masks(collection)
    named = {m.field for m in out} | {
        n for n, s in collection.fields.items() if s.mask == MaskStrategy.KEEP
    }
    structure = set(collection.key) | set(collection.reference_fields())
    for name, spec in collection.fields.items():
        if name in named or name in structure:
            continue
        if spec.identity or spec.categories:
            out.append(FieldMask(name))
    return out


def _describe_masks(masks: Sequence[FieldMask]) -> str:
    return ", ".join(f"{m.field} ({m.strategy.value if m.strategy else 'default'})" for m in masks)


@dataclass
class _Fallbacks:
    """What a collection's fallback did, summed over its batches, for the notes."""

    records: int = 0
    others: int = 0
    own: int = 0
    # The references it comes through, by (referring collection, field).
    refs: dict[tuple[Node, str], DeclaredReference] = field(default_factory=dict)
    cleared: int = 0  # nullify: references set to null

    def add(self, blocks: Sequence[_Block]) -> None:
        for block in blocks:
            self.records += 1
            self.others += block.others
            self.own += block.own
            self.refs.update(block.refs)

    def referenced_by(self, store: str) -> str:
        parts = []
        if self.others:
            parts.append(f"{self.others} record(s) of others")
        if self.own:
            parts.append(f"{self.own} of the person's records that are kept (held or masked)")
        through = sorted(
            f"{r.node.collection}.{r.field}"
            if r.node.store == store
            else f"{r.node.store}.{r.node.collection}.{r.field}"
            for r in self.refs.values()
        )
        return f"referenced by {' and '.join(parts)} (through {', '.join(through)})"


class _StoreRun:
    def __init__(self, connector, graph, collector, hash_key, progress, result, ownership) -> None:
        self.ownership: Ownership = ownership
        self.connector: Connector = connector
        self.store = result.store
        self.graph: _Graph = graph
        self.collector: _Collector = collector
        self.hash_key = hash_key
        self.progress = progress
        self.result: StoreErasure = result
        self.fallbacks: dict[tuple[str, str], _Fallbacks] = defaultdict(_Fallbacks)

    def tick(self) -> None:
        if self.progress is not None:
            self.progress()

    def records(self, cname: str) -> list[tuple[tuple, tuple[tuple, tuple]]]:
        return _sorted_records(self.collector.records.get(Node(self.store, cname), {}))

    def run(self) -> None:
        store_map = self.connector.store_map
        order, late, looped = erasure_order(self.store, store_map)
        mine = {cname: self.records(cname) for cname in order}
        shared = {
            cname: self.ownership.keys(Node(self.store, cname), SHARED)
            for cname in store_map.collections
        }
        if not any(mine.values()) and not any(shared.values()):
            return  # nothing of the person here: no transaction, no statement
        for cname, records in mine.items():
            if records and not store_map.collections[cname].key:
                raise PermanentStoreError(
                    f"collection {cname}: no key, so the person's records cannot be erased one "
                    "by one; give it a key in the map"
                )
        with self.connector.transaction():
            self.release_shared(shared)
            self.clear_late_links(late, mine)
            deferred = self.defer_loops(looped, mine)
            loops_done: set[str] = set()
            for cname in order:
                if not mine[cname]:
                    continue
                collection = store_map.collections[cname]
                action = collection.erasure.action
                if action == EraseAction.HOLD:
                    self.hold(collection, mine[cname])
                elif cname in deferred:
                    if cname not in loops_done:  # the loop's first collection: all of the loop
                        loops_done.update(deferred[cname])
                        self.delete_loop(deferred[cname], mine, looped[cname])
                elif action == EraseAction.MASK or cname in looped:
                    if action == EraseAction.DELETE:
                        self.result.collection(cname).notes.append(
                            "masked instead of deleted: the collection is in a loop of "
                            f"references none of which is nullable ({looped[cname]})"
                        )
                    self.mask(collection, mine[cname])
                else:
                    self.delete(collection, mine[cname])
                self.write_notes(collection)
                self.tick()

    # Loops of references no null can break ------------------------------------------------------

    def defer_loops(self, looped: dict[str, str], mine) -> dict[str, list[str]]:
        """The looped collections whose records can be deleted, because the database put off
        the checks of every reference inside their loop to the commit, each mapped to the
        loop's collections to delete (erasure_order places a loop's collections together)."""
        store_map = self.connector.store_map
        out: dict[str, list[str]] = {}
        for loop in dict.fromkeys(looped.values()):
            members = [
                c
                for c in store_map.collections
                if looped.get(c) == loop
                and mine[c]
                and store_map.collections[c].erasure.action == EraseAction.DELETE
            ]
            if not members:
                continue
            inside = {c for c, described in looped.items() if described == loop}
            refs = [
                (
                    store_map.collections[r.node.collection],
                    r.field,
                    store_map.collections[r.target.collection],
                    r.reference.field,
                )
                for r in declared_references({self.store: store_map})
                if r.target.store == self.store
                and r.node.collection in inside
                and r.target.collection in inside
                and not r.reference.nullable
            ]
            if self.connector.defer_references(refs):
                out.update(dict.fromkeys(members, members))
        return out

    def delete_loop(self, members: list[str], mine, loop: str) -> None:
        """Delete the person's records in a loop whose checks are deferred to the commit. A
        record that a surviving record refers to (someone else's, or the person's that is kept)
        stays and is masked, as without deferral; dropping it may keep others, so until none
        changes. Everything left is deleted, in any order: the commit checks the result."""
        store_map = self.connector.store_map
        going = {c: {item[0]: item for item in mine[c]} for c in members}
        staying: dict[str, list] = defaultdict(list)
        changed = True
        while changed:
            changed = False
            for cname in members:
                node = Node(self.store, cname)
                batch = list(going[cname].values())
                if not batch:
                    continue
                incoming = self.graph.incoming.get(node, [])
                outside = [r for r in incoming if r.node.store != self.store]
                inside = [r for r in incoming if r.node.store == self.store]
                stays = set(self.blocks(node, batch, outside)) if outside else set()
                stays |= self.referred_by_survivors(node, batch, inside, going)
                for nkey in stays:
                    staying[cname].append(going[cname].pop(nkey))
                    changed = True
        for cname in members:
            collection = store_map.collections[cname]
            out = self.result.collection(cname)
            keys = [key for _, (key, _) in going[cname].values()]
            for chunk in _batches(keys):
                out.deleted += self.delete_keys(collection, list(chunk))
                self.tick()
            if keys:
                out.notes.append(
                    f"deleted with the database's checks of the loop deferred to the commit "
                    f"({loop})"
                )
            if staying[cname]:
                out.notes.append(
                    "masked instead of deleted: records of the loop that records kept refer "
                    f"to ({loop})"
                )
                self.mask(collection, _sorted_records(dict(staying[cname])))

    def referred_by_survivors(self, node: Node, batch, refs, going) -> set[tuple]:
        """The records of `batch` that a record of this store that is not going refers to."""
        stays: set[tuple] = set()
        for ref in refs:
            by_value: dict[Any, list[tuple]] = defaultdict(list)
            originals: dict[Any, Any] = {}
            for nkey, (_, values) in batch:
                value = self.collector.value(node, values, ref.reference.field)
                if value is not None:
                    by_value[_norm(value)].append(nkey)
                    originals.setdefault(_norm(value), value)
            if not by_value:
                continue
            leaving = going.get(ref.node.collection, {})
            referring = self.graph.collection(ref.node)
            self.result.statements += 1
            found = self.connector.referrers(referring, ref.field, list(originals.values()))
            for key, value in found:
                nkey = _norm_key(key)
                if nkey in leaving:
                    continue  # deleted with the loop
                stays.update(by_value.get(_norm(value), ()))
        return stays

    # Statements (counted) ---------------------------------------------------------------------

    def delete_keys(self, collection: Collection, keys: list[tuple]) -> int:
        self.result.statements += 1
        return self.connector.delete_keys(collection, keys)

    def mask_keys(self, collection: Collection, keys: list[tuple], masks) -> int:
        self.result.statements += 1
        return self.connector.mask_keys(collection, keys, masks, hash_key=self.hash_key)

    # Actions ----------------------------------------------------------------------------------

    def release_shared(self, shared: dict[str, list[tuple]]) -> None:
        """Shared records are never deleted or masked: only their references to the person's
        records that are deleted are set to null, where the reference allows it. Otherwise the
        record stays as it is and the person's record it points at takes its fallback."""
        model = self.ownership.model
        for cname, keys in shared.items():
            if not keys:
                continue
            node = Node(self.store, cname)
            collection = self.graph.collection(node)
            out = self.result.collection(cname)
            if not collection.key:
                out.kept += len(keys)
                out.notes.append(f"kept: {len(keys)} shared record(s), never erased (no key)")
                continue
            reasons: dict[str, int] = defaultdict(int)
            rows = self.ownership.rows[node]
            states = self.ownership.reasons[node]
            # Keys grouped by the references to clear on them: one statement sets all of a
            # record's references to null, so the count it returns is of records, not fields.
            clear: dict[tuple[str, ...], list[tuple]] = defaultdict(list)
            for key in keys:
                nkey = norm_key(key)
                reasons[states[nkey]] += 1
                fields: set[str] = set()
                for ref in model.owners_out.get(node, []) + model.mentions_out.get(node, []):
                    target = self.graph.collection(ref.target)
                    if target.erasure.action != EraseAction.DELETE:
                        continue  # the person's record stays (held or masked): so may the link
                    value = rows[nkey].values.get(ref.field)
                    if ref.nullable and self.ownership.points_at_person(ref, value):
                        fields.add(ref.field)
                if fields:
                    clear[tuple(sorted(fields))].append(key)
            why = ", ".join(f"{REASONS[code]} ({code}): {n}" for code, n in sorted(reasons.items()))
            out.notes.append(f"kept: {len(keys)} shared record(s), never erased ({why})")
            cleared = 0
            for fnames, field_keys in sorted(clear.items()):
                masks = [FieldMask(fname, MaskStrategy.NULL) for fname in fnames]
                done = 0
                for batch in _batches(field_keys):
                    done += self.mask_keys(collection, list(batch), masks)
                    self.tick()
                cleared += done
                out.notes.append(
                    f"{done} shared record(s): their reference {', '.join(fnames)} to the "
                    "person's records set to null"
                )
            # Each record is counted once: set to null when a reference of it was cleared (only
            # records that changed: a second run counts none), kept otherwise.
            out.nullified += cleared
            out.kept += len(keys) - cleared

    def clear_late_links(self, late: list[DeclaredReference], mine) -> None:
        """Clear the person's own links that the order could not respect (see erasure_order):
        only on records that are to be deleted, only where they point at the person's records."""
        for ref in late:
            referring = self.graph.collection(ref.node)
            if referring.erasure.action != EraseAction.DELETE:
                continue  # kept records keep their links, and so keep what they point at
            target = ref.target
            pointed = {
                _norm(self.collector.value(target, values, ref.reference.field))
                for _, (_, values) in mine[target.collection]
            }
            keys = [
                key
                for _, (key, values) in mine[ref.node.collection]
                if _norm(self.collector.value(ref.node, values, ref.field)) in pointed - {None}
            ]
            for batch in _batches(keys):
                self.mask_keys(referring, list(batch), [FieldMask(ref.field, MaskStrategy.NULL)])
                self.tick()

    def hold(self, collection: Collection, records) -> None:
        out = self.result.collection(collection.name)
        out.held += len(records)
        out.basis = collection.erasure.basis
        if not out.basis:
            out.notes.append("held, but the map gives no legal basis for the hold")
        masks = _hold_masks(collection)
        if not masks:
            return
        for batch in _batches(records):
            self.mask_keys(collection, [key for _, (key, _) in batch], masks)
            self.tick()
        out.notes.append(f"held with these fields masked: {_describe_masks(masks)}")

    def mask(self, collection: Collection, records) -> None:
        out = self.result.collection(collection.name)
        masks = _full_masks(collection)
        if not masks:
            out.kept += len(records)
            out.notes.append("kept unchanged: the map masks this collection but names no field")
            return
        for batch in _batches(records):
            out.masked += self.mask_keys(collection, [key for _, (key, _) in batch], masks)
            self.tick()

    def delete(self, collection: Collection, records) -> None:
        out = self.result.collection(collection.name)
        node = Node(self.store, collection.name)
        incoming = self.graph.incoming.get(node, [])
        inside = [r for r in incoming if r.node.store == self.store]
        outside = [r for r in incoming if r.node.store != self.store]
        guards = [
            (self.graph.collection(r.node), r.field, r.reference.field)
            for r in inside
            if r.node != node
        ]
        for batch in _batches(records):
            blocks: dict[tuple, _Block] = {}
            if outside:  # other stores first: no statement of theirs can join this one's
                blocks = self.blocks(node, batch, outside)
            candidates = [item for item in batch if item[0] not in blocks]
            keys = [key for _, (key, _) in candidates]
            deleted = None
            if candidates and inside and len(guards) == len(inside):
                # One statement deletes what nothing refers to; only when some records stay
                # (referred to, or already gone) are they looked at, to say why.
                self.result.statements += 1
                deleted = self.connector.delete_unreferenced(collection, keys, guards)
            if deleted is not None:
                out.deleted += deleted
                if deleted < len(candidates):
                    blocks.update(self.blocks(node, candidates, inside))
            elif candidates:
                if inside:
                    blocks.update(self.blocks(node, candidates, inside))
                free = [key for nkey, (key, _) in candidates if nkey not in blocks]
                if free:
                    out.deleted += self.delete_keys(collection, free)
            if blocks:
                self.fall_back(collection, node, batch, blocks, out)
            self.tick()

    def blocks(self, node: Node, batch, refs) -> dict[tuple, _Block]:
        self.result.statements += len(refs)
        return _blocks(
            self.graph,
            self.collector,
            node,
            batch,
            self.connector,
            in_transaction=True,
            refs=refs,
        )

    def fall_back(self, collection, node, batch, blocks: dict[tuple, _Block], out) -> None:
        fallback = collection.erasure.fallback
        held = [(nkey, key, values) for nkey, (key, values) in batch if nkey in blocks]
        if fallback == Fallback.NULLIFY:
            clearable = [item for item in held if self.clearable(blocks[item[0]])]
            held = [item for item in held if item not in clearable]
            if clearable:
                self.nullify(collection, node, clearable, blocks, out)
            if not held:
                return
            fallback = Fallback.MASK  # what cannot be cleared is masked instead (and noted)
            kind = "mask-not-nullable"
        else:
            kind = fallback.value
        tally = self.fallbacks[(collection.name, kind)]
        tally.add([blocks[nkey] for nkey, _, _ in held])
        keys = [key for _, key, _ in held]
        if fallback == Fallback.KEEP:
            out.kept += len(keys)
            return
        masks = _full_masks(collection)
        if not masks:
            out.kept += len(keys)
            self.fallbacks[(collection.name, "mask-nothing")].add([])
            return
        out.masked += self.mask_keys(collection, keys, masks)

    def clearable(self, block: _Block) -> bool:
        return all(r.node.store == self.store and r.reference.nullable for r in block.refs.values())

    def nullify(self, collection, node, items, blocks, out) -> None:
        refs: dict[tuple[Node, str], DeclaredReference] = {}
        for nkey, _, _ in items:
            refs.update(blocks[nkey].refs)
        cleared = 0
        for _, ref in sorted(refs.items()):
            values = list(
                dict.fromkeys(
                    v
                    for _, _, vals in items
                    if (v := self.collector.value(node, vals, ref.reference.field)) is not None
                )
            )
            self.result.statements += 1
            cleared += self.connector.nullify(self.graph.collection(ref.node), ref.field, values)
        tally = self.fallbacks[(collection.name, "nullify")]
        tally.add([blocks[nkey] for nkey, _, _ in items])
        tally.cleared += cleared
        out.nullified += self.delete_keys(collection, [key for _, key, _ in items])

    def write_notes(self, collection: Collection) -> None:
        out = self.result.collection(collection.name)
        for (cname, kind), tally in sorted(self.fallbacks.items()):
            if cname != collection.name or not tally.records:
                continue
            why = tally.referenced_by(self.store)
            if kind == "keep":
                out.notes.append(f"kept: {tally.records} record(s) {why} (fallback keep)")
            elif kind == "mask":
                out.notes.append(
                    f"masked instead of deleted: {tally.records} record(s) {why} "
                    f"(fallback mask: {_describe_masks(_full_masks(collection))})"
                )
            elif kind == "mask-not-nullable":
                out.notes.append(
                    f"masked instead of deleted: {tally.records} record(s) {why}; the nullify "
                    "fallback needs every such reference nullable and in this store"
                )
            elif kind == "nullify":
                out.notes.append(
                    f"deleted after setting {tally.cleared} reference(s) to null: "
                    f"{tally.records} record(s) {why} (fallback nullify)"
                )
        if (collection.name, "mask-nothing") in self.fallbacks:
            out.notes.append("kept: referenced by others, and the map names no field to mask")


# Webhook stores ---------------------------------------------------------------------------------


def _erase_by_identity(target, collector, identity, phone_region, request_id, progress, result):
    """Ask the downstream service to erase, collection by collection (held ones are skipped)."""
    request_id = request_id or target.options.get("request_id")
    if not request_id:
        raise PermanentStoreError(
            f"store {result.store}: a webhook erasure needs the request's id (its idempotence key)"
        )
    values, _ = normalise_identity(identity, phone_region=phone_region)
    identities: dict[str, list[Any]] = {t: list(v) for t, v in values.items()}
    collections = target.store_map.collections
    for cname, collection in collections.items():
        for fname, ref in collection.reference_fields().items():
            found = collector.values_of(Node(ref.store or result.store, ref.collection), ref.field)
            found += collector.values_of(Node(result.store, cname), fname)
            merged = identities.setdefault(fname, [])
            merged.extend(v for v in dict.fromkeys(found) if v not in merged)
    for cname, collection in collections.items():
        out = result.collection(cname)
        records = _sorted_records(collector.records.get(Node(result.store, cname), {}))
        if collection.erasure.action == EraseAction.HOLD:
            out.held += len(records)
            out.basis = collection.erasure.basis
            continue
        keys = [key[0] if len(key) == 1 else list(key) for _, (key, _) in records]
        result.statements += 1
        answer = target.erase(
            identities, request_id=request_id, collection=collection, keys=keys or None
        )
        if answer["status"] == PENDING:
            result.status = PENDING
            if answer.get("job") and answer["job"] not in result.jobs:
                result.jobs.append(answer["job"])
            out.notes.append("the service erases in the background: pending until it confirms")
        elif collection.erasure.action == EraseAction.MASK:
            out.masked += answer["erased"]
        else:
            out.deleted += answer["erased"]
        if progress is not None:
            progress()
