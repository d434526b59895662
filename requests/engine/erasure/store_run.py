"""One store's erasure in its transaction: shared records released, the person's records held,
masked or deleted in the order of `erasure_order`, with the fallbacks where others still refer
to them."""

from __future__ import annotations

from collections import defaultdict

from requests.engine.erasure.collect import (
    Block,
    Collector,
    Graph,
    batches,
    find_blocks,
    norm,
    norm_key,
    sorted_records,
)
from requests.engine.erasure.loops import defer_loops, delete_loop
from requests.engine.erasure.masks import FallbackTally, describe_masks, full_masks, hold_masks
from requests.engine.erasure.order import erasure_order
from requests.engine.erasure.result import StoreErasure
from requests.engine.graph import DeclaredReference, Node
from requests.engine.ownership import REASONS, SHARED, Ownership
from requests.engine.store import Connector, FieldMask, PermanentStoreError
from requests.engine.storemap import Collection, EraseAction, Fallback, MaskStrategy


class StoreRun:
    def __init__(self, connector, graph, collector, hash_key, progress, result, ownership) -> None:
        self.ownership: Ownership = ownership
        self.connector: Connector = connector
        self.store = result.store
        self.graph: Graph = graph
        self.collector: Collector = collector
        self.hash_key = hash_key
        self.progress = progress
        self.result: StoreErasure = result
        self.fallbacks: dict[tuple[str, str], FallbackTally] = defaultdict(FallbackTally)

    def tick(self) -> None:
        if self.progress is not None:
            self.progress()

    def records(self, cname: str) -> list[tuple[tuple, tuple[tuple, tuple]]]:
        return sorted_records(self.collector.records.get(Node(self.store, cname), {}))

    def run(self) -> None:
        store_map = self.connector.store_map
        order, late, looped = erasure_order(self.store, store_map)
        mine = {cname: self.records(cname) for cname in order}
        shared = {
            cname: self.ownership.keys(Node(self.store, cname), SHARED)
            for cname in store_map.collections
        }
        if not any(mine.values()) and not any(shared.values()):
            return  # nothing of the person here: no transaction, no statement
        for cname, records in mine.items():
            if records and not store_map.collections[cname].key:
                raise PermanentStoreError(
                    f"collection {cname}: no key, so the person's records cannot be erased one "
                    "by one; give it a key in the map"
                )
        with self.connector.transaction():
            self.release_shared(shared)
            self.clear_late_links(late, mine)
            deferred = defer_loops(self, looped, mine)
            loops_done: set[str] = set()
            for cname in order:
                if not mine[cname]:
                    continue
                collection = store_map.collections[cname]
                action = collection.erasure.action
                if action == EraseAction.HOLD:
                    self.hold(collection, mine[cname])
                elif cname in deferred:
                    if cname not in loops_done:  # the loop's first collection: all of the loop
                        loops_done.update(deferred[cname])
                        delete_loop(self, deferred[cname], mine, looped[cname])
                elif action == EraseAction.MASK or cname in looped:
                    if action == EraseAction.DELETE:
                        self.result.collection(cname).notes.append(
                            "masked instead of deleted: the collection is in a loop of "
                            f"references none of which is nullable ({looped[cname]})"
                        )
                    self.mask(collection, mine[cname])
                else:
                    self.delete(collection, mine[cname])
                self.write_notes(collection)
                self.tick()

    # Statements (counted) ---------------------------------------------------------------------

    def delete_keys(self, collection: Collection, keys: list[tuple]) -> int:
        self.result.statements += 1
        return self.connector.delete_keys(collection, keys)

    def mask_keys(self, collection: Collection, keys: list[tuple], masks) -> int:
        self.result.statements += 1
        return self.connector.mask_keys(collection, keys, masks, hash_key=self.hash_key)

    # Actions ----------------------------------------------------------------------------------

    def release_shared(self, shared: dict[str, list[tuple]]) -> None:
        """Shared records are never deleted or masked: only their references to the person's
        records that are deleted are set to null, where the reference allows it. Otherwise the
        record stays as it is and the person's record it points at takes its fallback."""
        model = self.ownership.model
        for cname, keys in shared.items():
            if not keys:
                continue
            node = Node(self.store, cname)
            collection = self.graph.collection(node)
            out = self.result.collection(cname)
            if not collection.key:
                out.kept += len(keys)
                out.notes.append(f"kept: {len(keys)} shared record(s), never erased (no key)")
                continue
            reasons: dict[str, int] = defaultdict(int)
            rows = self.ownership.rows[node]
            states = self.ownership.reasons[node]
            # Keys grouped by the references to clear on them: one statement sets all of a
            # record's references to null, so the count it returns is of records, not fields.
            clear: dict[tuple[str, ...], list[tuple]] = defaultdict(list)
            for key in keys:
                nkey = norm_key(key)
                reasons[states[nkey]] += 1
                fields: set[str] = set()
                for ref in model.owners_out.get(node, []) + model.mentions_out.get(node, []):
                    target = self.graph.collection(ref.target)
                    if target.erasure.action != EraseAction.DELETE:
                        continue  # the person's record stays (held or masked): so may the link
                    value = rows[nkey].values.get(ref.field)
                    if ref.nullable and self.ownership.points_at_person(ref, value):
                        fields.add(ref.field)
                if fields:
                    clear[tuple(sorted(fields))].append(key)
            why = ", ".join(f"{REASONS[code]} ({code}): {n}" for code, n in sorted(reasons.items()))
            out.notes.append(f"kept: {len(keys)} shared record(s), never erased ({why})")
            cleared = 0
            for fnames, field_keys in sorted(clear.items()):
                masks = [FieldMask(fname, MaskStrategy.NULL) for fname in fnames]
                done = 0
                for batch in batches(field_keys):
                    done += self.mask_keys(collection, list(batch), masks)
                    self.tick()
                cleared += done
                out.notes.append(
                    f"{done} shared record(s): their reference {', '.join(fnames)} to the "
                    "person's records set to null"
                )
            # Each record is counted once: set to null when a reference of it was cleared (only
            # records that changed: a second run counts none), kept otherwise.
            out.nullified += cleared
            out.kept += len(keys) - cleared

    def clear_late_links(self, late: list[DeclaredReference], mine) -> None:
        """Clear the person's own links that the order could not respect (see erasure_order):
        only on records that are to be deleted, only where they point at the person's records."""
        for ref in late:
            referring = self.graph.collection(ref.node)
            if referring.erasure.action != EraseAction.DELETE:
                continue  # kept records keep their links, and so keep what they point at
            target = ref.target
            pointed = {
                norm(self.collector.value(target, values, ref.reference.field))
                for _, (_, values) in mine[target.collection]
            }
            keys = [
                key
                for _, (key, values) in mine[ref.node.collection]
                if norm(self.collector.value(ref.node, values, ref.field)) in pointed - {None}
            ]
            for batch in batches(keys):
                self.mask_keys(referring, list(batch), [FieldMask(ref.field, MaskStrategy.NULL)])
                self.tick()

    def hold(self, collection: Collection, records) -> None:
        out = self.result.collection(collection.name)
        out.held += len(records)
        out.basis = collection.erasure.basis
        if not out.basis:
            out.notes.append("held, but the map gives no legal basis for the hold")
        masks = hold_masks(collection)
        if not masks:
            return
        for batch in batches(records):
            self.mask_keys(collection, [key for _, (key, _) in batch], masks)
            self.tick()
        out.notes.append(f"held with these fields masked: {describe_masks(masks)}")

    def mask(self, collection: Collection, records) -> None:
        out = self.result.collection(collection.name)
        masks = full_masks(collection)
        if not masks:
            out.kept += len(records)
            out.notes.append("kept unchanged: the map masks this collection but names no field")
            return
        for batch in batches(records):
            out.masked += self.mask_keys(collection, [key for _, (key, _) in batch], masks)
            self.tick()

    def delete(self, collection: Collection, records) -> None:
        out = self.result.collection(collection.name)
        node = Node(self.store, collection.name)
        incoming = self.graph.incoming.get(node, [])
        inside = [r for r in incoming if r.node.store == self.store]
        outside = [r for r in incoming if r.node.store != self.store]
        guards = [
            (self.graph.collection(r.node), r.field, r.reference.field)
            for r in inside
            if r.node != node
        ]
        for batch in batches(records):
            blocks: dict[tuple, Block] = {}
            if outside:  # other stores first: no statement of theirs can join this one's
                blocks = self.blocks(node, batch, outside)
            candidates = [item for item in batch if item[0] not in blocks]
            keys = [key for _, (key, _) in candidates]
            deleted = None
            if candidates and inside and len(guards) == len(inside):
                # One statement deletes what nothing refers to; only when some records stay
                # (referred to, or already gone) are they looked at, to say why.
                self.result.statements += 1
                deleted = self.connector.delete_unreferenced(collection, keys, guards)
            if deleted is not None:
                out.deleted += deleted
                if deleted < len(candidates):
                    blocks.update(self.blocks(node, candidates, inside))
            elif candidates:
                if inside:
                    blocks.update(self.blocks(node, candidates, inside))
                free = [key for nkey, (key, _) in candidates if nkey not in blocks]
                if free:
                    out.deleted += self.delete_keys(collection, free)
            if blocks:
                self.fall_back(collection, node, batch, blocks, out)
            self.tick()

    def blocks(self, node: Node, batch, refs) -> dict[tuple, Block]:
        self.result.statements += len(refs)
        return find_blocks(
            self.graph,
            self.collector,
            node,
            batch,
            self.connector,
            in_transaction=True,
            refs=refs,
        )

    def fall_back(self, collection, node, batch, blocks: dict[tuple, Block], out) -> None:
        fallback = collection.erasure.fallback
        held = [(nkey, key, values) for nkey, (key, values) in batch if nkey in blocks]
        if fallback == Fallback.NULLIFY:
            clearable = [item for item in held if self.clearable(blocks[item[0]])]
            held = [item for item in held if item not in clearable]
            if clearable:
                self.nullify(collection, node, clearable, blocks, out)
            if not held:
                return
            fallback = Fallback.MASK  # what cannot be cleared is masked instead (and noted)
            kind = "mask-not-nullable"
        else:
            kind = fallback.value
        tally = self.fallbacks[(collection.name, kind)]
        tally.add([blocks[nkey] for nkey, _, _ in held])
        keys = [key for _, key, _ in held]
        if fallback == Fallback.KEEP:
            out.kept += len(keys)
            return
        masks = full_masks(collection)
        if not masks:
            out.kept += len(keys)
            self.fallbacks[(collection.name, "mask-nothing")].add([])
            return
        out.masked += self.mask_keys(collection, keys, masks)

    def clearable(self, block: Block) -> bool:
        return all(r.node.store == self.store and r.reference.nullable for r in block.refs.values())

    def nullify(self, collection, node, items, blocks, out) -> None:
        refs: dict[tuple[Node, str], DeclaredReference] = {}
        for nkey, _, _ in items:
            refs.update(blocks[nkey].refs)
        cleared = 0
        for _, ref in sorted(refs.items()):
            values = list(
                dict.fromkeys(
                    v
                    for _, _, vals in items
                    if (v := self.collector.value(node, vals, ref.reference.field)) is not None
                )
            )
            self.result.statements += 1
            cleared += self.connector.nullify(self.graph.collection(ref.node), ref.field, values)
        tally = self.fallbacks[(collection.name, "nullify")]
        tally.add([blocks[nkey] for nkey, _, _ in items])
        tally.cleared += cleared
        out.nullified += self.delete_keys(collection, [key for _, key, _ in items])

    def write_notes(self, collection: Collection) -> None:
        out = self.result.collection(collection.name)
        for (cname, kind), tally in sorted(self.fallbacks.items()):
            if cname != collection.name or not tally.records:
                continue
            why = tally.referenced_by(self.store)
            if kind == "keep":
                out.notes.append(f"kept: {tally.records} record(s) {why} (fallback keep)")
            elif kind == "mask":
                out.notes.append(
                    f"masked instead of deleted: {tally.records} record(s) {why} "
                    f"(fallback mask: {describe_masks(full_masks(collection))})"
                )
            elif kind == "mask-not-nullable":
                out.notes.append(
                    f"masked instead of deleted: {tally.records} record(s) {why}; the nullify "
                    "fallback needs every such reference nullable and in this store"
                )
            elif kind == "nullify":
                out.notes.append(
                    f"deleted after setting {tally.cleared} reference(s) to null: "
                    f"{tally.records} record(s) {why} (fallback nullify)"
                )
        if (collection.name, "mask-nothing") in self.fallbacks:
            out.notes.append("kept: referenced by others, and the map names no field to mask")
