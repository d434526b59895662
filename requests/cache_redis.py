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
