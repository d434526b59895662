"""The one interface every store kind implements, its errors, and the registry of kinds.

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
- `erase(collection, keys, ...)` remove or mask a planned set of records by key.

Errors say whether retrying can help: TransientStoreError (connection refused, timeout, deadlock,
a server restarting) or PermanentStoreError (wrong password, missing table, bad map).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from requests.engine.storemap import Collection, StoreMap

# Values per lookup query: large enough that a person's thousands of keys take a handful of
# round trips, small enough to stay under every driver's bound-parameter limit (SQLite: 32766).
FIND_BATCH = 1000

# Seconds to wait for a store to connect or answer before calling it a transient failure.
DEFAULT_TIMEOUT = 10.0


class StoreError(Exception):
    """A store could not do what was asked. The message never contains credentials or data."""

    transient: ClassVar[bool] = False


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


class Connector(ABC):
    kind: ClassVar[str]
    # Whether records can be found by field values (manual stores cannot: staff handle them).
    searchable: ClassVar[bool] = True
    # Whether `find` may be called again while an earlier `find` iterator is still open (each
    # call uses its own connection). The finder then looks up a full batch of child values at
    # once instead of holding them until the parent's results end, which bounds its memory.
    concurrent_finds: ClassVar[bool] = False

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

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; safe to call twice."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


REGISTRY: dict[str, type[Connector]] = {}


def register(cls: type[Connector]) -> type[Connector]:
    REGISTRY[cls.kind] = cls
    return cls


def connector_for(kind: str, url: str, store_map: StoreMap, **kwargs: Any) -> Connector:
    # Importing the kinds here keeps `base` free of their drivers for whoever only needs the types.
    from requests.connectors import kinds  # noqa: F401

    try:
        cls = REGISTRY[kind]
    except KeyError:
        raise PermanentStoreError(
            f"unknown store kind {kind!r}; known: {', '.join(sorted(REGISTRY))}"
        ) from None
    return cls(url, store_map, **kwargs)
