"""The answer: each row's state (the person's alone, shared and why, reference data), the counts
the preview and the certificate show, and what a shared row withholds (Art. 15(4))."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from requests.engine.graph import Node
from requests.engine.ownership.model import Model, OwnerRef
from requests.engine.ownership.rows import Row, norm, norm_key
from requests.engine.store import Connector
from requests.engine.storemap import Role

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


@dataclass
class Ownership:
    """The classification of every row the finder reached (keys and reference values only)."""

    model: Model
    rows: dict[Node, dict[tuple, Row]]
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
