"""Erasure of one person's records in one connected store: planned, ordered, safe for others.

Entry points (plain Python, no Django; the erasure executor in requests.services.erasure.run calls
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
   The same walk decides whose each row is (requests.engine.ownership): only rows that are the
   person's alone are erased; shared rows (another person owns them too, or they only mention
   the person) are never deleted or masked: their references to the person's rows that are
   deleted are set to null where the reference is nullable, and otherwise the person's row they
   point at takes its fallback; reference data is never touched;
2. plans per collection from the map: `delete`, `mask` (every field with a mask strategy, and
   identity and categorised fields without one, which get the column's default: null where
   allowed, else a keyed hash) or `hold` (Art. 17(3): the records stay, only fields with a mask
   strategy are masked, and the basis is reported);
3. executes in the reference graph's order, children before parents (`erasure_order`),
   through the connector's erasure primitives (requests.engine.store: `transaction`,
   `delete_keys`, `delete_unreferenced`, `mask_keys`, `nullify`, `referrers`), in batches of
   ERASE_BATCH keys; a SQL store does all of it in one transaction, whether or not the database
   enforces its foreign keys: the engine orders and checks, it never relies on cascades.
   Before deleting a batch it makes sure none of those records is still referred to by a record
   that survives the erasure (other people's, or the person's own held, masked or kept ones),
   through every reference in every map that points at the collection, whatever its `follow`:
   references from other stores by asking those stores first (`referrers`), references within
   the store in the DELETE itself (`... AND NOT EXISTS (...)`, so the common case costs one
   statement per batch; only records that stay are then looked up, to say why). A record of the
   person in another store whose collection is deleted does not count: its own job erases it.
   Records still referred to are never deleted (no cascade into anyone): the collection's
   `erasure.fallback` applies instead: `mask` the record, `nullify` the referring fields (the
   referring records' own foreign keys, only where every such reference is `nullable` and in
   the same store; else mask, and say so), or `keep` it, and a note says why.
   Loops of references (employee.reports_to, comment.parent_id) are ordered by leaving out their
   nullable references; the person's own records that are to be deleted have those links
   cleared first (only where they point at the person's records), so the person's reply to
   her own comment never keeps that comment.

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
  Held records are reported as held on every run, and so are records kept by the `keep`
  fallback (their identity is untouched, so they are found again).
The order of the stores' jobs matters across stores: a store whose records are reached through
another store's records (the CRM through the shop) must be erased first, or its records can no
longer be found once the shop's customer is gone. `store_order` gives that order.

Masks: `null`; `fixed` (mask_value, cut to the column); `random` (random text of the value's
length, or a number of as many digits, a date, bytes of the same length); `hash` (HMAC-SHA256 of
the stored text keyed with `hash_key`, hex, cut to the column's length); `keep`.

StoreErasure holds counts and reasons only: never a value, a key or an identity.

Modules: `person` (erase_person; webhook stores), `store_run` (one store's erasure in its
transaction), `loops` (loops deleted with their checks deferred), `order` (stores and
collections), `collect` (the walk's keys, the reference graph, who still refers to a record),
`masks` (masks and the fallbacks' tally), `sweep` (find_remaining), `result` (the counts).
"""

from requests.engine.erasure.collect import ERASE_BATCH, Identity, Progress
from requests.engine.erasure.masks import masked_fields
from requests.engine.erasure.order import erasure_order, store_dependencies, store_order
from requests.engine.erasure.person import erase_person
from requests.engine.erasure.result import (
    COUNTS,
    DONE,
    MANUAL,
    PENDING,
    CollectionErasure,
    StoreErasure,
)
from requests.engine.erasure.sweep import find_remaining

__all__ = [
    "COUNTS",
    "DONE",
    "ERASE_BATCH",
    "MANUAL",
    "PENDING",
    "CollectionErasure",
    "Identity",
    "Progress",
    "StoreErasure",
    "erase_person",
    "erasure_order",
    "find_remaining",
    "masked_fields",
    "store_dependencies",
    "store_order",
]
