"""Rate limits for the public API and pages: per client address, per identity, per reference.

One place for both: the API's throttles and the pages' forms call the same checks, so neither
is a way around the other. Counts live in the Django cache (Redis when REDIS_URL is set, the
database otherwise), so every web worker sees them. Cache keys hold keyed hashes only: never an
address, an email or a phone number in clear. On Redis, one check of any number of limits is one
round trip (a script counts them in order and stops at the first one reached).

The client's address is the connection's, unless PORTAL_TRUSTED_PROXIES says which proxies
stand in front of the portal; only then is X-Forwarded-For believed, and only as far as those
proxies wrote it (anything further left was written by the client and may be forged).
"""

from __future__ import annotations

import ipaddress
import math
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

from requests.cache_redis import cache_redis
from requests.crypto import keyed_hash
from requests.identity import IdentityError, clean_intake_identity
from requests.services.errors import RateLimited

# What each limit counts, as the 429 answer names it.
DESCRIPTIONS = {
    "file_per_address": "requests filed from one network address",
    "file_per_identity": "requests filed for one email address or phone number",
    "verify_per_address": "verification and download attempts from one network address",
    "verify_per_reference": "verification and download attempts on one request",
}
PERIOD_NAMES = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}
# People sharing one IPv6 /64 are one household or host; an attacker gets a whole /64 for free.
IPV6_PREFIX = 64
# What a request without a usable connection address (a test client, a broken proxy) counts as.
UNKNOWN_ADDRESS = "unknown"


def _parsed(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def client_address(request) -> str:
    """The client's address as far as the trusted proxies vouch for it."""
    remote = _parsed(request.META.get("REMOTE_ADDR", ""))
    if remote is None:
        return UNKNOWN_ADDRESS
    trusted = settings.PORTAL_TRUSTED_PROXIES
    forwarded = [
        item.strip()
        for item in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        if item.strip()
    ]
    if not trusted or not forwarded:
        return str(remote)
    if isinstance(trusted, int):
        # Each of the N proxies appended the address it saw; the Nth from the right is the
        # address the outermost proxy saw, which the client cannot forge.
        chosen = _parsed(forwarded[-min(trusted, len(forwarded))])
        return str(chosen) if chosen is not None else str(remote)
    if not any(remote in network for network in trusted):
        return str(remote)  # not from a trusted proxy: whatever it forwarded is the client's word
    for item in reversed(forwarded):
        hop = _parsed(item)
        if hop is None:
            break  # garbage written by someone untrusted: stop at the last hop we believe
        if not any(hop in network for network in trusted):
            return str(hop)
        remote = hop
    return str(remote)


def _address_key(address: str) -> str:
    parsed = _parsed(address)
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{parsed}/{IPV6_PREFIX}", strict=False))
    return address


def _describe(limit: str, count: int, seconds: int) -> str:
    period = PERIOD_NAMES.get(seconds, f"{seconds} seconds")
    return f"{count} {DESCRIPTIONS.get(limit, limit)} per {period}"


# KEYS: one counter per limit, in the order they are checked; ARGV: each one's lifetime and
# allowance. Counts each until one is over its allowance; returns that one's position (1-based),
# or 0 when all allow the attempt.
_COUNT_SCRIPT = """
for i, key in ipairs(KEYS) do
    local used = redis.call('INCR', key)
    if used == 1 then redis.call('EXPIRE', key, ARGV[2 * i - 1]) end
    if used > tonumber(ARGV[2 * i]) then return i end
end
return 0
"""


def _counter(backend, client):
    """The script, made once per cache backend: it goes to the server once, then is called by
    its hash."""
    script = getattr(backend, "_portal_rate_limit_script", None)
    if script is None:
        script = client.register_script(_COUNT_SCRIPT)
        backend._portal_rate_limit_script = script
    return script


def _count(keys: list[str], limits: list[tuple[int, int]]) -> int:
    """Count one attempt on each key in order; the 1-based position of the first over its
    allowance (it and those before it counted, those after not), or 0."""
    backend, client = cache_redis()
    if client is not None:
        arguments = [value for count, seconds in limits for value in (seconds + 1, count)]
        keys = [backend.make_and_validate_key(key) for key in keys]
        return int(_counter(backend, client)(keys=keys, args=arguments))
    for position, (key, (count, seconds)) in enumerate(zip(keys, limits, strict=True), 1):
        ttl = seconds + 1
        if cache.add(key, 1, timeout=ttl):
            used = 1
        else:
            try:
                used = cache.incr(key)
            except ValueError:  # the window's key expired between add and incr
                cache.add(key, 1, timeout=ttl)
                used = 1
        if used > count:
            return position
    return 0


def limits_hit(checks: list[tuple[str, str]]) -> None:
    """Count one attempt against each (limit, subject), in order; RateLimited at the first limit
    reached, and the limits after it are not counted.

    Fixed windows: a window's count starts at its first attempt and the answer says when the
    window ends, which is exactly when a new attempt will be allowed.
    """
    if not checks:
        return
    now = time.time()
    keys, limits = [], []
    for limit, subject in checks:
        count, seconds = settings.PORTAL_RATE_LIMITS[limit]
        window = int(now // seconds)
        keys.append(
            f"ratelimit:{limit}:{keyed_hash(subject, purpose=f'ratelimit:{limit}')}:{window}"
        )
        limits.append((count, seconds))
    reached = _count(keys, limits)
    if reached:
        limit = checks[reached - 1][0]
        count, seconds = limits[reached - 1]
        retry_after = max(1, math.ceil((int(now // seconds) + 1) * seconds - now))
        raise RateLimited(
            f"Too many attempts: the limit {limit} allows {_describe(limit, count, seconds)}. "
            f"Try again in {retry_after} seconds.",
            retry_after=retry_after,
            code="rate_limited",
            extra={"limit": limit, "retry_after": retry_after},
        )


def limit_hit(limit: str, subject: str) -> None:
    """Count one attempt against `limit` for `subject`; RateLimited once the limit is reached."""
    limits_hit([(limit, subject)])


def _address_check(request, limit: str) -> tuple[str, str]:
    return (limit, _address_key(client_address(request)))


def _identity_checks(identity: object) -> list[tuple[str, str]]:
    """One per identifier that reaches a person: the email and the phone."""
    try:
        cleaned = clean_intake_identity(identity)
    except IdentityError:
        return []  # the service refuses it with a clear message; nothing to count
    return [
        ("file_per_identity", f"{kind}:{cleaned[kind]}")
        for kind in ("email", "phone")
        if cleaned.get(kind)
    ]


def check_address(request, limit: str) -> None:
    limits_hit([_address_check(request, limit)])


def check_identity(identity: object) -> None:
    """Count a filing against each identifier that reaches a person: the email and the phone."""
    limits_hit(_identity_checks(identity))


def check_filing(request, identity: object) -> None:
    """A filing's limits, in one round trip: the client address's, then each identifier's (not
    counted when the address is over its limit, as if checked one after the other)."""
    limits_hit([_address_check(request, "file_per_address"), *_identity_checks(identity)])


def check_reference(reference: str) -> None:
    limit_hit("verify_per_reference", f"reference:{reference}")


class PublicVerifyThrottle(BaseThrottle):
    """Code guesses and resends, per client address and per request reference."""

    def allow_request(self, request, view) -> bool:
        checks = [_address_check(request, "verify_per_address")]
        reference = getattr(view, "kwargs", {}).get("reference")
        if reference:
            checks.append(("verify_per_reference", f"reference:{reference}"))
        limits_hit(checks)
        return True
