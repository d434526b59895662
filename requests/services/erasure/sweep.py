"""The verification sweep: once every job is done, the finder searches every store again for
what is left of the person (counts only, no data)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone

# Through the module, at call time: tests stand in for the engine's `find_remaining`.
from requests.engine import erasure as erasure_engine
from requests.engine.storemap import StoreMap
from requests.models import DataRequest
from requests.services.erasure.run import erasure_identity
from requests.services.store_connections import enabled_stores, kept_connectors
from requests.services.stores import UNSEARCHABLE_KINDS


@dataclass
class SweepResult:
    """What the sweep found left, per store and collection, and which stores it could not search."""

    ran_at: datetime
    # store -> collection -> {"remaining": n, "held": n}
    stores: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    not_checked: list[str] = field(default_factory=list)
    # The maps the sweep searched with, for the certificate (not part of its JSON).
    maps: dict[str, StoreMap] = field(default_factory=dict, repr=False)

    @property
    def remaining(self) -> int:
        return sum(c.get("remaining", 0) for per in self.stores.values() for c in per.values())

    @property
    def held(self) -> int:
        return sum(c.get("held", 0) for per in self.stores.values() for c in per.values())

    def left_over(self) -> dict[str, dict[str, int]]:
        return {
            store: {name: c["remaining"] for name, c in per.items() if c.get("remaining")}
            for store, per in self.stores.items()
            if any(c.get("remaining") for c in per.values())
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "ran_at": self.ran_at,
            "remaining": self.remaining,
            "held": self.held,
            "stores": self.stores,
            "not_checked": self.not_checked,
        }


def erasure_sweep(*, request: DataRequest, identity: dict[str, str] | None = None) -> SweepResult:
    """Search every store again for what is left of the person (counts only). `identity`: the
    request's `erasure_identity`, when the caller read it already."""
    if identity is None:
        identity = erasure_identity(request)
    with kept_connectors() as connectors:
        for connector in connectors.values():
            connector.options["request_id"] = request.reference  # named in webhook finds
        try:
            found = erasure_engine.find_remaining(
                connectors, identity, phone_region=settings.PORTAL_DEFAULT_PHONE_REGION
            )
        finally:
            for connector in connectors.values():
                connector.options.pop("request_id", None)
        maps = {name: connector.store_map for name, connector in connectors.items()}
    # From the list the connectors were chosen from (no second read of the stores).
    not_checked = sorted(s.name for s in enabled_stores() if s.kind in UNSEARCHABLE_KINDS)
    stores = {
        store: {
            name: {"remaining": int(c.get("remaining", 0)), "held": int(c.get("held", 0))}
            for name, c in per.items()
        }
        for store, per in (found or {}).items()
    }
    return SweepResult(ran_at=timezone.now(), stores=stores, not_checked=not_checked, maps=maps)
