"""What erasure keeps of the finder's walk (keys and reference values, never whole records),
the reference graph of the searchable stores, and which of the person's records surviving
records still refer to (`find_blocks`)."""

from __future__ import annotations

import decimal
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from requests.engine.graph import DeclaredReference, Node, declared_references, walk_edges
from requests.engine.ownership import ALONE, Ownership
from requests.engine.store import Connector, Record
from requests.engine.storemap import Collection, EraseAction, Fallback

# Keys per erasure statement (DELETE ... WHERE key IN (...), UPDATE ..., referrer checks): a
# person's ten thousand records take ten statements per collection, while one statement stays
# far under every driver's bound-parameter limit and holds its locks for milliseconds.
ERASE_BATCH = 1000

Identity = Mapping[str, str | Sequence[str]]
Progress = Callable[[], None]

# The reference graph of every searchable store ------------------------------------------------


class Graph:
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


def norm(value: Any) -> Any:
    # 42 from one driver and "42" from another store are the same reference value.
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | uuid.UUID | decimal.Decimal):
        return str(value)
    return value


def norm_key(key: Sequence[Any]) -> tuple:
    if len(key) == 1 and type(key[0]) is int:  # the common case, on the finder's hot path
        return (str(key[0]),)
    return tuple(norm(v) for v in key)


class Collector:
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
        records[norm_key(key)] = (key, tuple([data.get(f) for f in fields]) if fields else ())

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


def batches(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), ERASE_BATCH):
        yield items[start : start + ERASE_BATCH]


def sorted_records(records: Mapping[tuple, tuple]) -> list[tuple[tuple, tuple]]:
    # Keys in a stable order, so two erasures touching the same rows lock them in the same order.
    try:
        return sorted(records.items())
    except TypeError:
        return sorted(records.items(), key=lambda item: repr(item[0]))


@dataclass
class Block:
    """Why one of the person's records cannot be deleted: who still refers to it."""

    others: int = 0  # records that are not the person's
    own: int = 0  # the person's own records that the erasure keeps (held, masked or kept)
    # The references it comes through, by (referring collection, field).
    refs: dict[tuple[Node, str], DeclaredReference] = field(default_factory=dict)


def find_blocks(
    graph: Graph,
    collector: Collector,
    node: Node,
    batch: Sequence[tuple[tuple, tuple[tuple, tuple]]],
    same_store: Connector,
    *,
    in_transaction: bool = False,
    refs: Sequence[DeclaredReference] | None = None,
) -> dict[tuple, Block]:
    """The records of `batch` (the person's, in `node`) that surviving records still refer to,
    through every reference in every map that points at the collection.

    Inside the erasure's transaction (`in_transaction`) every referrer found in the same store
    survives: the person's deletable records that referred to the batch are already gone
    (children first) or had their link cleared. Elsewhere, and in the sweep, a referrer that is
    the person's own record in a collection whose records are deleted does not count: it is
    erased by its own store's job (or, in the sweep, is itself left over).
    """
    blocks: dict[tuple, Block] = {}
    for ref in graph.incoming.get(node, []) if refs is None else refs:
        referred = ref.reference.field
        by_value: dict[Any, list[tuple]] = defaultdict(list)
        originals: dict[Any, Any] = {}
        for nkey, (_, values) in batch:
            value = collector.value(node, values, referred)
            if value is not None:
                by_value[norm(value)].append(nkey)
                originals.setdefault(norm(value), value)
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
            nkey = norm_key(key)
            mine = nkey in own
            if mine and erased_elsewhere and not (same and in_transaction):
                continue
            for target in by_value.get(norm(value), ()):
                if ref.node == node and nkey == target:
                    continue  # a record referring to itself does not keep itself
                block = blocks.setdefault(target, Block())
                if mine:
                    block.own += 1
                else:
                    block.others += 1
                block.refs[(ref.node, ref.field)] = ref
    return blocks
