"""`stores check`: one store's health as staff and API callers see it, kept on the store.

A check connects (the connector's own check: the store answers and holds what its map names) and
also plans what an access or erasure job would plan (requests.engine.readiness), so whatever a
job would refuse or do differently is said here, before anyone approves, and never first at run
time. The preview says the same per store, in the same words (`store_readiness_of`).
"""

from __future__ import annotations

from collections.abc import Mapping

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from requests.connectors.registry import connector_class
from requests.engine.readiness import Readiness, store_readiness
from requests.engine.store import StoreError
from requests.engine.storemap import StoreMap
from requests.models import ConnectedStore
from requests.services.audit import audit_record
from requests.services.errors import ServiceError
from requests.services.store_checks import CHECK_MESSAGES, StoreCheck, check_connector, failed
from requests.services.stores import live_stores, store_connector, store_map


def store_readiness_of(name: str, kind: str, maps: Mapping[str, StoreMap]) -> Readiness:
    """What jobs would refuse or do differently in store `name` of `kind`, whose map and every
    other searchable store's are in `maps` (the finder walks them all), with the portal's
    settings."""
    cls = connector_class(kind)
    if not cls.searchable:
        return Readiness()  # staff search and erase it by hand: nothing is planned
    return store_readiness(
        name,
        maps,
        erases_by_key=not cls.erases_by_identity,
        can_mask=cls.supports_masking,
        # Stores drafted from their own schema (databases) hold tables; staff know them so.
        noun="table" if cls.can_discover else "collection",
        reads_phone_regions=cls.reads_phone_regions,
        phone_region=settings.PORTAL_DEFAULT_PHONE_REGION,
    )


def _maps_with(store: ConnectedStore, stored_map: StoreMap) -> dict[str, StoreMap]:
    """The maps a job in `store` plans with: every enabled, searchable store's whose map is
    valid (one that is not is left out of jobs too, and its own check says why), and this one."""
    maps: dict[str, StoreMap] = {}
    for other in live_stores().filter(enabled=True).exclude(pk=store.pk).order_by("name"):
        if not connector_class(other.kind).searchable:
            continue
        try:
            maps[other.name] = store_map(other)
        except ServiceError:
            continue
    maps[store.name] = stored_map
    return maps


def _run_check(store: ConnectedStore) -> StoreCheck:
    try:
        stored_map = store_map(store)
    except ServiceError as exc:
        return StoreCheck(False, "invalid_map", CHECK_MESSAGES["invalid_map"], [exc.message])
    try:
        connector = store_connector(store, stored_map=stored_map)
    except StoreError as exc:
        return failed(store, "invalid_url", str(exc))
    result = check_connector(store, connector)
    # Said in the map's own names, never the URL's: nothing to redact.
    ready = store_readiness_of(store.name, store.kind, _maps_with(store, stored_map))
    problems = [*result.problems, *ready.problems]
    warnings = [*result.warnings, *ready.warnings]
    if result.ok and ready.problems:
        return StoreCheck(
            False, "cannot_handle", CHECK_MESSAGES["cannot_handle"], problems, warnings, ready.notes
        )
    return StoreCheck(result.ok, result.code, result.message, problems, warnings, ready.notes)


def store_check(*, store: ConnectedStore, actor: str | None = None) -> StoreCheck:
    """Connect, check that the store holds what its map names, and plan what its jobs would
    plan. Never raises for a bad store; the outcome names no host, port, path or credentials.

    The outcome is kept on the store (its last check). With `actor` (a staff member asked for it)
    the check is also an audit event, with its code only: it is a staff action on the store."""
    result = _run_check(store)
    with transaction.atomic():
        ConnectedStore.objects.filter(pk=store.pk).update(
            last_check_ok=result.ok,
            last_check_code=result.code,
            last_check_message=result.message,
            last_checked_at=timezone.now(),
        )
        if actor is not None:
            audit_record(
                action="store.checked",
                actor=actor,
                details={"store": store.name, "ok": result.ok, "code": result.code},
            )
    return result
