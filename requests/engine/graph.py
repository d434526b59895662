"""The graph of references between collections, across every connected store.

Two readings of the same references:

- The walk (`WalkPlan`): which collections the finder searches from the identity fields, and how
  records found in one collection give the values to look up in the next. A reference on
  `invoice.customer_id` to `customer.id` with `follow: children` is the edge customer -> invoice:
  the ids of the person's customers are looked up in `invoice.customer_id`. With `follow: parent`
  it is invoice -> customer (the `customer_id` values are looked up in `customer.id`).
- Deletion order (`deletion_order`, `blocking_cycles`): a record can only be deleted once nothing
  still points at it, so a referencing collection is erased before the collection it references.
  That holds whatever `follow` says, because the database's foreign keys do not know about it.

A cycle error means: within one store, a loop of references none of which is `nullable`
(customer.last_order_id -> order and order.customer_id -> customer, both NOT NULL). Erasure could
not order the deletes (each side must go first) and has no field it may set to null to break the
loop. Marking one reference of the loop `nullable: true` (erasure clears that field first) resolves
it. Loops through a nullable reference, including self-references such as employee.reports_to, are
fine. References across stores never form a blocking cycle: no database enforces them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from requests.engine.storemap import Reference, RefKind, Role, StoreMap


@dataclass(frozen=True, order=True)
class Node:
    store: str
    collection: str
    # Reached through a mention (customer.support_rep_id from the employee): such rows are shown
    # to the mentioned person as shared rows and never lead onward, so the walk keeps them apart.
    mentioned: bool = False

    def __str__(self) -> str:
        return f"{self.store}.{self.collection}"


@dataclass(frozen=True)
class Entry:
    """A way into a collection: a field looked up by identity type, or by value (identity None)."""

    node: Node
    field: str
    identity: str | None = None


@dataclass(frozen=True)
class Edge:
    """Records of `source` give the values of `source_field` to look up in `target`."""

    source: Node
    source_field: str
    target: Entry
    # Where the reference is declared, for messages: (node, field).
    declared_on: tuple[Node, str]


@dataclass(frozen=True)
class DeclaredReference:
    node: Node  # the referencing collection
    field: str  # its field that holds the referenced value
    reference: Reference
    target: Node


def declared_references(maps: Mapping[str, StoreMap]) -> list[DeclaredReference]:
    out = []
    for store, store_map in maps.items():
        for cname, collection in store_map.collections.items():
            for fname, ref in collection.reference_fields().items():
                target = Node(ref.store or store, ref.collection)
                out.append(DeclaredReference(Node(store, cname), fname, ref, target))
    return out


def walk_edges(maps: Mapping[str, StoreMap]) -> list[Edge]:
    """The edges the finder may cross, from the `follow` setting of every reference, its kind and
    the collections' roles (see the ownership model in requests.engine.storemap): nothing leads
    out of reference data; a mention is crossed only from the row mentioned to the rows that
    mention it, into a `mentioned` node that leads nowhere."""
    edges = []
    for ref in declared_references(maps):
        if (
            ref.target.store not in maps
            or ref.target.collection not in maps[ref.target.store].collections
        ):
            continue  # validated elsewhere; a disabled store is simply not walked
        source_role = maps[ref.node.store].collections[ref.node.collection].effective_role
        target_role = maps[ref.target.store].collections[ref.target.collection].effective_role
        if ref.reference.kind == RefKind.MENTION:
            if ref.reference.follow.children and target_role != Role.REFERENCE:
                mentioned = Node(ref.node.store, ref.node.collection, mentioned=True)
                edges.append(
                    Edge(
                        ref.target,
                        ref.reference.field,
                        Entry(mentioned, ref.field),
                        (ref.node, ref.field),
                    )
                )
            continue
        if ref.reference.follow.children and target_role != Role.REFERENCE:
            edges.append(
                Edge(
                    ref.target,
                    ref.reference.field,
                    Entry(ref.node, ref.field),
                    (ref.node, ref.field),
                )
            )
        if ref.reference.follow.parent and source_role != Role.REFERENCE:
            edges.append(
                Edge(
                    ref.node,
                    ref.field,
                    Entry(ref.target, ref.reference.field),
                    (ref.node, ref.field),
                )
            )
    return edges


@dataclass
class WalkPlan:
    """What the finder does for a person whose identity has the given types."""

    seeds: list[Entry]
    edges_from: dict[Node, list[Edge]]
    reachable: list[Node]
    # Collections with more than one way in: a record can come back twice, so the finder keeps
    # the keys it has seen there. Elsewhere every record arrives once and nothing is kept.
    multi_entry: set[Node] = field(default_factory=set)
    # Lookup targets whose values can arrive twice (several feeding edges, or values that are
    # not unique in their source such as the `track_id` of many invoice lines): the finder
    # remembers the values looked up there so each is looked up once.
    remember: set[Entry] = field(default_factory=set)


def walk_plan(maps: Mapping[str, StoreMap], identity_types: Iterable[str]) -> WalkPlan:
    wanted = set(identity_types)
    seeds = [
        Entry(Node(store, cname), fname, itype)
        for store, store_map in maps.items()
        for cname, collection in store_map.collections.items()
        for fname, itype in collection.identity_fields().items()
        if itype in wanted
    ]
    all_edges = walk_edges(maps)
    by_source: dict[Node, list[Edge]] = defaultdict(list)
    for edge in all_edges:
        by_source[edge.source].append(edge)

    reachable: list[Node] = []
    seen: set[Node] = set()
    queue = [seed.node for seed in seeds]
    while queue:
        node = queue.pop(0)
        if node in seen:
            continue
        seen.add(node)
        reachable.append(node)
        queue.extend(edge.target.node for edge in by_source.get(node, ()))

    edges_from = {node: by_source[node] for node in reachable if by_source.get(node)}
    entries: dict[Node, set[Entry]] = defaultdict(set)
    feeders: dict[Entry, list[Edge]] = defaultdict(list)
    for seed in seeds:
        entries[seed.node].add(seed)
    for edges in edges_from.values():
        for edge in edges:
            entries[edge.target.node].add(edge.target)
            feeders[edge.target].append(edge)

    multi_entry = {node for node, ways in entries.items() if len(ways) > 1}
    remember = set()
    for entry, feeding in feeders.items():
        if len(feeding) > 1 or not _unique_in_source(maps, feeding[0]):
            remember.add(entry)
    return WalkPlan(seeds, edges_from, reachable, multi_entry, remember)


def _unique_in_source(maps: Mapping[str, StoreMap], edge: Edge) -> bool:
    """Whether each record of the edge's source holds a different value of its field."""
    collection = maps[edge.source.store].collections[edge.source.collection]
    return collection.key == [edge.source_field]


@dataclass(frozen=True)
class Cycle:
    store: str
    references: list[DeclaredReference]

    def describe(self) -> str:
        steps = [f"{r.node.collection}.{r.field} -> {r.target.collection}" for r in self.references]
        return "; ".join(steps)


def blocking_cycles(store: str, store_map: StoreMap) -> list[Cycle]:
    """Loops of non-nullable references inside one store (see the module docstring)."""
    graph: dict[str, list[DeclaredReference]] = defaultdict(list)
    for ref in declared_references({store: store_map}):
        if ref.target.store != store or ref.reference.nullable:
            continue
        if ref.target.collection not in store_map.collections:
            continue
        graph[ref.node.collection].append(ref)

    cycles: list[Cycle] = []
    reported: set[frozenset] = set()
    for component in _strongly_connected(store_map.collections, graph):
        members = set(component)
        inside = [r for c in component for r in graph.get(c, ()) if r.target.collection in members]
        if len(component) == 1 and not inside:
            continue
        path = _one_loop(component[0], graph, members)
        key = frozenset((r.node, r.field) for r in path)
        if key not in reported:
            reported.add(key)
            cycles.append(Cycle(store, path))
    return cycles


def deletion_order(store: str, store_map: StoreMap) -> list[str]:
    """Collections in an order erasure can delete them: each before those it references.

    Nullable references are left out (erasure sets them to null first). Raises ValueError on a
    blocking cycle; a validated map has none.
    """
    if blocking_cycles(store, store_map):
        raise ValueError("the map has a cycle of non-nullable references")
    referenced_by: dict[str, set[str]] = defaultdict(set)
    for ref in declared_references({store: store_map}):
        if ref.target.store == store and not ref.reference.nullable:
            referenced_by[ref.target.collection].add(ref.node.collection)
    order: list[str] = []
    placed: set[str] = set()
    remaining = list(store_map.collections)
    while remaining:
        ready = [name for name in remaining if not referenced_by[name] - placed - {name}]
        if not ready:  # unreachable after the cycle check; never loop forever
            raise ValueError("the map has a cycle of non-nullable references")
        for name in ready:
            order.append(name)
            placed.add(name)
            remaining.remove(name)
    return order


def _strongly_connected(nodes: Iterable[str], graph: Mapping[str, list[DeclaredReference]]):
    """Tarjan's algorithm, iterative so a long chain of tables cannot hit the recursion limit."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    counter = 0
    components: list[list[str]] = []
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(graph.get(root, ())))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, refs = work[-1]
            advanced = False
            for ref in refs:
                nxt = ref.target.collection
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(graph.get(nxt, ()))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


def _one_loop(start: str, graph: Mapping[str, list[DeclaredReference]], members: set[str]):
    """A shortest loop from `start` back to itself inside one strongly connected component."""
    previous: dict[str, DeclaredReference] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for ref in graph.get(node, ()):
                nxt = ref.target.collection
                if nxt not in members:
                    continue
                if nxt == start:
                    path = [ref]
                    while path[0].node.collection != start:
                        path.insert(0, previous[path[0].node.collection])
                    return path
                if nxt not in previous:
                    previous[nxt] = ref
                    following.append(nxt)
        frontier = following
    return []
