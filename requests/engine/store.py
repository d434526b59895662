"""The store interface the engine owns: what every store kind implements, its records and errors.

The engine (finder, ownership, erasure) is written against this module only; connectors
(requests.connectors) implement it and import it from here, never the other way round (an
import-linter contract in pyproject.toml holds that). Which class serves which kind is
requests.connectors.registry.

A connector is built from a connection URL and a store map. It can:
- `check()` that the store answers and holds what the map names, with a reason when not;
- `describe()` the store's own schema, for discovery (kinds without a schema raise
  NotImplementedError);
- `find(collection, field, values)` stream the records of a collection whose `field` holds one of
  `values` (the caller passes at most FIND_BATCH values at a time; the connector binds them, never
  formats them into a query);
- `find_identity(collection, field, identity_type, values)` the same for an identity field, with
  `values` in normal form (`requests.engine.normalise`); the default compares them as stored, and
  connectors that can compare better (case-insensitive emails, free-form phones) override it;
- erase the person's records with the erasure primitives below; requests.engine.erasure plans
  (what, in which order, what is still referred to) and calls them.

Erasure primitives. Keys are record keys as the finder reports them (tuples in the order of the
collection's `key`); values are bound, never formatted into a statement; each call gets at most
ERASE_BATCH (requests.engine.erasure) keys or values. Each returns how many records it changed,
so a retried erasure never counts a record twice.
- `transaction()`: a context manager around one store's erasure. SQL stores run everything in it
  in one database transaction (committed at the end, rolled back on any exception); elsewhere it
  does nothing.
- `delete_keys(collection, keys) -> int`: remove those records (already gone: not counted).
- `delete_unreferenced(collection, keys, references) -> int | None`: remove those of the
  records that no record of the `references` (referring collection, its field, the field of
  `collection` it holds) points at, in one statement; None where the kind cannot (the engine
  then looks for referrers first). Saves the look-up when nothing refers to the person's records.
- `mask_keys(collection, keys, masks, *, hash_key) -> int`: overwrite fields of those records,
  one FieldMask each (strategy null, fixed, random, hash keyed with `hash_key`, or None for the
  column's default); records that already hold the masked values are not counted.
- `nullify(collection, field, values) -> int`: set `field` to null in the records where it holds
  one of `values` (clearing references before the record referred to is deleted).
- `referrers(collection, field, values)`: (key, value) of every record whose `field` holds one of
  `values`, inside the open transaction where there is one. The default uses `find`.
- `defer_references(references) -> bool`: inside the transaction, put off the database's checks
  of these references ((referring collection, its field, referred collection, its field)) to
  the commit, when the database can (PostgreSQL, where every foreign key behind them is
  DEFERRABLE). True when deferred; otherwise False and nothing changes (the default). Erasure
  uses it to delete the person's records in a loop of references no null can break.
Kinds that cannot do one raise PermanentStoreError (masking a Redis key, nullifying a file). A
webhook store erases by identity with its own `erase(identities, request_id=...)` and `status`.

Errors say whether retrying can help: TransientStoreError (connection refused, timeout, deadlock,
a server restarting) or PermanentStoreError (wrong password, missing table, bad map).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, ClassVar

from requests.engine.storemap import Collection, MaskStrategy, StoreMap

# Values per lookup query: large enough that a person's thousands of keys take a handful of
# round trips, small enough to stay under every driver's bound-parameter limit (SQLite: 32766).
FIND_BATCH = 1000

# Seconds to wait for a store to connect or answer before calling it a transient failure.
DEFAULT_TIMEOUT = 10.0


class StoreError(Exception):
    """A store could not do what was asked. The message never contains credentials or data."""

    transient: ClassVar[bool] = False
    # The store that failed, set by the engine when it names it in the message (so an outer
    # lookup does not wrap the error again).
    store: str | None = None


class TransientStoreError(StoreError):
    """Worth retrying later: the store was unreachable, slow, or refused for a passing reason."""

    transient = True


class PermanentStoreError(StoreError):
    """Retrying will not help until someone fixes the store or its map."""


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    message: str
    problems: list[str] = field(default_factory=list)
    # Not failures, but worth a look (e.g. an email column searched without a usable index).
    warnings: list[str] = field(default_factory=list)


@dataclass
class Record:
    """One record of the person: where it lives, its key, and its fields."""

    store: str
    collection: str
    key: tuple
    data: dict[str, Any]
    # How the finder reached it: "identity" (its identity field matched), "mention" (it mentions
    # one of the person's rows), or "" (through an owner reference). See requests.engine.ownership.
    via: str = ""


@dataclass(frozen=True)
class FieldMask:
    """How erasure overwrites one field: a strategy, or None for the column's default (null where
    the column allows it, else a keyed hash for text)."""

    field: str
    strategy: MaskStrategy | None = None
    value: str | None = None  # the text of the `fixed` strategy


class Connector(ABC):
    kind: ClassVar[str]
    # What a kind can do, read by the services instead of comparing kind names (the registry of
    # kinds is requests.connectors.registry). Defaults describe a plain searchable store.
    # Whether records can be found by field values (manual stores cannot: staff handle them).
    searchable: ClassVar[bool] = True
    # Whether staff search and erase the store by hand from a task (no connection at all).
    is_manual: ClassVar[bool] = False
    # Whether the store is reached through a connection URL.
    needs_url: ClassVar[bool] = True
    # Whether `mask_keys` works, so a map may ask for erasure action `mask`.
    supports_masking: ClassVar[bool] = False
    # Whether `describe` drafts a map from the store's own schema.
    can_discover: ClassVar[bool] = False
    # Whether `scan_values` lists a field's values (the suppression ledger's reapply scan).
    can_scan_values: ClassVar[bool] = False
    # Whether the store is called with the store's shared secret and the portal's policy on
    # private addresses (webhooks).
    needs_secret: ClassVar[bool] = False
    # Whether records are files on the portal's disk: the portal confines them to its allowed
    # roots and an access package carries the files themselves.
    reads_local_files: ClassVar[bool] = False
    # Whether `find` may be called again while an earlier `find` iterator is still open (each
    # call uses its own connection). The finder then looks up a full batch of child values at
    # once instead of holding them until the parent's results end, which bounds its memory.
    concurrent_finds: ClassVar[bool] = False
    # Whether erasure is one call to the store with the person's identities (webhook: the service
    # erases its own records, perhaps later) rather than the primitives below by key.
    erases_by_identity: ClassVar[bool] = False
    # Whether phone numbers are read as people typed them, with a region for those written
    # without a country code (`find_identity`'s `phone_region`); other kinds compare normal forms.
    reads_phone_regions: ClassVar[bool] = False

    def __init__(
        self,
        url: str,
        store_map: StoreMap,
        *,
        name: str = "store",
        timeout: float = DEFAULT_TIMEOUT,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self.url = url
        self.store_map = store_map
        self.name = name
        self.timeout = timeout
        self.options = dict(options or {})

    @abstractmethod
    def check(self) -> CheckResult: ...

    def describe(self, *, progress=None) -> StoreMap:
        """Draft a map from the store's own schema."""
        raise NotImplementedError(f"{self.kind} stores cannot be discovered")

    @abstractmethod
    def find(
        self, collection: Collection, field_name: str, values: Sequence[Any]
    ) -> Iterator[dict[str, Any]]: ...

    def find_identity(
        self,
        collection: Collection,
        field_name: str,
        identity_type: str,
        values: Sequence[str],
        *,
        phone_region: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Records whose identity field holds one of the person's normalised `values`.

        `phone_region` is how the store's phone numbers written without a country code are read.
        """
        return self.find(collection, field_name, values)

    # Erasure primitives (see the module docstring) ----------------------------------------

    def transaction(self) -> AbstractContextManager[Any]:
        return nullcontext()

    def delete_keys(self, collection: Collection, keys: Sequence[tuple]) -> int:
        raise PermanentStoreError(f"{self.kind} stores cannot delete records by key")

    def delete_unreferenced(
        self,
        collection: Collection,
        keys: Sequence[tuple],
        references: Sequence[tuple[Collection, str, str]],
    ) -> int | None:
        return None

    def mask_keys(
        self,
        collection: Collection,
        keys: Sequence[tuple],
        masks: Sequence[FieldMask],
        *,
        hash_key: bytes,
    ) -> int:
        raise PermanentStoreError(
            f"collection {collection.name}: {self.kind} stores cannot mask fields; "
            "use erasure action delete or hold"
        )

    def nullify(self, collection: Collection, field_name: str, values: Sequence[Any]) -> int:
        raise PermanentStoreError(f"{self.kind} stores cannot set a reference to null")

    def referrers(
        self, collection: Collection, field_name: str, values: Sequence[Any]
    ) -> Iterator[tuple[tuple, Any]]:
        for row in self.find(collection, field_name, values):
            yield tuple(row.get(k) for k in collection.key), row.get(field_name)

    def defer_references(
        self, references: Sequence[tuple[Collection, str, Collection, str]]
    ) -> bool:
        return False

    def scan_values(
        self, collection: Collection, field_name: str, *, batch: int
    ) -> Iterator[list[Any]]:
        """Every value a field holds, in lists of at most `batch`, for the suppression ledger's
        reapply scan after a backup is restored. Values are streamed and never kept."""
        raise NotImplementedError(f"{self.kind} stores cannot list their values")

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; safe to call twice."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
