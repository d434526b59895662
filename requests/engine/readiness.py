"""What an access or erasure job would refuse or warn about in one store, said before any runs.

`stores check` and the staff preview call `store_readiness`; the jobs themselves never do. It plans
what the jobs plan (the finder's walk, the ownership model, the stores' order and the erasure's
order of collections) from the maps alone, without connecting, and says in a DPO's words:

- problems: what makes a job stop with an error, so the store cannot be handled as its map
  stands (the maps cannot be planned; a collection without a key in which the person has rows,
  which erasure refuses; a loop erasure must mask in a store that cannot mask);
- warnings: what a job does differently from what the map seems to ask (a loop of references
  none of which may be set to null, whose rows are masked instead of deleted; a fallback that
  cannot do what it says where another record still points at the person's; a collection no
  identity field or reference leads to, so nothing in it is ever found; a phone field no region
  says how to read, so a number written without its country code is never found);
- notes: how erasure keeps its order (a nullable reference it sets to null first).

Every message names collections (and their tables) and fields: never a value, a host or a path.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from requests.engine.erasure import erasure_order, masked_fields, store_order
from requests.engine.graph import DeclaredReference, declared_references, walk_plan
from requests.engine.ownership import Model
from requests.engine.storemap import (
    BUILTIN_IDENTITY_TYPES,
    Collection,
    EraseAction,
    Fallback,
    Match,
    Role,
    StoreMap,
)


@dataclass
class Readiness:
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Collections whose records erasure would not delete as the map asks: name -> what it does
    # instead ("mask" for a loop, "refuse" without a key), for the preview's per-collection line.
    erasure_instead: dict[str, str] = field(default_factory=dict)


def _named(collection: Collection, noun: str) -> str:
    if collection.physical_name != collection.name:
        return f"{noun} {collection.name} ({collection.physical_name})"
    return f"{noun} {collection.name}"


def store_readiness(
    store: str,
    maps: Mapping[str, StoreMap],
    *,
    erases_by_key: bool = True,
    can_mask: bool = True,
    noun: str = "collection",
    reads_phone_regions: bool = False,
    phone_region: str | None = None,
) -> Readiness:
    """What jobs would refuse or do differently in `store` (its map is `maps[store]`; the other
    maps are every other enabled store's, since the finder walks them all).

    `erases_by_key`: erasure deletes and masks records by their keys (not a webhook that erases
    by identity, not a manual store). `can_mask`: the store can mask records. `noun` names a
    collection as the store's staff know it ("table" in a database). `phone_region`: the portal's
    default region for phone numbers written without a country code, which stores that
    `reads_phone_regions` (as people typed them) need.
    """
    out = Readiness()
    store_map = maps[store]
    try:
        types = set(BUILTIN_IDENTITY_TYPES).union(*(m.identity_types for m in maps.values()))
        plan = walk_plan(maps, types)
        Model(maps)
        store_order(maps)
        order, late, looped = erasure_order(store, store_map)
    except Exception as exc:  # whatever a planner trips on, a job would trip on too
        out.problems.append(
            f"the map cannot be planned ({type(exc).__name__}: {exc}): no access or erasure job "
            "can run in this store until the map is corrected"
        )
        return out
    reached = {(node.store, node.collection) for node in plan.reachable}
    unreached = [
        c
        for name, c in store_map.collections.items()
        if (store, name) not in reached and c.effective_role != Role.REFERENCE
    ]
    if unreached:
        out.warnings.append(
            f"{', '.join(_named(c, noun) for c in unreached)}: no field identifies a person "
            "and no reference leads here from one that does, so access and erasure never find "
            "anything in it; mark its identity fields or references in the map, or mark it "
            "`role: reference` if it is catalogue data"
        )
    if reads_phone_regions:
        out.warnings.extend(_phone_warnings(store_map, phone_region, noun))
    if not erases_by_key:
        return out
    for name in order:
        collection = store_map.collections[name]
        if (
            collection.key
            or (store, name) not in reached
            or collection.effective_role == Role.REFERENCE
        ):
            continue
        out.problems.append(
            f"{_named(collection, noun)} has no key (no primary key, and the map names none): "
            "erasure cannot tell the person's records there from other people's, so it stops "
            "with an error, erasing nothing in this store, whenever the person has records "
            "in it; give the collection a `key` in the map (fields that identify one record)"
        )
        out.erasure_instead[name] = "refuse"
    for loop in sorted(set(looped.values())):
        members = [n for n in order if looped.get(n) == loop]
        masked = [n for n in members if store_map.collections[n].erasure.action != EraseAction.HOLD]
        if not masked:
            continue
        if not can_mask:
            out.problems.append(
                f"loop of references none of which may be set to null ({loop}): erasure would "
                "have to mask the person's records in "
                f"{', '.join(_named(store_map.collections[n], noun) for n in masked)} instead "
                "of deleting them, and this kind of store cannot mask, so erasure stops with an "
                "error; mark one of these references `nullable: true` if the field may be empty"
            )
            for n in masked:
                out.erasure_instead[n] = "refuse"
            continue
        what = []
        for n in masked:
            fields = masked_fields(store_map.collections[n])
            if fields:
                what.append(f"{_named(store_map.collections[n], noun)}: {', '.join(fields)}")
            else:
                what.append(
                    f"{_named(store_map.collections[n], noun)}: nothing (no field is "
                    "marked as identity or personal data, so the records stay as they are)"
                )
        out.warnings.append(
            f"loop of references none of which may be set to null ({loop}): erasure masks the "
            f"person's records in these {noun}s instead of deleting them ("
            + "; ".join(what)
            + "); mark one of these references `nullable: true` if the field may be empty, or "
            "mark a collection `role: reference` if it is catalogue data (on PostgreSQL, "
            "foreign keys that are all DEFERRABLE let erasure delete them instead)"
        )
        for n in masked:
            # Without a key erasure stops before it masks anything: that stays what it does.
            out.erasure_instead.setdefault(n, "mask")
    out.warnings.extend(_fallback_warnings(store, maps, order, out, can_mask, noun))
    for ref in sorted(late, key=lambda r: (r.node.collection, r.field)):
        out.notes.append(
            f"{ref.node.collection}.{ref.field} -> {ref.target.collection} closes a loop of "
            f"references: erasure sets {ref.node.collection}.{ref.field} to null in the "
            "person's records first, then deletes them"
        )
    return out


def _fallback_warnings(
    store: str,
    maps: Mapping[str, StoreMap],
    order: list[str],
    out: Readiness,
    can_mask: bool,
    noun: str,
) -> list[str]:
    """Where erasure's fallback (for a record of the person's another record still points at)
    cannot do what the map says: `nullify` through a reference that may not be null or lives in
    another store (the record is masked instead), a mask with no field to overwrite (the record
    is kept as it is), or a mask in a store that cannot mask (erasure stops)."""
    store_map = maps[store]
    incoming: dict[str, list[DeclaredReference]] = defaultdict(list)
    for ref in declared_references(maps):
        if ref.target.store == store and ref.target.collection in store_map.collections:
            incoming[ref.target.collection].append(ref)
    warnings = []
    for name in order:
        collection = store_map.collections[name]
        refs = incoming.get(name)
        if (
            not refs
            or name in out.erasure_instead
            or collection.erasure.action != EraseAction.DELETE
            or collection.effective_role == Role.REFERENCE
        ):
            continue
        named = _named(collection, noun)
        through = ", ".join(
            sorted(
                f"{r.node.collection}.{r.field}"
                if r.node.store == store
                else f"{r.node.store}.{r.node.collection}.{r.field}"
                for r in refs
            )
        )
        masks = collection.erasure.fallback == Fallback.MASK
        if collection.erasure.fallback == Fallback.NULLIFY:
            fixed = sorted(
                f"{r.node.collection}.{r.field}"
                if r.node.store == store
                else f"{r.node.store}.{r.node.collection}.{r.field}"
                for r in refs
                if r.node.store != store or not r.reference.nullable
            )
            if fixed:
                masks = True
                warnings.append(
                    f"{named}: its fallback is `nullify`, but {', '.join(fixed)} may not be set "
                    "to null (not `nullable`, or in another store): a record of the person's "
                    "that one of those still points at is masked instead of deleted"
                )
        if not masks:
            continue
        if not can_mask:
            warnings.append(
                f"{named}: a record of the person's that another record still points at "
                f"(through {through}) would be masked, and this kind of store cannot mask, so "
                "erasure would stop with an error; set the collection's fallback to `keep`"
            )
        elif not masked_fields(collection):
            warnings.append(
                f"{named}: a record of the person's that another record still points at "
                f"(through {through}) is kept as it is: its fallback masks, and no field of it "
                "is marked as identity or personal data to mask"
            )
    return warnings


def _phone_warnings(store_map: StoreMap, default: str | None, noun: str) -> list[str]:
    """Phone fields compared as people typed them are read with a region (the field's, the
    store's, else the portal's): with none, a number written without its country code cannot be
    read, and is never found."""
    unread = [
        f"{collection.name}.{name}"
        for collection in store_map.collections.values()
        for name, spec in collection.fields.items()
        if spec.identity == "phone"
        and spec.match == Match.AUTO
        and store_map.phone_region_for(collection, name, default) is None
    ]
    if not unread:
        return []
    return [
        f"{', '.join(unread)}: phone numbers stored without their country code (such as "
        "`06 12 34 56 78`) cannot be read, because neither the map (`phone_region`, for the "
        "store or the field) nor the portal (PORTAL_DEFAULT_PHONE_REGION) names a region, so "
        f"the person's records in {'these ' + noun + 's' if len(unread) > 1 else 'this ' + noun} "
        "are not found by such a number; name the region, or mark the field `match: exact` if "
        "it holds numbers in international form (+33...)"
    ]
