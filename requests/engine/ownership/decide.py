"""Deciding which collected rows are the person's alone, repeated until nothing changes."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from requests.engine.graph import Node
from requests.engine.ownership.model import Model, OwnerRef
from requests.engine.ownership.result import (
    ALONE,
    MENTION,
    REFERENCE,
    SHARED,
    SHARED_OWNER,
    SHARED_PARENT,
    Ownership,
)
from requests.engine.ownership.rows import KEYLESS, Row, norm, norm_key
from requests.engine.store import Connector
from requests.engine.storemap import Role

# Values per `referrers` query.
REFERRER_BATCH = 1000


def decide(
    model: Model, rows: dict[Node, dict[tuple, Row]], connectors: Mapping[str, Connector]
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
