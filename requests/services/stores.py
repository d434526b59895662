"""Connected stores: adding them, their maps, checks and discovery.

Connecting to a store (check, discovery) happens outside any database transaction: a slow store
must never hold a lock in the portal's own database.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from requests.connectors.base import CheckResult, Connector, StoreError
from requests.engine.storemap import EraseAction, StoreMap
from requests.models import ConnectedStore, StoreKind
from requests.models.stores import STORE_NAME_VALIDATOR
from requests.services.audit import audit_record
from requests.services.errors import ServiceError

MAX_MAP_BYTES = 2_000_000
log = logging.getLogger(__name__)

NO_URL_KINDS = frozenset({StoreKind.MANUAL})
# Stores that a person searches by hand: the finder skips them, staff get a task instead.
UNSEARCHABLE_KINDS = frozenset({StoreKind.MANUAL})


def parse_map(
    map_yaml: str, *, store_names: set[str] | None = None, kind: str | None = None
) -> StoreMap:
    """Validate map YAML; a ServiceError on the `map` field lists every problem with its line.

    With `kind`, also what that kind of store cannot do (masking in Redis or a folder), so the
    map is refused when it is saved rather than when an erasure runs.
    """
    from requests.engine.mapfile import MapError, load_store_map

    if len(map_yaml.encode()) > MAX_MAP_BYTES:
        raise ServiceError(f"A map may be at most {MAX_MAP_BYTES} bytes.", field="map")
    try:
        parsed = load_store_map(map_yaml, store_names=store_names)
    except MapError as exc:
        raise ServiceError(str(exc), field="map", code="invalid_map") from exc
    if kind is not None:
        _check_map_fits_kind(parsed, kind)
    return parsed


def _check_map_fits_kind(parsed: StoreMap, kind: str) -> None:
    from requests.connectors import kinds  # noqa: F401
    from requests.connectors.base import REGISTRY, Connector

    cls = REGISTRY.get(kind)
    if cls is None or cls.mask_keys is not Connector.mask_keys:
        return
    for collection in parsed.collections.values():
        if collection.erasure.action == EraseAction.MASK:
            raise ServiceError(
                f"collection {collection.name}: {kind} stores cannot mask fields; use erasure "
                "action delete or hold",
                field="map",
                code="invalid_map",
            )


def dump_map(store_map: StoreMap) -> str:
    from requests.engine.mapfile import dump_store_map

    return dump_store_map(store_map)


def store_map(store: ConnectedStore) -> StoreMap:
    if not store.map_yaml.strip():
        return StoreMap()
    return parse_map(store.map_yaml, store_names=_store_names())


def _store_names() -> set[str]:
    return set(ConnectedStore.objects.values_list("name", flat=True))


def store_connector(store: ConnectedStore, *, stored_map: StoreMap | None = None) -> Connector:
    """A connector for the store; the caller closes it (use it as a context manager)."""
    return _connector(
        kind=store.kind,
        url=store.url,
        name=store.name,
        store_map=stored_map if stored_map is not None else store_map(store),
        options=store.options,
        secret=store.secret,
    )


def _connector(
    *, kind: str, url: str, name: str, store_map: StoreMap, options: dict, secret: str = ""
) -> Connector:
    from requests.connectors.base import connector_for

    merged: dict[str, Any] = dict(options or {})
    if kind == StoreKind.WEBHOOK:
        merged["secret"] = secret
        merged.setdefault("allow_private", settings.PORTAL_WEBHOOK_ALLOW_PRIVATE)
    return connector_for(
        kind,
        url,
        store_map,
        name=name,
        timeout=settings.PORTAL_STORE_TIMEOUT,
        options=merged,
    )


def _validate_new_store(*, name: str, kind: str, url: str) -> None:
    try:
        STORE_NAME_VALIDATOR(name)
    except ValidationError as exc:
        raise ServiceError(exc.messages[0], field="name") from None
    if kind not in StoreKind.values:
        raise ServiceError(f"Unknown kind; use one of {', '.join(StoreKind.values)}.", field="kind")
    if kind not in NO_URL_KINDS and not url.strip():
        raise ServiceError("A connection URL is needed for this kind of store.", field="url")
    if ConnectedStore.objects.filter(name=name).exists():
        raise ServiceError("A store with this name already exists.", field="name", code="exists")


def store_create(
    *,
    name: str,
    kind: str,
    url: str = "",
    map_yaml: str = "",
    discover: bool = False,
    options: dict | None = None,
    secret: str = "",
    queue: str = "",
    actor: str,
    progress=None,
) -> ConnectedStore:
    """Add a store. With `discover`, a map is drafted from the live store and applied."""
    name = (name or "").strip()
    _validate_new_store(name=name, kind=kind, url=url)
    if map_yaml.strip() and discover:
        raise ServiceError("Give a map or ask for discovery, not both.", field="discover")
    parsed = (
        parse_map(map_yaml, store_names=_store_names() | {name}, kind=kind)
        if map_yaml.strip()
        else None
    )
    if discover:
        parsed = _discover(
            kind=kind, url=url, name=name, options=options or {}, secret=secret, progress=progress
        )
        map_yaml = dump_map(parsed)
    with transaction.atomic():
        store = ConnectedStore.objects.create(
            name=name,
            kind=kind,
            url=url.strip(),
            secret=secret,
            map_yaml=map_yaml,
            options=options or {},
            queue=queue,
        )
        audit_record(
            action="store.created",
            actor=actor,
            details={
                "store": name,
                "kind": kind,
                "discovered": discover,
                "collections": len(parsed.collections) if parsed else 0,
            },
        )
    return store


def _discover(
    *, kind: str, url: str, name: str, options: dict, secret: str = "", progress=None
) -> StoreMap:
    from requests.engine.discovery import discover

    connector = _connector(
        kind=kind, url=url, name=name, store_map=StoreMap(), options=options, secret=secret
    )
    try:
        with connector:
            return discover(connector, progress=progress)
    except NotImplementedError as exc:
        raise ServiceError(str(exc), field="discover") from None
    except StoreError as exc:
        raise ServiceError(f"Discovery could not read the store: {exc}", field="url") from None


def store_discover(*, store: ConnectedStore, progress=None) -> StoreMap:
    """Draft a map from the live store (not applied)."""
    return _discover(
        kind=store.kind,
        url=store.url,
        name=store.name,
        options=store.options,
        secret=store.secret,
        progress=progress,
    )


@transaction.atomic
def store_update_map(*, store: ConnectedStore, map_yaml: str, actor: str) -> ConnectedStore:
    parsed = parse_map(map_yaml, store_names=_store_names(), kind=store.kind)
    locked = ConnectedStore.objects.select_for_update().get(pk=store.pk)
    locked.map_yaml = map_yaml
    locked.save(update_fields=["map_yaml", "updated_at"])
    audit_record(
        action="store.map_updated",
        actor=actor,
        details={"store": locked.name, "collections": len(parsed.collections)},
    )
    return locked


@transaction.atomic
def store_set_enabled(*, store: ConnectedStore, enabled: bool, actor: str) -> ConnectedStore:
    ConnectedStore.objects.filter(pk=store.pk).update(enabled=enabled, updated_at=timezone.now())
    audit_record(
        action="store.enabled" if enabled else "store.disabled",
        actor=actor,
        details={"store": store.name},
    )
    store.refresh_from_db()
    return store


def store_check(*, store: ConnectedStore) -> CheckResult:
    """Connect, and check that the store holds what its map names. Never raises for a bad store."""
    try:
        stored_map = store_map(store)
    except ServiceError as exc:
        result = CheckResult(False, "The store's map is not valid.", [exc.message])
    else:
        try:
            with store_connector(store, stored_map=stored_map) as connector:
                result = connector.check()
        except StoreError as exc:
            result = CheckResult(False, str(exc))
    ConnectedStore.objects.filter(pk=store.pk).update(
        last_check_ok=result.ok,
        last_check_message=result.message[:2000],
        last_checked_at=timezone.now(),
    )
    return result


def open_connectors(
    stack: ExitStack, *, extra: ConnectedStore | None = None
) -> dict[str, Connector]:
    """Connectors for every enabled, searchable store (plus `extra`), closed with `stack`.

    The finder needs all of them even for one store's job: a store's records may be reachable
    only through another's (a CRM's contacts through the shop's customer ids).
    """
    stores = list(ConnectedStore.objects.filter(enabled=True).order_by("name"))
    if extra is not None and extra.pk not in {store.pk for store in stores}:
        stores.append(extra)
    return {
        store.name: stack.enter_context(store_connector(store))
        for store in stores
        if store.kind not in UNSEARCHABLE_KINDS
    }


# --- connectors kept by each worker process ---------------------------------------------------

# How long a worker keeps a store's connector (its connection pool, reflected tables, prepared
# lookups) between jobs. A store whose URL, secret, map or options change gets a new one at once.
CONNECTOR_TTL = 300.0


class _KeptConnectors(threading.local):
    """Connectors per store, reused by the jobs and sweeps one worker (thread) runs in a row.

    Opening a SQL store costs a connection and the reflection of the map's tables: far more
    than erasing one person. A connector is dropped (and closed) when its store changed, after
    CONNECTOR_TTL, and when a run that used it failed in any way, so a broken connection or a
    schema that changed under it is never reused."""

    def __init__(self) -> None:
        self.by_store: dict[int, tuple[str, float, Connector]] = {}

    def discard(self) -> None:
        kept, self.by_store = self.by_store, {}
        for _, _, connector in kept.values():
            _close_quietly(connector)


_KEPT = _KeptConnectors()


def _close_quietly(connector: Connector) -> None:
    try:
        connector.close()
    except Exception:  # closing a broken connection: nothing more to do
        log.debug("closing a %s connector failed", connector.kind, exc_info=True)


def _fingerprint(store: ConnectedStore) -> str:
    material = json.dumps(
        [store.name, store.kind, store.url, store.secret, store.map_yaml, store.options],
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(material.encode()).hexdigest()


@contextmanager
def kept_connectors(*, extra: ConnectedStore | None = None) -> Iterator[dict[str, Connector]]:
    """Connectors for every enabled, searchable store (plus `extra`), kept for the next job.

    For workers: jobs of one worker thread reuse them (see `_KeptConnectors`). One-off callers
    (the preview, commands) use `open_connectors`, which closes them afterwards.
    """
    stores = list(ConnectedStore.objects.filter(enabled=True).order_by("name"))
    if extra is not None and extra.pk not in {store.pk for store in stores}:
        stores.append(extra)
    now = time.monotonic()
    connectors: dict[str, Connector] = {}
    wanted = set()
    try:
        for store in stores:
            if store.kind in UNSEARCHABLE_KINDS:
                continue
            wanted.add(store.pk)
            fingerprint = _fingerprint(store)
            kept = _KEPT.by_store.get(store.pk)
            if kept is not None and kept[0] == fingerprint and now - kept[1] < CONNECTOR_TTL:
                connectors[store.name] = kept[2]
                continue
            if kept is not None:
                _close_quietly(_KEPT.by_store.pop(store.pk)[2])
            connector = store_connector(store)
            _KEPT.by_store[store.pk] = (fingerprint, now, connector)
            connectors[store.name] = connector
        for pk in set(_KEPT.by_store) - wanted:  # disabled or removed since
            _close_quietly(_KEPT.by_store.pop(pk)[2])
        yield connectors
    except BaseException:
        _KEPT.discard()
        raise
