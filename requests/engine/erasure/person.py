"""`erase_person`: the finder's walk and the ownership of what it reached, then the store's
erasure (`StoreRun`), or the webhook service asked to erase."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from requests.engine.erasure.collect import Collector, Graph, Identity, Progress, sorted_records
from requests.engine.erasure.result import MANUAL, PENDING, StoreErasure
from requests.engine.erasure.store_run import StoreRun
from requests.engine.finder import find_person, normalise_identity
from requests.engine.graph import Node
from requests.engine.ownership import ALONE, RowCollector, decide, model_for, streaming_plan
from requests.engine.store import Connector, PermanentStoreError, Record
from requests.engine.storemap import EraseAction


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

    graph = Graph(connectors)
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
    collector = Collector(watch)
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
    StoreRun(target, graph, collector, hash_key, progress, result, ownership).run()
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
        records = sorted_records(collector.records.get(Node(result.store, cname), {}))
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
