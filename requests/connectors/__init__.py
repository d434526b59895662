"""Store connectors: one module per store kind behind `requests.connectors.base.Connector`."""

from requests.connectors.base import (
    REGISTRY,
    CheckResult,
    Connector,
    PermanentStoreError,
    StoreError,
    TransientStoreError,
    connector_for,
)

__all__ = [
    "REGISTRY",
    "CheckResult",
    "Connector",
    "PermanentStoreError",
    "StoreError",
    "TransientStoreError",
    "connector_for",
]
