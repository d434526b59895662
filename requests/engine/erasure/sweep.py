"""The verification sweep (`find_remaining`): the finder again, after the erasure."""

from __future__ import annotations

from collections.abc import Mapping

from requests.engine.erasure.collect import Collector, Graph, Identity, batches, find_blocks
from requests.engine.finder import find_person
from requests.engine.graph import Node
from requests.engine.ownership import ALONE, RowCollector, decide, model_for
from requests.engine.store import Connector, Record
from requests.engine.storemap import EraseAction, Fallback


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
    graph = Graph(connectors)
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
    collector = Collector(watch)
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
            for batch in batches(records):
                blocks = find_blocks(graph, collector, node, batch, graph.connectors[node.store])
                held += len(blocks)
        out.setdefault(node.store, {})[node.collection] = {
            "remaining": found + others - held,
            "held": held,
        }
    return out
