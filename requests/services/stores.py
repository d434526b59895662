"""Connected stores: adding them, their maps, connectors and discovery.

Enabling, disabling and deleting a store is requests.services.store_lifecycle; checking it,
requests.services.store_health; opening every store's connector for the finder (and keeping them
in workers), requests.services.store_connections.

Connecting to a store (check, discovery) happens outside any database transaction: a slow store
must never hold a lock in the portal's own database.

The portal's guards are its own, never a store's: a webhook store reaches private addresses only
when PORTAL_WEBHOOK_ALLOW_PRIVATE is on, a files store lives only inside PORTAL_FILES_ROOTS, and a
store asking for an exception in its options is refused.

What a store's failure says to staff and API callers: see requests.services.store_checks.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from requests.connectors.registry import CONNECTORS, connector_class, connector_for, kinds_where
from requests.engine import discovery, mapfile
from requests.engine.mapfile import dump_store_map
from requests.engine.store import Connector, PermanentStoreError, StoreError
from requests.engine.storemap import EraseAction, StoreMap
from requests.models import ConnectedStore, StoreKind
from requests.models.stores import STORE_NAME_VALIDATOR
from requests.services.audit import audit_record
from requests.services.errors import NotFound, ServiceError
from requests.services.store_checks import (
    CHECK_MESSAGES,
    NOT_ALLOWED,
    redact,
    refuse_if_not_allowed,
)

log = logging.getLogger(__name__)

# Stores that staff search by hand: the finder skips them, staff get a task instead. Read from
# the connectors' capability flags (requests.connectors.registry), for database queries by kind.
UNSEARCHABLE_KINDS = kinds_where("searchable", False)
# Stores whose erasure the portal hands over (to staff by hand, or to a recipient's service) and
# then waits for.
HANDED_OVER_KINDS = kinds_where("is_manual") | kinds_where("erases_by_identity")
# Options the portal sets from its settings (or the store's secret): a store may not set them.
RESERVED_OPTIONS = frozenset({"allow_private", "allowed_roots", "secret"})


class MapTooLarge(ServiceError):
    status_code = 413
    code = "map_too_large"


class InvalidMap(ServiceError):
    """The map is not valid. `problems` holds each problem as (line or None, text naming the
    line), so a page can show each one beside the line it is about."""

    code = "invalid_map"

    def __init__(self, message: str, *, problems: list[tuple[int | None, str]]):
        super().__init__(message, field="map")
        self.problems = problems


def parse_map(
    map_yaml: str, *, store_names: set[str] | None = None, kind: str | None = None
) -> StoreMap:
    """Validate map YAML; a ServiceError on the `map` field lists every problem with its line.

    With `kind`, also what that kind of store cannot do (masking in Redis or a folder), so the
    map is refused when it is saved rather than when an erasure runs.
    """
    limit = settings.PORTAL_MAP_MAX_BYTES
    try:
        parsed = mapfile.load_store_map(map_yaml, store_names=store_names, max_bytes=limit)
    except mapfile.MapTooLarge as exc:
        raise MapTooLarge(
            f"The map is {exc.size} bytes; a map may be at most {limit} bytes "
            "(PORTAL_MAP_MAX_BYTES).",
            field="map",
        ) from None
    except mapfile.MapError as exc:
        raise InvalidMap(str(exc), problems=[(p.line, str(p)) for p in exc.problems]) from exc
    if kind is not None:
        _check_map_fits_kind(parsed, kind)
    return parsed


def _check_map_fits_kind(parsed: StoreMap, kind: str) -> None:
    cls = CONNECTORS.get(kind)
    if cls is None or cls.supports_masking:
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
    return dump_store_map(store_map)


def store_map(store: ConnectedStore) -> StoreMap:
    if not store.map_yaml.strip():
        return StoreMap()
    return parse_map(store.map_yaml, store_names=_store_names())


def store_collections(store: ConnectedStore) -> list[str]:
    """The names of the store's collections ([] when its map is not valid), remembered per map
    text: listing stores must not parse every map again."""
    names = frozenset(_store_names())
    return list(_collections_of(store.map_yaml, names, settings.PORTAL_MAP_MAX_BYTES))


@functools.lru_cache(maxsize=32)
def _collections_of(map_yaml: str, store_names: frozenset[str], limit: int) -> tuple[str, ...]:
    if not map_yaml.strip():
        return ()
    try:
        return tuple(sorted(parse_map(map_yaml, store_names=set(store_names)).collections))
    except ServiceError:
        return ()


def _store_names() -> set[str]:
    return set(live_stores().values_list("name", flat=True))


def live_stores():
    """Stores not deleted (a deleted store is kept only for past requests' records)."""
    return ConnectedStore.objects.filter(deleted_at__isnull=True)


def store_get(*, name: str) -> ConnectedStore:
    store = live_stores().filter(name=name).first()
    if store is None:
        raise NotFound("No store with this name.")
    return store


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
    # Stores saved before these options were refused may still hold them: they are dropped.
    merged: dict[str, Any] = {
        key: value for key, value in (options or {}).items() if key not in RESERVED_OPTIONS
    }
    cls = connector_class(kind)
    if cls.needs_secret:
        merged["secret"] = secret
        merged["allow_private"] = settings.PORTAL_WEBHOOK_ALLOW_PRIVATE
    if cls.reads_local_files:
        merged["allowed_roots"] = list(settings.PORTAL_FILES_ROOTS)
    try:
        return connector_for(
            kind,
            url,
            store_map,
            name=name,
            timeout=settings.PORTAL_STORE_TIMEOUT,
            options=merged,
        )
    except StoreError:
        raise
    except Exception as exc:
        # A driver's URL parser (a port that is not a number, an unclosed IPv6 bracket); its
        # message may quote the URL, so only the exception's type is kept.
        log.info("store %s: the URL could not be parsed (%s)", name, type(exc).__name__)
        raise PermanentStoreError("the connection URL is not valid") from None


def _validate_new_store(*, name: str, kind: str, url: str, options: dict) -> None:
    try:
        STORE_NAME_VALIDATOR(name)
    except ValidationError as exc:
        raise ServiceError(exc.messages[0], field="name") from None
    if kind not in StoreKind.values:
        raise ServiceError(f"Unknown kind; use one of {', '.join(StoreKind.values)}.", field="kind")
    if CONNECTORS[kind].needs_url and not url.strip():
        raise ServiceError("A connection URL is needed for this kind of store.", field="url")
    reserved = sorted(RESERVED_OPTIONS & set(options))
    if reserved:
        raise ServiceError(
            f"A store cannot set {', '.join(reserved)}: the portal decides that for every store "
            "(PORTAL_WEBHOOK_ALLOW_PRIVATE, PORTAL_FILES_ROOTS; the secret is its own field).",
            field="options",
            code="option_not_allowed",
        )
    existing = ConnectedStore.objects.filter(name=name).first()
    if existing is not None:
        message = "A store with this name already exists."
        if existing.deleted_at is not None:
            message = (
                "A deleted store with this name is kept for the records of past requests; "
                "choose another name."
            )
        raise ServiceError(message, field="name", code="exists")


def _validate_url(*, kind: str, url: str, name: str, options: dict, secret: str) -> None:
    """Refuse a URL the kind cannot use or a place the portal may not reach, before saving.

    Builds the connector (which parses the URL) without connecting; a webhook's host name is
    resolved to check its addresses, and one that does not resolve yet is left to the check.
    """
    if not connector_class(kind).needs_url:
        return
    try:
        connector = _connector(
            kind=kind, url=url, name=name, store_map=StoreMap(), options=options, secret=secret
        )
    except StoreError as exc:
        log.info("store %s: URL refused: %s", name, exc)
        raise ServiceError(CHECK_MESSAGES["invalid_url"], field="url", code="invalid_url") from None
    with connector:
        try:
            refuse_if_not_allowed(connector)
        except NOT_ALLOWED as exc:
            log.info("store %s: refused: %s", name, exc)
            raise ServiceError(
                CHECK_MESSAGES["not_allowed"], field="url", code="not_allowed"
            ) from None
        except StoreError:
            pass  # not resolvable now: the check says so, and every call checks again


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
    options = dict(options or {})
    _validate_new_store(name=name, kind=kind, url=url, options=options)
    if map_yaml.strip() and discover:
        raise ServiceError("Give a map or ask for discovery, not both.", field="discover")
    parsed = (
        parse_map(map_yaml, store_names=_store_names() | {name}, kind=kind)
        if map_yaml.strip()
        else None
    )
    _validate_url(kind=kind, url=url, name=name, options=options, secret=secret)
    if discover:
        parsed = _discover(
            kind=kind, url=url, name=name, options=options, secret=secret, progress=progress
        )
        map_yaml = dump_map(parsed)
    with transaction.atomic():
        store = ConnectedStore.objects.create(
            name=name,
            kind=kind,
            url=url.strip(),
            secret=secret,
            map_yaml=map_yaml,
            options=options,
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
    try:
        connector = _connector(
            kind=kind, url=url, name=name, store_map=StoreMap(), options=options, secret=secret
        )
    except StoreError as exc:
        log.info("store %s: URL refused: %s", name, exc)
        raise ServiceError(CHECK_MESSAGES["invalid_url"], field="url", code="invalid_url") from None
    try:
        with connector:
            refuse_if_not_allowed(connector)
            return discovery.discover(connector, progress=progress)
    except NotImplementedError as exc:
        raise ServiceError(str(exc), field="discover") from None
    except NOT_ALLOWED as exc:
        log.info("store %s: refused: %s", name, exc)
        raise ServiceError(CHECK_MESSAGES["not_allowed"], field="url", code="not_allowed") from None
    except StoreError as exc:
        log.warning("store %s: discovery failed: %s", name, exc)
        reason = redact(str(exc), url)
        raise ServiceError(
            f"Discovery could not read the store: {reason}", field="url", code="unavailable"
        ) from None


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


def lock_live_store(store: ConnectedStore) -> ConnectedStore:
    """The store's row, locked for the caller's transaction; NotFound when another request
    deleted it since it was read."""
    locked = live_stores().select_for_update().filter(pk=store.pk).first()
    if locked is None:
        raise NotFound("No store with this name.")
    return locked


@transaction.atomic
def store_update_map(*, store: ConnectedStore, map_yaml: str, actor: str) -> ConnectedStore:
    parsed = parse_map(map_yaml, store_names=_store_names(), kind=store.kind)
    locked = lock_live_store(store)
    locked.map_yaml = map_yaml
    locked.save(update_fields=["map_yaml", "updated_at"])
    audit_record(
        action="store.map_updated",
        actor=actor,
        details={"store": locked.name, "collections": len(parsed.collections)},
    )
    return locked
