"""Which connector class serves which store kind: one explicit table.

Adding a kind means writing its connector (requests.engine.store.Connector, with the capability
flags that say what it can do) and adding it to CONNECTORS; nothing registers itself on import.
"""

from __future__ import annotations

from typing import Any

from requests.connectors.files import FilesConnector
from requests.connectors.manual import ManualConnector
from requests.connectors.redis_store import RedisConnector
from requests.connectors.sql import MysqlConnector, PostgresConnector, SqliteConnector
from requests.connectors.webhook import WebhookConnector
from requests.engine.store import Connector, PermanentStoreError
from requests.engine.storemap import StoreMap

CONNECTORS: dict[str, type[Connector]] = {
    "postgresql": PostgresConnector,
    "mysql": MysqlConnector,
    "sqlite": SqliteConnector,
    "redis": RedisConnector,
    "files": FilesConnector,
    "webhook": WebhookConnector,
    "manual": ManualConnector,
}


def connector_class(kind: str) -> type[Connector]:
    try:
        return CONNECTORS[kind]
    except KeyError:
        raise PermanentStoreError(
            f"unknown store kind {kind!r}; known: {', '.join(sorted(CONNECTORS))}"
        ) from None


def connector_for(kind: str, url: str, store_map: StoreMap, **kwargs: Any) -> Connector:
    return connector_class(kind)(url, store_map, **kwargs)


def kinds_where(capability: str, value: bool = True) -> frozenset[str]:
    """The kinds whose capability flag (a Connector class attribute) has `value`."""
    return frozenset(kind for kind, cls in CONNECTORS.items() if getattr(cls, capability) is value)
