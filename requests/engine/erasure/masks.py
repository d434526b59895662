"""The masks erasure writes (a hold's, a full mask's) and the tally of what a collection's
fallback did, for its notes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from requests.engine.erasure.collect import Block
from requests.engine.graph import DeclaredReference, Node
from requests.engine.store import FieldMask
from requests.engine.storemap import Collection, MaskStrategy


def masked_fields(collection: Collection) -> list[str]:
    """The fields erasure overwrites when it masks a record of `collection` (for `stores check`
    and the preview, which say so before anyone approves: requests.engine.readiness)."""
    return [mask.field for mask in full_masks(collection)]


def hold_masks(collection: Collection) -> list[FieldMask]:
    """A hold masks only the fields the map gives a strategy: the rest is what the law keeps."""
    return [
        FieldMask(name, spec.mask, spec.mask_value)
        for name, spec in collection.fields.items()
        if spec.mask is not None and spec.mask != MaskStrategy.KEEP
    ]


def full_masks(collection: Collection) -> list[FieldMask]:
    """Masking a record anonymises it: fields with a strategy get it; identity fields and fields
    with data categories get the column's default (null, or a keyed hash where null is not
    allowed). Keys and references stay: they are the record's structure, not its content."""
    out = hold_masks(collection)
    named = {m.field for m in out} | {
        n for n, s in collection.fields.items() if s.mask == MaskStrategy.KEEP
    }
    structure = set(collection.key) | set(collection.reference_fields())
    for name, spec in collection.fields.items():
        if name in named or name in structure:
            continue
        if spec.identity or spec.categories:
            out.append(FieldMask(name))
    return out


def describe_masks(masks: Sequence[FieldMask]) -> str:
    return ", ".join(f"{m.field} ({m.strategy.value if m.strategy else 'default'})" for m in masks)


@dataclass
class FallbackTally:
    """What a collection's fallback did, summed over its batches, for the notes."""

    records: int = 0
    others: int = 0
    own: int = 0
    # The references it comes through, by (referring collection, field).
    refs: dict[tuple[Node, str], DeclaredReference] = field(default_factory=dict)
    cleared: int = 0  # nullify: references set to null

    def add(self, blocks: Sequence[Block]) -> None:
        for block in blocks:
            self.records += 1
            self.others += block.others
            self.own += block.own
            self.refs.update(block.refs)

    def referenced_by(self, store: str) -> str:
        parts = []
        if self.others:
            parts.append(f"{self.others} record(s) of others")
        if self.own:
            parts.append(f"{self.own} of the person's records that are kept (held or masked)")
        through = sorted(
            f"{r.node.collection}.{r.field}"
            if r.node.store == store
            else f"{r.node.store}.{r.node.collection}.{r.field}"
            for r in self.refs.values()
        )
        return f"referenced by {' and '.join(parts)} (through {', '.join(through)})"
