"""Whose record is it: which of the rows the finder reached are the person's alone, which are
shared with other people, and which are reference data (the model is documented at the top of
requests.engine.storemap).

`classify(connectors, identity)` runs the finder once over every store, keeping of each row only
its key and the values of its reference fields (and of the fields references point at), then:
- asks each store who else points at the rows that belong to the rows pointing at them (an
  address, through `follow: parent` owner references): one `referrers` query per reference and
  batch of values, answered by the store;
- decides, collection by collection and repeated until nothing changes (loops of references
  included), which rows are the person's alone: a row is, when every owner reference it holds
  points at a row that is the person's alone, and every row pointing at it through a parent
  owner reference is too; a person row is, when the person's identity matched it, or when an
  owner reference makes it belong to the person's rows (a profile to its user). Every test is a
  set membership of the person's own values, never a query per row.
The decision is made here, in Python, for every kind of store; no store is asked to decide it
(no join or `EXISTS` in the store yet). What it holds: the keys and watched reference values of
the rows of collections that cannot be decided as they arrive (several owner references, parent
references, mentions) and of the rows those decisions read, for the length of the walk; plus,
in `find_owned`, those rows themselves until they are classified and sent. A collection with a
single owner reference, entered only through it from the person's rows, holds nothing.

Rows of a collection with no key all have the key `()`: each row's identity is its content and
how many identical rows came before it (`RowIds`), so the person's two identical visits are two
rows; who points at a row through a keyless collection's parent reference is asked with `find`
(whole rows, named the same way) instead of `referrers`. Erasure still refuses such collections.

The answer (`Ownership`) says for each collection which keys are the person's alone, which are
shared and why (reason codes), which are reference data; what a shared row must withhold in an
access package (Art. 15(4)); and gives the counts the preview and the certificate show. It holds
the person's keys and reference values only, never a row's other data.
"""

from __future__ import annotations

import decimal
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from requests.engine.graph import Node, declared_references
from requests.engine.store import (
    Connector,
    PermanentStoreError,
    Record,
    TransientStoreError,
)
from requests.engine.storemap import Collection, Follow, RefKind, Role, StoreMap

ALONE = "alone"
SHARED = "shared"
REFERENCE = "reference"

# Why a row is shared (codes in previews, packages and certificates; never data).
SHARED_OWNER = "shared_owner"  # another person owns it too (a payment by one on another's rental)
MENTION = "mention"  # it only mentions the person (an order the employee handled)
SHARED_PARENT = "shared_parent"  # other people's rows point at it (an address shared with staff)
REASONS = {
    SHARED_OWNER: "another person's records own it too",
    MENTION: "it only mentions the person",
    SHARED_PARENT: "other people's records point at it",
    REFERENCE: "reference data (catalogue, lookup): never erased",
}

WITHHELD = "[withheld: another person's data, Art. 15(4)]"

# Values per `referrers` query.
REFERRER_BATCH = 1000


def norm(value: Any) -> Any:
    """One form for a reference value, whichever driver or store it came from (42 and "42")."""
    kind = type(value)
    if kind is str:
        return value
    if kind is int:
        return str(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | uuid.UUID | decimal.Decimal):
        return str(value)
    return value


def norm_key(key: Sequence[Any]) -> tuple:
    if len(key) == 1:
        return (norm(key[0]),)
    return tuple(norm(v) for v in key)


@dataclass(frozen=True)
class OwnerRef:
    """An owner reference seen from one side: `node.field` holds values of `target.target_field`."""

    node: Node
    field: str
    target: Node
    target_field: str
    nullable: bool


@dataclass(slots=True)
class _Row:
    key: tuple
    values: dict[str, Any]
    matched: bool = False  # the person's identity matched it
    owned_path: bool = False  # reached through an owner reference or identity (not only mention)


class Model:
    """The ownership edges of a set of maps (no data): built once per classification."""

    def __init__(self, maps: Mapping[str, StoreMap]) -> None:
        self.maps = maps
        # Owner references a row holds (its owners are the rows they point at).
        self.owners_out: dict[Node, list[OwnerRef]] = defaultdict(list)
        # Parent owner references pointing at a collection (its rows belong to their referrers).
        self.parents_in: dict[Node, list[OwnerRef]] = defaultdict(list)
        self.mentions_out: dict[Node, list[OwnerRef]] = defaultdict(list)
        self.watch: dict[Node, set[str]] = defaultdict(set)
        for ref in declared_references(maps):
            if ref.target.store not in maps:
                continue
            if ref.target.collection not in maps[ref.target.store].collections:
                continue
            source_role = self.role(ref.node)
            target_role = self.role(ref.target)
            edge = OwnerRef(
                ref.node, ref.field, ref.target, ref.reference.field, ref.reference.nullable
            )
            self.watch[ref.node].add(ref.field)
            self.watch[ref.target].add(ref.reference.field)
            if ref.reference.kind == RefKind.MENTION:
                self.mentions_out[ref.node].append(edge)
                continue
            if ref.reference.follow == Follow.NONE or Role.REFERENCE in (source_role, target_role):
                continue
            if ref.reference.follow.children:
                self.owners_out[ref.node].append(edge)
            if ref.reference.follow.parent:
                self.parents_in[ref.target].append(edge)
        for store, store_map in maps.items():
            for cname, collection in store_map.collections.items():
                self.watch[Node(store, cname)].update(collection.key)
        self.can_own = self._collections_with_owners()
        # (store, collection) -> (node, the fields a collector keeps of its rows), for every
        # RowCollector of these maps: built once here, not per person.
        self.kept_fields: dict[tuple[str, str], tuple[Node, tuple[str, ...]]] = {
            (node.store, node.collection): (node, tuple(sorted(fields)))
            for node, fields in self.watch.items()
        }

    def collection(self, node: Node) -> Collection:
        return self.maps[node.store].collections[node.collection]

    def role(self, node: Node) -> Role:
        return self.collection(node).effective_role

    def _collections_with_owners(self) -> set[Node]:
        """Collections whose rows can have owners at all: person collections, those pointed at
        through parent owner references, and those with owner references to such collections.
        A reference to any other collection (an inventory row nobody owns) adds no owner."""
        can = {
            Node(store, cname)
            for store, store_map in self.maps.items()
            for cname, c in store_map.collections.items()
            if c.effective_role == Role.PERSON
        }
        can |= {node for node, refs in self.parents_in.items() if refs}
        changed = True
        while changed:
            changed = False
            for node, refs in self.owners_out.items():
                if node not in can and any(r.target in can for r in refs):
                    can.add(node)
                    changed = True
        return can


# Models by the maps they were made from (a worker erasing person after person with the same
# connectors builds it once); the cache holds the maps themselves, so their ids stay theirs.
_MODELS: dict[tuple, tuple[Model, tuple]] = {}
_MODEL_CACHE_SIZE = 64
# find_owned's decisions about which collections stream, by maps and identity types (the model
# kept with them holds the maps, so their ids stay theirs).
_STREAMING: dict[tuple, tuple[tuple, Model]] = {}


def model_for(maps: Mapping[str, StoreMap]) -> Model:
    key = tuple((name, id(m)) for name, m in maps.items())
    hit = _MODELS.get(key)
    if hit is not None:
        return hit[0]
    model = Model(maps)
    if len(_MODELS) >= _MODEL_CACHE_SIZE:
        _MODELS.clear()
    _MODELS[key] = (model, tuple(maps.values()))
    return model


# The first item of a keyless row's identity (see RowIds): no key value has this type.
KEYLESS = ("row",)


class RowIds:
    """Each row's identity in the ownership decisions: its normalised key, or, in a collection
    with no key (every record's key is `()`), its content and how many rows with the same
    content came before it by the same way (a mention or not). The finder sends each row of a
    keyless collection once per way it reaches it (it tells rows of a collection reached several
    ways apart by content, see finder._row_fingerprint), so two identical visits are two rows,
    and a row reached both through its owner and through a mention is one."""

    def __init__(self) -> None:
        self._repeats: dict[tuple, int] = {}

    def of(self, record: Record) -> tuple:
        key = record.key
        if key:
            return (norm(key[0]),) if len(key) == 1 else norm_key(key)
        content = tuple(sorted((k, repr(v)) for k, v in record.data.items()))
        mark = (record.store, record.collection, record.via == "mention", content)
        seen = self._repeats.get(mark, 0)
        self._repeats[mark] = seen + 1
        return (KEYLESS, content, seen)


class RowCollector:
    def __init__(self, model: Model, ids: RowIds | None = None) -> None:
        # Only collections that received a row are in `rows` (a walk that streamed everything
        # leaves it empty, and `decide` has nothing to do).
        self.rows: dict[Node, dict[tuple, _Row]] = defaultdict(dict)
        self._kept = model.kept_fields
        self.ids = ids or RowIds()
        # (store, collection) -> (its rows, the fields kept): one look-up per record streamed.
        self._targets: dict[tuple[str, str], tuple[dict[tuple, _Row], tuple[str, ...]]] = {}

    def add(self, record: Record, nkey: tuple | None = None) -> None:
        """Keep what ownership needs of `record`; `nkey`: its identity, where the caller took
        it from `self.ids` already (each arrival of a keyless row must be counted once)."""
        target = self._targets.get((record.store, record.collection))
        if target is None:
            where = (record.store, record.collection)
            node, fields = self._kept.get(where) or (Node(*where), ())
            target = self._targets[where] = (self.rows[node], fields)
        rows, fields = target
        key = record.key
        if nkey is None:
            nkey = (norm(key[0]),) if len(key) == 1 else self.ids.of(record)
        row = rows.get(nkey)
        if row is None:
            data = record.data
            row = rows[nkey] = _Row(tuple(key), {f: data.get(f) for f in fields})
        via = record.via
        if via == "identity":
            row.matched = True
        if via != "mention":
            row.owned_path = True


@dataclass
class Ownership:
    """The classification of every row the finder reached (keys and reference values only)."""

    model: Model
    rows: dict[Node, dict[tuple, _Row]]
    state: dict[Node, dict[tuple, str]] = field(default_factory=dict)  # ALONE/SHARED/REFERENCE
    reasons: dict[Node, dict[tuple, str]] = field(default_factory=dict)  # for SHARED rows
    # (node, field) -> normalised values of that field on the person's alone rows.
    alone_values: dict[tuple[Node, str], set[Any]] = field(default_factory=dict)
    searched: dict[str, Connector] = field(default_factory=dict)  # the stores it searched

    def of(self, node: Node, key: Sequence[Any]) -> str | None:
        """The state of the row with this key (rows of a keyless collection: see RowIds)."""
        return self.state.get(Node(node.store, node.collection), {}).get(norm_key(key))

    def keys(self, node: Node, what: str) -> list[tuple]:
        rows = self.rows.get(node, {})
        return [rows[k].key for k, s in self.state.get(node, {}).items() if s == what]

    def points_at_person(self, ref: OwnerRef, value: Any) -> bool:
        return norm(value) in self.alone_values.get((ref.target, ref.target_field), set())

    def counts(self) -> dict[str, dict[str, dict[str, Any]]]:
        """store -> collection -> {"alone": n, "shared": n, "reference": n, "reasons": {...}}."""
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for node, states in sorted(self.state.items()):
            if not self.rows.get(node):
                continue  # nothing collected: streamed (see find_owned), counted by the walk
            entry = out.setdefault(node.store, {}).setdefault(
                node.collection, {ALONE: 0, SHARED: 0, REFERENCE: 0, "reasons": {}}
            )
            for nkey, state in states.items():
                entry[state] += 1
                if state == SHARED:
                    code = self.reasons[node][nkey]
                    entry["reasons"][code] = entry["reasons"].get(code, 0) + 1
        return out

    def withheld(
        self, node: Node, key: Sequence[Any], data: Mapping[str, Any], *, nkey: tuple | None = None
    ) -> list[str]:
        """The fields of a shared row that are other people's (Art. 15(4)). Of another person's
        own row that only mentions the person: everything but the references to the person's
        rows. Of a row that only mentions the person: also its personal data fields (an order
        an employee handled keeps the customer's delivery city). Of a row the person shares
        with others (a payment on another's rental, a message, a shared address): the others'
        identity values and the references to their rows."""
        collection = self.model.collection(node)
        refs = collection.reference_fields()
        mine = set()
        for ref in self.model.owners_out.get(node, []) + self.model.mentions_out.get(node, []):
            if self.points_at_person(ref, data.get(ref.field)):
                mine.add(ref.field)
        reason = self.reasons.get(node, {}).get(norm_key(key) if nkey is None else nkey)
        if collection.effective_role == Role.PERSON and reason == MENTION:
            return [name for name in data if name not in mine]
        out = []
        for name in data:
            spec = collection.fields.get(name)
            if name in mine:
                continue
            personal = spec is not None and (
                spec.identity or (reason == MENTION and spec.categories)
            )
            if name in refs or personal:
                out.append(name)
        return out


def classify(
    connectors: Mapping[str, Connector],
    identity: Mapping[str, Any],
    *,
    phone_region: str | None = None,
    required: str | None = None,
) -> Ownership:
    """Find and classify the person's rows in every searchable store (see the module docstring).

    StoreError from a store that fails, naming it. With `required` (the store whose job this
    is), only that store's failure raises: another store that cannot be searched is left out of
    the walk (and of the answer), so one broken store never fails the other stores' jobs."""
    from requests.engine.finder import find_person

    searchable = {n: c for n, c in connectors.items() if c.searchable}
    maps = {n: c.store_map for n, c in searchable.items()}
    model = Model(maps)
    collector = RowCollector(model)
    result = find_person(
        searchable,
        identity,
        sink=collector.add,
        phone_region=phone_region,
        sample_size=0,
        skip_failed_stores=required is not None,
    )
    _forget_failed_stores(result, required, searchable, collector.rows)
    ownership = decide(model, collector.rows, searchable)
    ownership.searched = dict(searchable)
    return ownership


def decide(
    model: Model, rows: dict[Node, dict[tuple, _Row]], connectors: Mapping[str, Connector]
) -> Ownership:
    result = Ownership(model, rows)
    if not any(rows.values()):
        # Nothing held for a decision: every row the walk reached was decided on arrival (a
        # customer and their orders), as for most people in most stores. Nothing to ask either.
        return result
    alone: dict[Node, set[tuple]] = {
        node: {k for k, r in found.items() if r.owned_path}
        for node, found in rows.items()
        if model.role(node) != Role.REFERENCE
    }
    parent_referrers = _parent_referrers(model, rows, connectors)

    # The (collection, field) pairs whose values on the person's rows a decision looks at.
    needed: dict[Node, set[str]] = defaultdict(set)
    for refs in (*model.owners_out.values(), *model.mentions_out.values()):
        for ref in refs:
            needed[ref.target].add(ref.target_field)

    def index() -> dict[tuple[Node, str], set[Any]]:
        values: dict[tuple[Node, str], set[Any]] = defaultdict(set)
        for node, fields in needed.items():
            keys = alone.get(node)
            if not keys:
                continue
            found = rows[node]
            for fname in fields:
                values[(node, fname)] = {
                    norm(v) for k in keys if (v := found[k].values.get(fname)) is not None
                }
        return values

    # Per collection, the owner references a decision checks (field, the values they must be
    # among) and the parent references pointing at it.
    checks: dict[Node, list[tuple[str, tuple[Node, str]]]] = {}
    for node in alone:
        person = model.role(node) == Role.PERSON
        checks[node] = [
            (ref.field, (ref.target, ref.target_field))
            for ref in model.owners_out.get(node, [])
            if ref.target in model.can_own
            and not (person and model.role(ref.target) != Role.PERSON)
        ]

    changed = True
    while changed:
        changed = False
        values = index()
        empty: set[Any] = set()
        for node, keys in alone.items():
            person = model.role(node) == Role.PERSON
            outgoing = [(f, values.get(pair, empty)) for f, pair in checks[node]]
            incoming = model.parents_in.get(node, [])
            found = rows[node]
            for nkey in list(keys):
                row = found[nkey]
                if person and row.matched:
                    continue  # the person's own person rows: the roots of ownership
                owned = ok = False
                for fname, allowed in outgoing:
                    value = row.values.get(fname)
                    if value is None:
                        continue
                    if norm(value) in allowed:
                        owned = True
                    else:
                        break
                else:
                    ok = True
                if ok:
                    for ref in incoming:
                        value = row.values.get(ref.target_field)
                        referring = parent_referrers.get((ref, norm(value)), set())
                        held = alone.get(ref.node, set())
                        if any(r not in held for r in referring):
                            ok = False
                            break
                        if referring:
                            owned = True
                if not (ok and owned):
                    keys.discard(nkey)
                    changed = True
    values = index()
    result.alone_values = values

    for node, found in rows.items():
        states = result.state.setdefault(node, {})
        reasons = result.reasons.setdefault(node, {})
        if model.role(node) == Role.REFERENCE:
            for nkey in found:
                states[nkey] = REFERENCE
            continue
        mine = alone.get(node, set())
        for nkey, row in found.items():
            if nkey in mine:
                states[nkey] = ALONE
                continue
            reason = _link_to_person(model, node, row, values, parent_referrers, alone)
            if reason is not None:
                states[nkey] = SHARED
                reasons[nkey] = reason
    return result


def _link_to_person(model, node, row, values, parent_referrers, alone) -> str | None:
    """Why a row that is not the person's alone still concerns them, or None (then it is not
    theirs at all: reached only through someone else's rows, and left out)."""
    for ref in model.owners_out.get(node, []):
        value = row.values.get(ref.field)
        if value is not None and norm(value) in values.get((ref.target, ref.target_field), ()):
            return SHARED_OWNER
    for ref in model.parents_in.get(node, []):
        referring = parent_referrers.get((ref, norm(row.values.get(ref.target_field))), set())
        if referring & alone.get(ref.node, set()):
            return SHARED_PARENT
    for ref in model.mentions_out.get(node, []):
        value = row.values.get(ref.field)
        if value is not None and norm(value) in values.get((ref.target, ref.target_field), ()):
            return MENTION
    return None


def _parent_referrers(model, rows, connectors) -> dict[tuple[OwnerRef, Any], set[tuple]]:
    """Who points at each found row through parent owner references, asked of the store."""
    out: dict[tuple[OwnerRef, Any], set[tuple]] = defaultdict(set)
    for node, refs in model.parents_in.items():
        found = rows.get(node)
        if not found:
            continue
        for ref in refs:
            connector = connectors.get(ref.node.store)
            if connector is None:
                continue
            values = list(
                dict.fromkeys(
                    v for r in found.values() if (v := r.values.get(ref.target_field)) is not None
                )
            )
            referring = model.collection(ref.node)
            repeats: dict[tuple, int] = {}
            for start in range(0, len(values), REFERRER_BATCH):
                batch = values[start : start + REFERRER_BATCH]
                if not referring.key:
                    # Keys say nothing here: the referring rows, named as RowIds names them
                    # (identical rows hold the same value, so they come in the same batch).
                    for row in connector.find(referring, ref.field, batch):
                        content = tuple(sorted((k, repr(v)) for k, v in row.items()))
                        seen = repeats[content] = repeats.get(content, -1) + 1
                        out[(ref, norm(row.get(ref.field)))].add((KEYLESS, content, seen))
                    continue
                for key, value in connector.referrers(referring, ref.field, batch):
                    out[(ref, norm(value))].add(norm_key(key))
    return out


def find_owned(
    connectors: Mapping[str, Connector],
    identity: Mapping[str, Any],
    *,
    sink,
    phone_region: str | None = None,
    required: str | None = None,
) -> Ownership:
    """Every row of the person for an access package, classified: `sink(record)` gets each of
    the person's own rows in full, each shared row once with the other people's fields replaced
    by WITHHELD (Art. 15(4)), and each reference row the walk reached; rows reached only through
    other people's rows are left out. `required`: see `classify`.

    One walk. Where the map lets a row's ownership follow from the way the walk reached it (a
    collection with a single owner reference, entered only through it from rows that are the
    person's, such as a customer's invoices and their lines) the row is streamed to `sink` as it
    arrives, and nothing of it is kept. Rows of the other collections (several owners, parents,
    mentions) are held until the walk ends and ownership is decided (`decide`); so are the keys
    and reference values of the streamed rows those decisions need."""
    from requests.engine.finder import find_person, normalise_identity

    searchable = {n: c for n, c in connectors.items() if c.searchable}
    maps = {n: c.store_map for n, c in searchable.items()}
    model = model_for(maps)
    values, _ = normalise_identity(identity, phone_region=phone_region)
    streamed, collect, twins, planned_nodes = streaming_plan(maps, values)
    collector = RowCollector(model)
    held: dict[Node, dict[tuple, Record]] = defaultdict(dict)
    sent: dict[Node, set[tuple]] = {node: set() for node in twins}

    # Per record of every store: plain tuples, no Node built, on the hot path.
    fast = {(n.store, n.collection): (n in collect, sent.get(n)) for n in streamed}

    ids = collector.ids

    def on_record(record: Record) -> None:
        if record.via != "mention":
            how = fast.get((record.store, record.collection))
            if how is not None:
                if how[1] is not None:
                    nkey = ids.of(record)
                    how[1].add(nkey)
                    if how[0]:
                        collector.add(record, nkey)
                elif how[0]:
                    collector.add(record)
                sink(record)
                return
        nkey = ids.of(record)
        collector.add(record, nkey)
        held[Node(record.store, record.collection)].setdefault(nkey, record)

    # When every collection streams (a shop's customers, invoices and lines), the rows go
    # straight to `sink`: not even a wrapper call per row.
    result = find_person(
        searchable,
        identity,
        sink=sink if len(streamed) == len(planned_nodes) else on_record,
        phone_region=phone_region,
        sample_size=0,
        skip_failed_stores=required is not None,
    )
    _forget_failed_stores(result, required, searchable, collector.rows, held)
    ownership = decide(model, collector.rows, searchable)
    ownership.searched = dict(searchable)
    for node, records in held.items():
        states = ownership.state.get(node, {})
        already = sent.get(node, set())
        for nkey, record in records.items():
            state = states.get(nkey)
            if state is None or nkey in already:
                continue
            if state == SHARED:
                withheld = set(ownership.withheld(node, record.key, record.data, nkey=nkey))
                data = {k: WITHHELD if k in withheld else v for k, v in record.data.items()}
                record = Record(record.store, record.collection, record.key, data, record.via)
            sink(record)
    return ownership


def streaming_plan(
    maps: Mapping[str, StoreMap], identity_types
) -> tuple[dict[Node, str], set[Node], set[Node], list[Node]]:
    """For a walk over `maps` from these identity types: the collections whose rows are
    classified on arrival (node -> ALONE or REFERENCE), those of them still collected for the
    other decisions, those also reached through a mention, and every collection the walk reaches.
    Cached per maps and identity types."""
    from requests.engine.graph import walk_plan

    key = (tuple((name, id(m)) for name, m in maps.items()), frozenset(identity_types))
    planned = _STREAMING.get(key)
    if planned is None:
        if len(_STREAMING) >= _MODEL_CACHE_SIZE:
            _STREAMING.clear()
        plan = walk_plan(maps, identity_types)
        model = model_for(maps)
        planned = _STREAMING[key] = ((*_streaming(model, plan), plan.reachable), model)
    return planned[0]


def _streaming(model: Model, plan) -> tuple[dict[Node, str], set[Node], set[Node]]:
    """Which collections' rows can be classified on arrival (node -> ALONE or REFERENCE), which
    of those must still be collected for the decisions on the others, and which of those the
    walk also reaches through a mention (their rows can come twice)."""
    entering: dict[Node, list] = defaultdict(list)
    for edges in plan.edges_from.values():
        for edge in edges:
            entering[edge.target.node].append(edge)
    state: dict[Node, str] = {}
    changed = True
    while changed:
        changed = False
        for node in plan.reachable:
            if node.mentioned or node in state:
                continue
            role = model.role(node)
            ways_in = entering.get(node, [])
            if role == Role.REFERENCE:
                state[node] = REFERENCE
            elif role == Role.PERSON:
                if ways_in:
                    continue
                state[node] = ALONE  # found by the person's identity only
            else:
                owners = [r for r in model.owners_out.get(node, []) if r.target in model.can_own]
                if len(ways_in) != 1 or len(owners) != 1 or model.parents_in.get(node):
                    continue
                edge, owner = ways_in[0], owners[0]
                if edge.declared_on != (node, owner.field) or edge.source != owner.target:
                    continue
                if state.get(edge.source) != ALONE:
                    continue
                state[node] = ALONE
            changed = True
    decided = [n for n in plan.reachable if n.mentioned or n not in state]
    collect: set[Node] = set()
    twins: set[Node] = set()
    for node in decided:
        plain = Node(node.store, node.collection)
        for ref in model.owners_out.get(plain, []) + model.mentions_out.get(plain, []):
            collect.add(ref.target)
        collect.update(ref.node for ref in model.parents_in.get(plain, []))
        if node.mentioned and plain in state:
            collect.add(plain)
            twins.add(plain)
    queue = list(collect)
    while queue:  # a collected row's ownership is decided from its parents': collect them too
        node = queue.pop()
        for edge in entering.get(node, []):
            if edge.source not in collect:
                collect.add(edge.source)
                queue.append(edge.source)
    return state, {n for n in collect if n in state}, twins


def _forget_failed_stores(result, required: str | None, searchable: dict, *found: dict) -> None:
    """Raise the required store's own failure; drop every other failed store and its rows.

    Another store that cannot be searched must not fail this store's job (containment), but
    its rows cannot be judged either, so they leave the decision with the store itself.
    """
    if required in result.errors:
        transient = required in result.transient
        error = (TransientStoreError if transient else PermanentStoreError)(result.errors[required])
        error.store = required
        raise error
    for failed in result.errors:
        searchable.pop(failed, None)
        for rows in found:
            for node in [n for n in rows if n.store == failed]:
                del rows[node]
