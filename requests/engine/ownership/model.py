"""The ownership edges of a set of maps (no data), built once per set of maps and cached."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from requests.engine.graph import Node, declared_references
from requests.engine.storemap import Collection, Follow, RefKind, Role, StoreMap


@dataclass(frozen=True)
class OwnerRef:
    """An owner reference seen from one side: `node.field` holds values of `target.target_field`."""

    node: Node
    field: str
    target: Node
    target_field: str
    nullable: bool


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
MODEL_CACHE_SIZE = 64


def model_for(maps: Mapping[str, StoreMap]) -> Model:
    key = tuple((name, id(m)) for name, m in maps.items())
    hit = _MODELS.get(key)
    if hit is not None:
        return hit[0]
    model = Model(maps)
    if len(_MODELS) >= MODEL_CACHE_SIZE:
        _MODELS.clear()
    _MODELS[key] = (model, tuple(maps.values()))
    return model
