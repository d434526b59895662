"""What a store's check or failure says to staff and API callers: a stable code and our own
words, never the store's host, port, path, database, user or password.

The connector's own words go to the server log (they hold no personal data; hosts and paths are
not personal data, only not for API callers), and into the `problems` shown with every part of
the store's URL, and any IPv4 address, replaced by [hidden].
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from requests.connectors.files import RootNotAllowed
from requests.connectors.webhook import AddressNotAllowed
from requests.engine.store import CheckResult, Connector, StoreError
from requests.models import ConnectedStore
from requests.services.errors import ServiceError

log = logging.getLogger(__name__)

# The portal's own refusals (a files root outside PORTAL_FILES_ROOTS, a private webhook).
NOT_ALLOWED = (RootNotAllowed, AddressNotAllowed)

# What each outcome of a check (or of opening a store) says to staff: our words, never the
# store's address. The codes are stable (API clients may act on them).
CHECK_MESSAGES = {
    "ok": "The store answers and holds what its map names.",
    "invalid_map": "The store's map is not valid; the problems name the lines.",
    "invalid_url": "The store's connection URL cannot be used for this kind of store.",
    "not_allowed": (
        "The store is somewhere the portal is not allowed to reach (see PORTAL_FILES_ROOTS and "
        "PORTAL_WEBHOOK_ALLOW_PRIVATE)."
    ),
    "unavailable": (
        "The portal could not use the store: it did not answer, or it refused the connection "
        "or the credentials."
    ),
    "map_mismatch": "The store answers, but it lacks what its map names; the problems say what.",
    "cannot_handle": (
        "The store answers and holds what its map names, but an access or erasure job would "
        "stop on its map as it stands; the problems say where."
    ),
}


@dataclass(frozen=True)
class StoreCheck:
    """A check's outcome as staff and API callers see it."""

    ok: bool
    code: str
    message: str
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # How erasure will go about the store, nothing to fix (a reference it sets to null first).
    notes: list[str] = field(default_factory=list)


def refuse_if_not_allowed(connector: Connector) -> None:
    """Raise one of NOT_ALLOWED when the connector's kind has a guard and it refuses."""
    guard = getattr(connector, "refuse_if_not_allowed", None)
    if guard is not None:
        guard()


_HIDDEN = "[hidden]"
_IPV4 = re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?(?![\w.])")
_RUNS = re.compile(r"\[hidden\](?:[:/@.]+\[hidden\])+")


def _url_parts(url: str) -> list[str]:
    """The parts of a connection URL that must not reach staff or API callers: host, port,
    user, password, database, path (as given and resolved), longest first."""
    parts: set[str] = {url, url.strip()}
    try:
        split = urlsplit(url.strip())
    except ValueError:
        split = None
    if split is not None:
        path = unquote(split.path)
        parts |= {split.netloc, split.hostname or "", split.username or "", split.password or ""}
        parts |= {unquote(split.username or ""), unquote(split.password or ""), split.query}
        parts |= {path, path.lstrip("/"), "/" + path.lstrip("/")}
        port = split.netloc.rsplit(":", 1)[-1] if ":" in split.netloc else ""
        parts.add(port.strip("[]"))
        stripped = "/" + path.lstrip("/")
        if len(stripped) > 1:
            parts |= {os.path.realpath(stripped), os.path.basename(stripped.rstrip("/"))}
            parts |= {segment for segment in stripped.split("/") if len(segment) >= 3}
    return sorted((p for p in parts if len(p) >= 2), key=len, reverse=True)


def redact(text: str, url: str) -> str:
    """`text` with every part of `url` (and any IPv4 address) replaced by [hidden]."""
    for part in _url_parts(url):
        text = re.sub(rf"(?<![\w.]){re.escape(part)}(?![\w])", _HIDDEN, text)
    text = _IPV4.sub(_HIDDEN, text)
    return _RUNS.sub(_HIDDEN, text)


def failed(
    store: ConnectedStore, code: str, detail: str = "", problems=(), warnings=()
) -> StoreCheck:
    if detail:
        # Connector messages name no personal data; hosts and paths are fine in the server log.
        log.warning("store %s: %s: %s", store.name, code, detail)
    shown = [redact(p, store.url) for p in problems]
    if detail and detail not in problems:
        shown.insert(0, redact(detail, store.url))
    return StoreCheck(
        False, code, CHECK_MESSAGES[code], shown, [redact(w, store.url) for w in warnings]
    )


def check_connector(store: ConnectedStore, connector: Connector) -> StoreCheck:
    """Run the connector's check (closing it) and say what it found in our words."""
    with connector:
        try:
            refuse_if_not_allowed(connector)
            result: CheckResult = connector.check()
        except NOT_ALLOWED as exc:
            return failed(store, "not_allowed", str(exc))
        except StoreError as exc:
            return failed(store, "unavailable", str(exc))
        except Exception as exc:  # a driver's surprise must not turn a check into a 500
            log.exception("store %s: the check failed unexpectedly", store.name)
            return failed(store, "unavailable", type(exc).__name__)
    if result.ok:
        warnings = [redact(w, store.url) for w in result.warnings]
        return StoreCheck(True, "ok", CHECK_MESSAGES["ok"], [], warnings)
    # Connectors put a failure to connect in the message alone (or repeat it as the only
    # problem); problems beyond it are what the map names and the store lacks.
    beyond = [p for p in result.problems if p != result.message]
    code = "map_mismatch" if beyond else "unavailable"
    return failed(store, code, result.message, beyond, result.warnings)


def open_failure(store: ConnectedStore, exc: Exception) -> str:
    if isinstance(exc, ServiceError):
        code = "invalid_map"
    elif isinstance(exc, NOT_ALLOWED):
        code = "not_allowed"
    elif exc.transient:
        code = "unavailable"  # a webhook's host name that does not resolve
    else:
        code = "invalid_url"
    log.warning("store %s could not be opened: %s: %s", store.name, code, exc)
    return CHECK_MESSAGES[code]
