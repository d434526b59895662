"""Webhook: a downstream service that finds and erases its own records over a signed JSON protocol.

The protocol is documented in docs/webhook-protocol.md. In short, every call is a POST of a JSON
object with an `action` (`ping`, `find`, `erase`, `status`), signed with HMAC-SHA256 over
`timestamp + "." + body` in the X-Portal-Timestamp and X-Portal-Signature headers.

A collection of a webhook store is a resource of the service; its fields say which identity types
(or referenced values) the service accepts:

    collections:
      tickets:
        key: [id]
        fields:
          email: {identity: email}
          customer_id: {references: {store: shop, collection: customers, field: id}}

`find(tickets, "email", values)` sends `{"identities": {"email": values}, "field": "email", ...}`;
`find(tickets, "customer_id", ids)` sends `{"identities": {"customer_id": ids}, ...}` (a field
without an identity type is named by the field itself). Answers come in pages joined by a cursor.

Options (passed by the caller, never read from Django here):
- `secret` (required): the shared signing secret;
- `allow_private`: allow private, loopback and link-local addresses (and plain http), for services
  inside the organisation's network and for tests. The portal sets it from the deployment-wide
  PORTAL_WEBHOOK_ALLOW_PRIVATE only: a store's own options can never turn the guard off
  (requests.services.stores refuses a store that asks);
- `allow_http`: allow plain http to public addresses (not advised: identities travel in the body);
- `request_id`: the portal request the calls are made for, sent with every find.

Addresses are checked on every call, and the connection is pinned to the checked address so that a
name resolving differently a moment later cannot reach an internal host.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import socket
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from requests.engine.store import (
    CheckResult,
    Connector,
    PermanentStoreError,
    StoreError,
    TransientStoreError,
)
from requests.engine.storemap import Collection

PROTOCOL_VERSION = 1

# Records asked for per find call: a page of a few hundred records keeps each answer well under a
# megabyte for typical records, while a person with thousands of records takes a handful of calls.
PAGE_SIZE = 500

# An answer larger than this is refused rather than held in memory; a service that pages honours
# `limit` and never comes near it.
MAX_RESPONSE_BYTES = 32 * 1024 * 1024

# How old a signed call may be when it arrives: covers clock skew and slow networks, short enough
# that a captured call cannot be replayed later.
SIGNATURE_TOLERANCE = 300

# Statuses worth retrying although they are 4xx: the service asks us to come back later.
_RETRYABLE_4XX = {408, 425, 429}


def sign(secret: str | bytes, timestamp: str | int, body: bytes) -> str:
    """The X-Portal-Signature value for a body sent at `timestamp` (unix seconds)."""
    key = secret.encode() if isinstance(secret, str) else secret
    message = f"{timestamp}.".encode() + body
    return "sha256=" + hmac.new(key, message, hashlib.sha256).hexdigest()


def verify_signature(
    secret: str | bytes,
    timestamp: str | int | None,
    body: bytes | str,
    signature: str | None,
    now: float | None = None,
    tolerance: int = SIGNATURE_TOLERANCE,
) -> bool:
    """Whether a call is genuine and fresh: for receivers (and tests) of the protocol.

    `timestamp` and `signature` are the X-Portal-Timestamp and X-Portal-Signature headers, `body`
    the raw request body as received (before any JSON parsing), `now` the receiver's unix time.
    """
    if not timestamp or not signature:
        return False
    try:
        sent = int(timestamp)
    except (TypeError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - sent) > tolerance:
        return False
    raw = body.encode() if isinstance(body, str) else body
    return hmac.compare_digest(sign(secret, str(timestamp), raw), signature)


class AddressNotAllowed(PermanentStoreError):
    """The service is at an address (or over plain http) the portal does not allow."""


def _blocked(address: str) -> bool:
    """Whether an address is one a public webhook must never reach."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    # `is_global` is false for private, loopback, link-local, shared (CGNAT), reserved and
    # documentation ranges; multicast is global in name but never a web service.
    return not ip.is_global or ip.is_multicast


class WebhookConnector(Connector):
    kind = "webhook"
    # Each page is its own call, and the client pools connections: open finds do not interfere.
    concurrent_finds = True
    # Erasure is the `erase` call below: the service removes its own records, perhaps later.
    erases_by_identity = True
    needs_secret = True

    def __init__(self, url, store_map, **kwargs) -> None:
        super().__init__(url, store_map, **kwargs)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PermanentStoreError("a webhook store needs an http(s):// URL")
        try:
            self._port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise PermanentStoreError("the webhook URL has an invalid port") from None
        self._host = parts.hostname
        self._scheme = parts.scheme
        # Messages name the origin only: a path or query may carry a token.
        self._where = f"{parts.scheme}://{parts.hostname}:{self._port}"
        self._client: httpx.Client | None = None

    @property
    def allow_private(self) -> bool:
        return bool(self.options.get("allow_private", False))

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(
                timeout=httpx.Timeout(self.timeout),
                # A redirect could lead to an address that was never checked.
                follow_redirects=False,
                # Proxies and .netrc from the environment would change where identities go.
                trust_env=False,
                headers={"User-Agent": "dsr-portal-webhook/1"},
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- transport ----------------------------------------------------------------------------

    def _addresses(self) -> list[str]:
        """The addresses to connect to, every one of them checked."""
        if self._scheme == "http" and not (self.allow_private or self.options.get("allow_http")):
            raise AddressNotAllowed(
                f"webhook {self._where}: plain http is refused (identities travel in the body); "
                "use https"
            )
        try:
            infos = socket.getaddrinfo(self._host, self._port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            raise TransientStoreError(
                f"webhook {self._where}: the host name does not resolve"
            ) from None
        # str() for the type checker only: an IPv4 or IPv6 socket address starts with its text.
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if not self.allow_private and any(_blocked(a) for a in addresses):
            raise AddressNotAllowed(
                f"webhook {self._where}: the host resolves to a private, loopback or link-local "
                "address; such addresses are refused unless the portal allows private webhooks"
            )
        return addresses

    def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        secret = self.options.get("secret")
        if not secret:
            raise PermanentStoreError(f"webhook {self._where}: no signing secret is configured")
        body = json.dumps(payload, separators=(",", ":"), default=str).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Portal-Timestamp": timestamp,
            "X-Portal-Signature": sign(secret, timestamp, body),
        }
        addresses = self._addresses()
        if self.allow_private:
            # Nothing to pin against: let the client resolve (and fall back between addresses).
            return self._send(self.url, headers, body, {})
        last_error: StoreError | None = None
        for address in addresses:
            pinned = httpx.URL(self.url).copy_with(host=address)
            extensions = {"sni_hostname": self._host} if self._scheme == "https" else {}
            try:
                return self._send(pinned, {**headers, "Host": self._netloc()}, body, extensions)
            except _Unreachable as exc:
                last_error = exc  # try the host's next address
        assert last_error is not None
        raise last_error

    def _netloc(self) -> str:
        default = 443 if self._scheme == "https" else 80
        host = f"[{self._host}]" if ":" in self._host else self._host
        return host if self._port == default else f"{host}:{self._port}"

    def _send(self, url, headers, body, extensions) -> dict[str, Any]:
        try:
            with self.client.stream(
                "POST", url, content=body, headers=headers, extensions=extensions
            ) as response:
                self._raise_for_status(response.status_code)
                raw = bytearray()
                for chunk in response.iter_bytes():
                    raw.extend(chunk)
                    if len(raw) > MAX_RESPONSE_BYTES:
                        raise PermanentStoreError(
                            f"webhook {self._where}: the answer is larger than "
                            f"{MAX_RESPONSE_BYTES} bytes; the service must page its records"
                        )
        except httpx.TimeoutException:
            raise TransientStoreError(
                f"webhook {self._where} did not answer within {self.timeout:g} s"
            ) from None
        except httpx.ConnectError:
            raise _Unreachable(f"could not connect to webhook {self._where}") from None
        except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            raise TransientStoreError(
                f"webhook {self._where}: the connection failed ({type(exc).__name__})"
            ) from None
        except httpx.HTTPError as exc:
            raise PermanentStoreError(
                f"webhook {self._where}: the call failed ({type(exc).__name__})"
            ) from None
        try:
            answer = json.loads(raw)
        except ValueError:
            raise self._protocol("the answer is not JSON") from None
        if not isinstance(answer, dict):
            raise self._protocol("the answer is not a JSON object")
        return answer

    def _raise_for_status(self, status: int) -> None:
        if 200 <= status < 300:
            return
        if status in (401, 403):
            raise PermanentStoreError(
                f"webhook {self._where} refused the call (HTTP {status}): check the shared "
                "secret and that both clocks are right"
            )
        if status >= 500 or status in _RETRYABLE_4XX:
            raise TransientStoreError(f"webhook {self._where} answered HTTP {status}")
        if 300 <= status < 400:
            raise PermanentStoreError(
                f"webhook {self._where} answered a redirect (HTTP {status}), which is not "
                "followed; configure the final URL"
            )
        raise PermanentStoreError(f"webhook {self._where} answered HTTP {status}")

    def _protocol(self, problem: str) -> PermanentStoreError:
        return PermanentStoreError(
            f"webhook {self._where}: {problem} (see docs/webhook-protocol.md)"
        )

    def refuse_if_not_allowed(self) -> None:
        """Raise AddressNotAllowed when the service's address is one the portal refuses (and
        TransientStoreError when its name does not resolve), without calling it."""
        self._addresses()

    # -- the interface ------------------------------------------------------------------------

    def check(self) -> CheckResult:
        try:
            answer = self._post({"action": "ping", "protocol": PROTOCOL_VERSION})
        except StoreError as exc:
            return CheckResult(False, str(exc), [str(exc)])
        if answer.get("status") != "ok":
            message = f"webhook {self._where} answered ping without status ok"
            return CheckResult(False, message, [message])
        known = answer.get("collections")
        problems = []
        if isinstance(known, list):
            problems = [
                f"collection {c.name}: the service does not know {c.physical_name!r}"
                for c in self.store_map.collections.values()
                if c.physical_name not in known
            ]
        if problems:
            return CheckResult(
                False, f"webhook {self._where} answers; the map has problems", problems
            )
        return CheckResult(True, f"webhook {self._where} answered ping")

    def find(
        self, collection: Collection, field_name: str, values: Sequence[Any]
    ) -> Iterator[dict[str, Any]]:
        field = collection.fields.get(field_name)
        if field is None:
            raise PermanentStoreError(
                f"collection {collection.name}: {field_name} is not a field of the collection"
            )
        wanted = list(dict.fromkeys(v for v in values if v is not None))
        if not wanted:
            return
        identity_type = field.identity or field_name
        cursor = None
        seen_cursors: set[str] = set()
        while True:
            answer = self._post(
                {
                    "action": "find",
                    "protocol": PROTOCOL_VERSION,
                    "request_id": self.options.get("request_id"),
                    "collection": collection.physical_name,
                    "field": field_name,
                    "identities": {identity_type: wanted},
                    "cursor": cursor,
                    "limit": PAGE_SIZE,
                }
            )
            records = answer.get("records")
            if not isinstance(records, list):
                raise self._protocol("a find answer needs a `records` list")
            for record in records:
                if not isinstance(record, dict) or not isinstance(record.get("data"), dict):
                    raise self._protocol("each record needs a `data` object")
                # Another collection's records would be counted here by mistake; its own find
                # call will ask for them.
                if record.get("collection", collection.physical_name) == collection.physical_name:
                    yield record["data"]
            cursor = answer.get("next_cursor")
            if cursor is None:
                return
            if not isinstance(cursor, str) or cursor in seen_cursors:
                raise self._protocol("`next_cursor` must be a new string, or null at the end")
            seen_cursors.add(cursor)

    def erase(
        self,
        identities: Mapping[str, Sequence[Any]],
        *,
        request_id: str,
        collection: Collection | None = None,
        keys: Sequence[Any] | None = None,
    ) -> dict[str, Any]:
        """Ask the service to erase the person's records; returns {"status", "erased", "job"}.

        `status` is "done" or "pending" (then poll `status(job)`). The service keys the erasure by
        request_id *and* collection (docs/webhook-protocol.md): one request erases collection by
        collection, each new work, and a retry of the same pair after a lost answer is safe.
        """
        payload: dict[str, Any] = {
            "action": "erase",
            "protocol": PROTOCOL_VERSION,
            "request_id": request_id,
            "identities": {k: list(v) for k, v in identities.items()},
        }
        if collection is not None:
            payload["collection"] = collection.physical_name
        if keys is not None:
            payload["keys"] = list(keys)
        answer = self._post(payload)
        if answer.get("status") not in ("done", "pending"):
            raise self._protocol("an erase answer needs status done or pending")
        if answer["status"] == "pending" and not answer.get("job"):
            raise self._protocol("a pending erase needs a `job` to ask about")
        return {
            "status": answer["status"],
            "erased": int(answer.get("erased") or 0),
            "job": answer.get("job"),
        }

    def status(self, job: str, *, request_id: str) -> dict[str, Any]:
        """Where a pending erasure stands: {"status": "done"|"pending"|"failed", "erased", ...}."""
        answer = self._post(
            {
                "action": "status",
                "protocol": PROTOCOL_VERSION,
                "request_id": request_id,
                "job": job,
            }
        )
        if answer.get("status") not in ("done", "pending", "failed"):
            raise self._protocol("a status answer needs status done, pending or failed")
        return {
            "status": answer["status"],
            "erased": int(answer.get("erased") or 0),
            "reason": answer.get("reason"),
        }


class _Unreachable(TransientStoreError):
    """Connecting to one address failed; the next address of the host may answer."""
