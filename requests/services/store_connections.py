"""Connectors for the finder: every enabled, searchable store at once, opened for one call
(`open_connectors`: the preview, commands, the suppression ledger) or kept by a worker between
jobs (`kept_connectors`).

The finder needs all of them even for one store's job: a store's records may be reachable only
through another's (a CRM's contacts through the shop's customer ids). A store that cannot be
opened is named, never allowed to take the others down (issue 9).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from requests.connectors.registry import connector_class
from requests.engine.store import Connector, StoreError
from requests.models import ConnectedStore
from requests.services.errors import ServiceError
from requests.services.store_checks import open_failure, refuse_if_not_allowed
from requests.services.stores import store_connector

log = logging.getLogger(__name__)


def open_connectors(
    stack: ExitStack,
    *,
    extra: ConnectedStore | None = None,
    failures: dict[str, str] | None = None,
) -> dict[str, Connector]:
    """Connectors for every enabled, searchable store (plus `extra`), closed with `stack`.

    The finder needs all of them even for one store's job: a store's records may be reachable
    only through another's (a CRM's contacts through the shop's customer ids).

    With `failures`, a store that cannot be opened (a bad URL or map, a driver missing, a place
    the portal may not reach) is left out and recorded there by name with a message naming no
    address; without it, the first one raises (StoreError, or ServiceError for its map).
    """
    stores = list(ConnectedStore.objects.filter(enabled=True).order_by("name"))
    if extra is not None and extra.pk not in {store.pk for store in stores}:
        stores.append(extra)
    connectors: dict[str, Connector] = {}
    for store in stores:
        if not connector_class(store.kind).searchable:
            continue
        try:
            connector = stack.enter_context(store_connector(store))
            if failures is not None:
                refuse_if_not_allowed(connector)
        except (StoreError, ServiceError) as exc:
            if failures is None:
                raise
            failures[store.name] = open_failure(store, exc)
            continue
        connectors[store.name] = connector
    return connectors


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
        # The enabled stores as read once within `one_store_list` (None outside it).
        self.stores: list[ConnectedStore] | None = None
        self.scopes = 0

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
def one_store_list() -> Iterator[None]:
    """Within it, this thread reads the enabled stores once: a job's run and its request's
    sweep in the same task (a few milliseconds apart) share one read instead of three. A store
    enabled in between is as one enabled just after the sweep's read: its records are found by
    the next sweep or request, as they would be then."""
    _KEPT.scopes += 1
    try:
        yield
    finally:
        _KEPT.scopes -= 1
        if not _KEPT.scopes:
            _KEPT.stores = None


def enabled_stores() -> list[ConnectedStore]:
    """The enabled stores by name (read once within `one_store_list`); the caller may not change
    the list."""
    if _KEPT.stores is not None:
        return _KEPT.stores
    stores = list(ConnectedStore.objects.filter(enabled=True).order_by("name"))
    if _KEPT.scopes:
        _KEPT.stores = stores
    return stores


@contextmanager
def kept_connectors(*, extra: ConnectedStore | None = None) -> Iterator[dict[str, Connector]]:
    """Connectors for every enabled, searchable store (plus `extra`), kept for the next job.

    For workers: jobs of one worker thread reuse them (see `_KeptConnectors`). One-off callers
    (the preview, commands) use `open_connectors`, which closes them afterwards.
    """
    stores = list(enabled_stores())
    if extra is not None and extra.pk not in {store.pk for store in stores}:
        stores.append(extra)
    now = time.monotonic()
    connectors: dict[str, Connector] = {}
    wanted = set()
    try:
        for store in stores:
            if not connector_class(store.kind).searchable:
                continue
            wanted.add(store.pk)
            fingerprint = _fingerprint(store)
            kept = _KEPT.by_store.get(store.pk)
            if kept is not None and kept[0] == fingerprint and now - kept[1] < CONNECTOR_TTL:
                connectors[store.name] = kept[2]
                continue
            if kept is not None:
                _close_quietly(_KEPT.by_store.pop(store.pk)[2])
            try:
                connector = store_connector(store)
            except (StoreError, ServiceError) as exc:
                if extra is None or store.pk == extra.pk:
                    raise
                # Another store that cannot be opened (a bad map or URL) must not fail this
                # store's job (issue 9): the job goes on without it; its own job says why.
                log.warning(
                    "store %s left out of another store's job (%s)",
                    store.name,
                    exc.code if isinstance(exc, ServiceError) else type(exc).__name__,
                )
                continue
            _KEPT.by_store[store.pk] = (fingerprint, now, connector)
            connectors[store.name] = connector
        for pk in set(_KEPT.by_store) - wanted:  # disabled or removed since
            _close_quietly(_KEPT.by_store.pop(pk)[2])
        yield connectors
    except BaseException:
        _KEPT.discard()
        raise
