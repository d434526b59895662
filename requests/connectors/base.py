"""What several connectors share beyond the engine's interface (requests.engine.store)."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from requests.engine.store import Connector, PermanentStoreError
from requests.engine.storemap import Collection, Match

# Identity types the finder compares in any letter case (see requests.engine.normalise).
CASE_BLIND_IDENTITY_TYPES = ("email", "name")


class PatternConnector(Connector):
    """Stores whose records are named by a pattern with placeholders (Redis keys, file paths).

    Such a store cannot compare values for us, so a value matches a name in any letter case where
    the identity type is compared that way (emails, names), unless the map says the store holds
    the normal form (`match: exact`); `ignore_case` (on the collection or the store) makes every
    placeholder match in any case.
    """

    @abstractmethod
    def _find(
        self, collection: Collection, field_name: str, values: Sequence[Any], ignore_case: bool
    ) -> Iterator[dict[str, Any]]: ...

    def _ignore_case(self, collection: Collection) -> bool:
        return bool(collection.options.get("ignore_case", self.options.get("ignore_case", False)))

    def _map_patterns(self, parse: Callable[[str], Any]) -> tuple[list[str], dict[str, Any]]:
        """Each collection's parsed pattern, and the problems of those that do not parse or name
        a placeholder the collection does not declare as a field (for `check()`)."""
        problems: list[str] = []
        patterns: dict[str, Any] = {}
        for collection in self.store_map.collections.values():
            try:
                pattern = parse(collection.physical_name)
            except PermanentStoreError as exc:
                problems.append(f"collection {collection.name}: {exc}")
                continue
            patterns[collection.name] = pattern
            problems.extend(
                f"collection {collection.name}: placeholder {{{name}}} is not a field of the "
                "collection"
                for name in pattern.placeholders
                if name not in collection.fields
            )
        return problems, patterns

    def find(
        self, collection: Collection, field_name: str, values: Sequence[Any]
    ) -> Iterator[dict[str, Any]]:
        return self._find(collection, field_name, values, self._ignore_case(collection))

    def find_identity(
        self,
        collection: Collection,
        field_name: str,
        identity_type: str,
        values: Sequence[str],
        *,
        phone_region: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        spec = collection.fields.get(field_name)
        auto = spec is None or spec.match == Match.AUTO
        blind = auto and identity_type in CASE_BLIND_IDENTITY_TYPES
        return self._find(collection, field_name, values, blind or self._ignore_case(collection))
