"""Erasure of one person's records in one connected store: planned, ordered, safe for others.

Entry points (plain Python, no Django; the erasure executor in requests.services.erasure calls
them once per (request, store) job):

    erase_person(connectors, identity, *, store, hash_key, phone_region=None, progress=None,
                 request_id=None) -> StoreErasure
    find_remaining(connectors, identity, *, phone_region=None)
        -> {store: {collection: {"remaining": n, "held": n}}}
    store_order(maps) -> [store, ...]      # the order in which to run the stores' jobs

`connectors` is every enabled store (name -> connector with its map), `identity` the verified
identity (type -> value or values, normalised here). `hash_key` keys the `hash` mask strategy
(HMAC-SHA256); `progress()` is called between batches (the caller renews its job lease there and
may raise to abort: a SQL store's transaction is then rolled back). `request_id` is sent to
webhook stores (their erase call is idempotent per request); without it the connector's
`request_id` option is used.

What `erase_person` does for `store`:
1. runs the finder over the stores that can lead to `store` or refer into it (a CRM reached
   through the shop's customer ids is the person's even though the CRM has no email column),
   keeping only keys: those of `store`'s records, and those of the person's records elsewhere
   that refer into `store` (so they are not mistaken for other people's);
2. plans per collection from the map: `delete`, `mask` (every field with a mask strategy, and
   identity and categorised fields without one, which get the column's default: null where
   allowed, else a keyed hash) or `hold` (Art. 17(3): the records stay, only fields with a mask
   strategy are masked, and the basis is reported);
3. executes in the reference graph's order, children before parents, through the connector's
   erasure primitives (requests.connectors.base: `transaction`, `delete_keys`, `mask_keys`,
   `nullify`, `referrers`), in batches of ERASE_BATCH keys; a SQL store does all of it in one
   transaction. Before deleting a batch it asks which of those records are still referred to
   by records that survive the erasure (other people's, or the person's own held, masked or
   kept ones), through every reference in every map that points at the collection, whatever
   its `follow`. Those are never deleted (no cascade into anyone): the collection's
   `erasure.fallback` applies instead: `mask` the record, `nullify` the referring fields (the
   referring records' own foreign keys, only where every such reference is `nullable` and in
   the same store; else mask), or `keep` it, and a note says why.

Webhook stores are asked to erase (their answer may be `pending`: StoreErasure.status says so and
`jobs` names what to poll with the connector's `status`). Manual stores are not touched:
StoreErasure.status is `manual` and the caller makes a staff task.

Idempotence. Running `erase_person` again, after a crash or after success, is harmless:
- a SQL store's erasure is one transaction: after a crash nothing of it happened, and the next
  run starts afresh; after success, deleted records are simply not found again;
- Redis keys and files are removed one batch at a time; a second run finds what is left;
- a masked record is found again only while something still identifies it: its identity fields
  are masked (unless the map says `keep` for them), so a masked customer is no longer the
  person's and neither are the records reached only through it. Records that stay reachable
  (held records whose identity fields are kept, and what is reached through them) are found and
  handled again: `null` and `fixed` masks write the same values and count nothing (only records
  that change are counted); `hash` and `random` write new meaningless values and count again.
  Held records are reported as held on every run.
The order of the stores' jobs matters across stores: a store whose records are reached through
another store's records (the CRM through the shop) must be erased first, or its records can no
longer be found once the shop's customer is gone. `store_order` gives that order.

StoreErasure holds counts and reasons only: never a value, a key or an identity.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from requests.connectors.base import Connector
from requests.engine.storemap import StoreMap

# Keys per erasure statement (DELETE ... WHERE key IN (...), UPDATE ..., referrer checks): a
# person's ten thousand records take ten statements per collection, while one statement stays
# far under every driver's bound-parameter limit and holds its locks for milliseconds.
ERASE_BATCH = 1000

Identity = Mapping[str, str | Sequence[str]]
Progress = Callable[[], None]

COUNTS = ("deleted", "masked", "nullified", "held", "kept")

# StoreErasure.status values.
DONE = "done"  # the store's erasure is complete
PENDING = "pending"  # a webhook service erases in the background: poll its jobs
MANUAL = "manual"  # nothing was executed: a person must do it (staff task)


@dataclass
class CollectionErasure:
    """What happened to the person's records in one collection (counts, never values)."""

    deleted: int = 0
    masked: int = 0
    nullified: int = 0  # deleted after clearing other records' references to them
    held: int = 0  # kept under a retention hold (Art. 17(3)); see `basis`
    kept: int = 0  # kept by the `keep` fallback: others' records still refer to them
    basis: str | None = None  # the legal basis of a hold
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.deleted + self.masked + self.nullified + self.held + self.kept

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "deleted": self.deleted,
            "masked": self.masked,
            "nullified": self.nullified,
            "held": self.held,
            "kept": self.kept,
            "notes": list(self.notes),
        }
        if self.basis:
            out["basis"] = self.basis
        return out


@dataclass
class StoreErasure:
    """The result of erasing the person in one store: JSON-ready, free of personal data."""

    store: str
    kind: str
    status: str = DONE
    collections: dict[str, CollectionErasure] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)  # webhook jobs to poll while pending
    statements: int = 0  # erasure statements (or calls) made in the store, for tests/benchmarks

    def collection(self, name: str) -> CollectionErasure:
        return self.collections.setdefault(name, CollectionErasure())

    def count(self, what: str) -> int:
        """Total of one count (`deleted`, `masked`, ...) over the store's collections."""
        return sum(getattr(c, what) for c in self.collections.values())

    @property
    def changed(self) -> int:
        """Records deleted, masked or nullified by this run (held and kept change nothing)."""
        return self.count("deleted") + self.count("masked") + self.count("nullified")

    def to_json(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "kind": self.kind,
            "status": self.status,
            "collections": {name: c.to_json() for name, c in self.collections.items()},
            "totals": {what: self.count(what) for what in COUNTS},
            "notes": list(self.notes),
            "jobs": list(self.jobs),
        }


def erase_person(
    connectors: Mapping[str, Connector],
    identity: Identity,
    *,
    store: str,
    hash_key: bytes,
    phone_region: str | None = None,
    progress: Progress | None = None,
    request_id: str | None = None,
) -> StoreErasure:
    """Erase the person's records in `store` (see the module docstring); StoreError on failure,
    with `transient` saying whether a retry can help."""
    raise NotImplementedError


def find_remaining(
    connectors: Mapping[str, Connector],
    identity: Identity,
    *,
    phone_region: str | None = None,
) -> dict[str, dict[str, dict[str, int]]]:
    """The verification sweep: the finder again, over every store.

    Returns store -> collection -> {"remaining": n, "held": n} for every collection where
    something of the person was found. `held`: records in collections under a hold, and records
    of `keep`-fallback collections that surviving records still refer to (kept on purpose).
    Everything else is `remaining`: the erasure is not complete.
    """
    raise NotImplementedError


def store_order(maps: Mapping[str, StoreMap]) -> list[str]:
    """Store names in the order their erasure jobs should run: a store whose collections refer
    to another store's records (and are found through them) before that store."""
    raise NotImplementedError
