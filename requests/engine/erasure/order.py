"""The order of erasure: of the stores' jobs (`store_order`), and of one store's collections,
children first, with the loops of references that order cannot respect (`erasure_order`)."""

from __future__ import annotations

from collections.abc import Mapping

from requests.engine.graph import DeclaredReference, blocking_cycles, declared_references
from requests.engine.storemap import Follow, Role, StoreMap


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
    to the commit (Connector.defer_references, requests.engine.erasure.loops.delete_loop).
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
    # delete a loop at once (see loops.delete_loop), after its referrers, before its parents.
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
