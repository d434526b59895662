"""Which collections' rows are classified as the walk reaches them, so nothing of them is held."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from requests.engine.graph import Node
from requests.engine.ownership.model import MODEL_CACHE_SIZE, Model, model_for
from requests.engine.ownership.result import ALONE, REFERENCE
from requests.engine.storemap import Role, StoreMap

# find_owned's decisions about which collections stream, by maps and identity types (the model
# kept with them holds the maps, so their ids stay theirs).
_STREAMING: dict[tuple, tuple[tuple, Model]] = {}


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
        if len(_STREAMING) >= MODEL_CACHE_SIZE:
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
