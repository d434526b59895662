"""Loops of references no null can break (store.manager_id <-> staff.store_id): the person's
records in one are deleted at once where the database defers the loop's checks to the commit."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from requests.engine.erasure.collect import batches, norm, norm_key, sorted_records
from requests.engine.graph import Node, declared_references
from requests.engine.storemap import EraseAction

if TYPE_CHECKING:
    from requests.engine.erasure.store_run import StoreRun


def defer_loops(run: StoreRun, looped: dict[str, str], mine) -> dict[str, list[str]]:
    """The looped collections whose records can be deleted, because the database put off
    the checks of every reference inside their loop to the commit, each mapped to the
    loop's collections to delete (erasure_order places a loop's collections together)."""
    store_map = run.connector.store_map
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
            for r in declared_references({run.store: store_map})
            if r.target.store == run.store
            and r.node.collection in inside
            and r.target.collection in inside
            and not r.reference.nullable
        ]
        if run.connector.defer_references(refs):
            out.update(dict.fromkeys(members, members))
    return out


def delete_loop(run: StoreRun, members: list[str], mine, loop: str) -> None:
    """Delete the person's records in a loop whose checks are deferred to the commit. A
    record that a surviving record refers to (someone else's, or the person's that is kept)
    stays and is masked, as without deferral; dropping it may keep others, so until none
    changes. Everything left is deleted, in any order: the commit checks the result."""
    store_map = run.connector.store_map
    going = {c: {item[0]: item for item in mine[c]} for c in members}
    staying: dict[str, list] = defaultdict(list)
    changed = True
    while changed:
        changed = False
        for cname in members:
            node = Node(run.store, cname)
            batch = list(going[cname].values())
            if not batch:
                continue
            incoming = run.graph.incoming.get(node, [])
            outside = [r for r in incoming if r.node.store != run.store]
            inside = [r for r in incoming if r.node.store == run.store]
            stays = set(run.blocks(node, batch, outside)) if outside else set()
            stays |= _referred_by_survivors(run, node, batch, inside, going)
            for nkey in stays:
                staying[cname].append(going[cname].pop(nkey))
                changed = True
    for cname in members:
        collection = store_map.collections[cname]
        out = run.result.collection(cname)
        keys = [key for _, (key, _) in going[cname].values()]
        for chunk in batches(keys):
            out.deleted += run.delete_keys(collection, list(chunk))
            run.tick()
        if keys:
            out.notes.append(
                f"deleted with the database's checks of the loop deferred to the commit ({loop})"
            )
        if staying[cname]:
            out.notes.append(
                "masked instead of deleted: records of the loop that records kept refer "
                f"to ({loop})"
            )
            run.mask(collection, sorted_records(dict(staying[cname])))


def _referred_by_survivors(run: StoreRun, node: Node, batch, refs, going) -> set[tuple]:
    """The records of `batch` that a record of this store that is not going refers to."""
    stays: set[tuple] = set()
    for ref in refs:
        by_value: dict[Any, list[tuple]] = defaultdict(list)
        originals: dict[Any, Any] = {}
        for nkey, (_, values) in batch:
            value = run.collector.value(node, values, ref.reference.field)
            if value is not None:
                by_value[norm(value)].append(nkey)
                originals.setdefault(norm(value), value)
        if not by_value:
            continue
        leaving = going.get(ref.node.collection, {})
        referring = run.graph.collection(ref.node)
        run.result.statements += 1
        found = run.connector.referrers(referring, ref.field, list(originals.values()))
        for key, value in found:
            nkey = norm_key(key)
            if nkey in leaving:
                continue  # deleted with the loop
            stays.update(by_value.get(norm(value), ()))
    return stays
