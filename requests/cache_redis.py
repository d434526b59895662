"""The Redis client behind the Django cache, for what needs more than get and set in one round
trip (rate-limit scripts, the audit sealing's claim). None when the cache is not Redis.

Django's Redis cache makes a new client object for every call, which costs more than the round
trip itself; this one is made once per cache backend (per process and thread, as the backends are)
and shares the backend's connection pool.
"""

from __future__ import annotations

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache


def cache_redis():
    """(backend, client) of the default cache when it is Redis, else (backend, None)."""
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        return backend, None
    client = getattr(backend, "_portal_client", None)
    if client is None:
        client = backend._cache.get_client(write=True)
        backend._portal_client = client  # type: ignore[attr-defined]
    return backend, client


def claim_due(name: str, seconds: float) -> float:
    """Claim queuing the task that runs `seconds` from now, for all processes, in one round trip.

    0 when this process claimed it (nobody had: queue the task now); otherwise in how many
    seconds the task another process claimed starts (queue nothing). The claim lives exactly as
    long as that task's countdown and is made before the task is queued, so while it lives the
    task has not started, and it will find whatever committed before the claim was seen. Without
    Redis, always 0: each process keeps its own claim (see requests.queueing).
    """
    backend, client = cache_redis()
    if client is None:
        return 0.0
    key = backend.make_and_validate_key(name)
    pipe = client.pipeline(transaction=False)
    pipe.set(key, 1, nx=True, px=max(1, int(seconds * 1000)))
    pipe.pttl(key)
    claimed, remaining_ms = pipe.execute()
    if claimed:
        return 0.0
    return max(0, remaining_ms) / 1000  # -2: it expired in between, so claim nothing, queue one
