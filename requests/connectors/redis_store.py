"""Redis: records are keys whose names carry the person's identifiers.

A collection's `location` is a key pattern in Redis glob syntax with placeholders naming the
collection's fields, for example:

    collections:
      sessions:
        location: "session:{customer_id}:*"
        key: [key]
        fields:
          customer_id: {references: {store: shop, collection: customers, field: id}}

`find(sessions, "customer_id", ["12"])` SCANs for `session:12:*` (glob characters in the value are
escaped, so a value never widens the match) and yields one dict per key:

    {"key": "session:12:abc", "type": "hash", "value": {...}, "customer_id": "12"}

Identity fields of type email or name match keys in any letter case (`cart:Ada@Example.com` is
found for ada@example.com) unless the field says `match: exact`; `options: {ignore_case: true}` on
the collection does the same for every field.

`value` is a str for strings (a JSON object or array is decoded), a dict for hashes, a sorted list
for sets, a list for lists, a list of [member, score] for sorted sets and a list of
[id, {field: value}] for streams. Bytes that are not UTF-8 become {"base64": "..."}.

A value that contains the character following its placeholder, when a wildcard comes after it, is
skipped: for `session:{id}:*` the value `12:3` would match the keys of customer 12. Choose patterns
whose separators cannot occur in the values.

Keys are never listed with KEYS (it blocks the server); SCAN walks the keyspace in bounded steps.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit

import redis
import redis.exceptions as rx

from requests.connectors.base import PatternConnector
from requests.engine.store import (
    CheckResult,
    PermanentStoreError,
    StoreError,
    TransientStoreError,
)
from requests.engine.storemap import Collection

# Keys the server examines per SCAN step: large enough that a million-key database takes about a
# thousand round trips, small enough that one step never blocks Redis for more than a moment.
SCAN_COUNT = 1000

# Keys read per pipeline round trip (one TYPE then one read per key): bounds the memory of a batch
# and the time the server spends on one request while keeping round trips few.
READ_BATCH = 200

# Keys removed per UNLINK: UNLINK frees memory in the background, so the bound only keeps each
# command small.
ERASE_BATCH = 500

# Up to this many values, one SCAN per value lets Redis do the matching and sends back only the
# person's keys. Beyond it, one SCAN over the pattern with any value, filtered here, walks the
# keyspace once instead of once per value.
PER_VALUE_SCAN_LIMIT = 16

_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")


def escape_glob(value: str, ignore_case: bool = False) -> str:
    """The value as a Redis MATCH pattern that matches only itself (in any case, if asked)."""
    escaped = _GLOB_SPECIAL.sub(r"\\\1", value)
    if not ignore_case:
        return escaped
    # MATCH has no case-insensitive mode; a class per letter (`[aA]`) does the same.
    return "".join(
        f"[{c.lower()}{c.upper()}]" if c.lower() != c.upper() and len(c.upper()) == 1 else c
        for c in escaped
    )


class KeyPattern:
    """A key pattern such as `session:{customer_id}:*`, split into literals and placeholders."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        # Alternating literal text and placeholder names: [lit, name, lit, name, ..., lit].
        self.parts = _PLACEHOLDER.split(pattern)
        self.placeholders = self.parts[1::2]
        if not self.placeholders:
            raise PermanentStoreError(f"key pattern {pattern!r} has no {{field}} placeholder")
        if len(set(self.placeholders)) != len(self.placeholders):
            raise PermanentStoreError(f"key pattern {pattern!r} repeats a placeholder")
        for i in range(1, len(self.parts), 2):
            before, after = self.parts[i - 1], self.parts[i + 1]
            # `{id}*` would find customer 123's keys for customer 12: nothing separates the value.
            if (i > 1 and not before) or before[-1:] in ("*", "?") or after[:1] in ("*", "?"):
                raise PermanentStoreError(
                    f"key pattern {pattern!r}: put a separator between {{{self.parts[i]}}} "
                    "and the wildcard or placeholder next to it"
                )

    def _delimiters(self, name: str) -> str:
        """The characters next to the placeholder on each side where a wildcard lies beyond.

        A value holding one of them could match a key of another value: with `session:{id}:*`,
        the value `12:3` matches `session:12:3:x`, a key of customer 12.
        """
        index = self.parts.index(name)
        before, after = self.parts[:index], self.parts[index + 1 :]
        out = ""
        # Other placeholders are searched as `*`, so they count as wildcards too.
        if before[-1] and (len(before) > 1 or _has_wildcard(before[0])):
            out += before[-1][-1]
        if after[0] and (len(after) > 1 or _has_wildcard(after[0])):
            out += after[0][0]
        return out

    def usable(self, name: str, value: str) -> bool:
        """Whether a value can be searched without matching someone else's keys."""
        if value == "":
            return False
        return not any(ch in value for ch in self._delimiters(name))

    def match_pattern(self, values: dict[str, str] | None = None, ignore_case: bool = False) -> str:
        """The SCAN MATCH pattern: given placeholders escaped, the others as `*`."""
        values = values or {}
        out = []
        for i, part in enumerate(self.parts):
            if i % 2 == 0:
                # Only `*` and `?` are wildcards in a map's pattern; brackets are literal.
                out.append(part.replace("[", "\\[").replace("]", "\\]"))
            else:
                out.append(escape_glob(values[part], ignore_case) if part in values else "*")
        return "".join(out)

    def regex(
        self, name: str | None = None, values: Iterable[str] = (), ignore_case: bool = False
    ) -> re.Pattern:
        """A regex for whole keys; placeholder `name` limited to `values` when given."""
        out = ["^"]
        for i, part in enumerate(self.parts):
            if i % 2 == 0:
                out.append(_glob_to_regex(part))
            elif part == name:
                alternatives = sorted({re.escape(v) for v in values}, key=len, reverse=True)
                out.append(f"(?P<{part}>{'|'.join(alternatives)})")
            else:
                out.append(f"(?P<{part}>.*?)")
        out.append("$")
        return re.compile("".join(out), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def _has_wildcard(literal: str) -> bool:
    return bool(re.search(r"(?<!\\)[*?]", literal))


def _glob_to_regex(literal: str) -> str:
    out = []
    i = 0
    while i < len(literal):
        ch = literal[i]
        if ch == "\\" and i + 1 < len(literal):
            out.append(re.escape(literal[i + 1]))
            i += 2
            continue
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out)


def _text(raw: bytes | None) -> Any:
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(raw).decode("ascii")}


def _maybe_json(text: Any) -> Any:
    # Only objects and arrays: decoding "0123" or "1e5" as numbers would change what was stored.
    if isinstance(text, str) and text[:1] in ("{", "["):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def _key_text(raw: bytes) -> str:
    # Keys are matched as text; a key that is not UTF-8 keeps its bytes as surrogates so it can be
    # read and erased again exactly.
    return raw.decode("utf-8", errors="surrogateescape")


def _key_bytes(key: str) -> bytes:
    return key.encode("utf-8", errors="surrogateescape")


class RedisConnector(PatternConnector):
    kind = "redis"
    # Each command takes a pooled connection and SCAN keeps its cursor here, so open finds do not
    # disturb one another.
    concurrent_finds = True
    can_scan_values = True

    def __init__(self, url, store_map, **kwargs) -> None:
        super().__init__(url, store_map, **kwargs)
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise PermanentStoreError("a Redis store needs a redis://, rediss:// or unix:// URL")
        # Where the store is, for messages; never the password.
        self._where = (
            parts.path if parts.scheme == "unix" else f"{parts.hostname}:{parts.port or 6379}"
        )
        self._client: redis.Redis | None = None

    @property
    def client(self) -> redis.Redis:
        if self._client is None:
            try:
                self._client = redis.Redis.from_url(
                    self.url,
                    socket_connect_timeout=self.timeout,
                    socket_timeout=self.timeout,
                    decode_responses=False,
                )
            except ValueError:
                raise PermanentStoreError("the Redis URL is not valid") from None
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _error(self, exc: rx.RedisError) -> StoreError:
        """The store error for a Redis error; messages name the server, never keys or values."""
        if isinstance(exc, rx.AuthenticationError | rx.AuthorizationError | rx.NoPermissionError):
            return PermanentStoreError(
                f"Redis at {self._where} refused the credentials or the command "
                f"({type(exc).__name__}); check the user, password and ACL"
            )
        if isinstance(exc, rx.BusyLoadingError):
            return TransientStoreError(f"Redis at {self._where} is loading its data")
        if isinstance(exc, rx.TimeoutError):
            return TransientStoreError(
                f"Redis at {self._where} did not answer within {self.timeout:g} s"
            )
        if isinstance(exc, rx.ConnectionError):
            return TransientStoreError(f"could not connect to Redis at {self._where}: {exc}")
        if isinstance(exc, rx.ResponseError):
            # The first word is the error code (WRONGTYPE, OOM, ...); the rest may quote data.
            code = str(exc).split(" ", 1)[0]
            if isinstance(exc, rx.ReadOnlyError | rx.TryAgainError | rx.ClusterDownError):
                return TransientStoreError(f"Redis at {self._where} answered {code}")
            return PermanentStoreError(f"Redis at {self._where} answered {code}")
        return PermanentStoreError(f"Redis at {self._where} failed: {type(exc).__name__}")

    def scan_values(
        self, collection: Collection, field_name: str, *, batch: int
    ) -> Iterator[list[Any]]:
        pattern = KeyPattern(collection.physical_name)
        if field_name not in pattern.placeholders:
            return
        matcher = pattern.regex()
        values: list[str] = []
        try:
            for raw in self.client.scan_iter(match=pattern.match_pattern().encode(), count=batch):
                parsed = matcher.match(raw.decode("utf-8", "replace"))
                if parsed is None:
                    continue
                values.append(parsed.group(field_name))
                if len(values) >= batch:
                    yield values
                    values = []
        except rx.RedisError as exc:
            raise self._error(exc) from None
        if values:
            yield values

    def check(self) -> CheckResult:
        problems, _ = self._map_patterns(KeyPattern)
        try:
            self.client.ping()
        except rx.RedisError as exc:
            error = self._error(exc)
            return CheckResult(False, str(error), [str(error), *problems])
        db = self.client.connection_pool.connection_kwargs.get("db", 0)
        if problems:
            return CheckResult(
                False, f"Redis at {self._where} answers; the map has problems", problems
            )
        return CheckResult(True, f"Redis at {self._where} (db {db}) answers PING")

    def _find(
        self, collection: Collection, field_name: str, values: Sequence[Any], ignore_case: bool
    ) -> Iterator[dict[str, Any]]:
        pattern = KeyPattern(collection.physical_name)
        if field_name not in pattern.placeholders:
            raise PermanentStoreError(
                f"collection {collection.name}: {field_name} is not a placeholder "
                "of its key pattern"
            )
        texts = (str(v) for v in values if v is not None)
        if ignore_case:
            texts = (t.lower() for t in texts)
        wanted = sorted(v for v in set(texts) if pattern.usable(field_name, v))
        if not wanted:
            return
        matcher = pattern.regex(field_name, wanted, ignore_case)
        if len(wanted) <= PER_VALUE_SCAN_LIMIT:
            scans = [pattern.match_pattern({field_name: v}, ignore_case) for v in wanted]
        else:
            scans = [pattern.match_pattern()]
        try:
            seen: set[str] = set()
            batch: list[tuple[str, dict[str, str]]] = []
            for match in scans:
                for raw in self.client.scan_iter(match=_key_bytes(match), count=SCAN_COUNT):
                    key = _key_text(raw)
                    parsed = matcher.match(key)
                    # SCAN may return a key twice (a rehash during the walk); report it once.
                    if parsed is None or key in seen:
                        continue
                    seen.add(key)
                    batch.append((key, parsed.groupdict()))
                    if len(batch) >= READ_BATCH:
                        yield from self._read(batch)
                        batch = []
            if batch:
                yield from self._read(batch)
        except rx.RedisError as exc:
            raise self._error(exc) from None

    def _read(self, batch: list[tuple[str, dict[str, str]]]) -> Iterator[dict[str, Any]]:
        pipe = self.client.pipeline(transaction=False)
        for key, _ in batch:
            pipe.type(_key_bytes(key))
        types = [t.decode() if isinstance(t, bytes) else t for t in pipe.execute()]

        pipe = self.client.pipeline(transaction=False)
        readable = []
        for (key, fields), kind in zip(batch, types, strict=True):
            if kind == "none":
                continue  # expired or removed since the SCAN
            reader = _READERS.get(kind)
            if reader is None:
                # A module type (ReJSON-RL, ...): reported without its value so that staff see it
                # and erasure removes it.
                yield {**fields, "key": key, "type": kind, "value": None}
                continue
            reader[0](pipe, _key_bytes(key))
            readable.append((key, fields, kind, reader[1]))
        for (key, fields, kind, decode), raw in zip(
            readable, pipe.execute(raise_on_error=False), strict=True
        ):
            if isinstance(raw, rx.ResponseError):
                # WRONGTYPE: the key was replaced between TYPE and the read; skip rather than fail.
                continue
            if isinstance(raw, rx.RedisError):
                raise raw
            yield {**fields, "key": key, "type": kind, "value": decode(raw)}

    def erase(self, collection: Collection, keys: Iterable[Any]) -> int:
        """Remove keys of the collection; returns how many existed. Keys outside its pattern are
        refused, so a wrong plan cannot remove someone else's data."""
        matcher = KeyPattern(collection.physical_name).regex()
        batch: list[bytes] = []
        removed = 0
        for key in keys:
            if isinstance(key, tuple | list):
                (key,) = key  # a record key of one part, as the finder reports it
            if not isinstance(key, str) or not matcher.match(key):
                raise PermanentStoreError(
                    f"collection {collection.name}: refusing to erase a key outside its pattern"
                )
            batch.append(_key_bytes(key))
            if len(batch) >= ERASE_BATCH:
                removed += self._unlink(batch)
                batch = []
        if batch:
            removed += self._unlink(batch)
        return removed

    def delete_keys(self, collection: Collection, keys: Sequence[tuple]) -> int:
        """The erasure primitive (requests.engine.store): `erase` by record key."""
        return self.erase(collection, keys)

    def _unlink(self, keys: list[bytes]) -> int:
        try:
            return int(self.client.unlink(*keys))
        except rx.RedisError as exc:
            raise self._error(exc) from None


def _set_members(raw: set[bytes]) -> list:
    return sorted((_text(m) for m in raw), key=lambda m: json.dumps(m, sort_keys=True))


# Per Redis type: how to queue the read on a pipeline, and how to decode its answer.
_READERS = {
    "string": (lambda p, k: p.get(k), lambda raw: _maybe_json(_text(raw))),
    "hash": (
        lambda p, k: p.hgetall(k),
        lambda raw: {_key_text(f): _text(v) for f, v in raw.items()},
    ),
    "set": (lambda p, k: p.smembers(k), _set_members),
    "list": (lambda p, k: p.lrange(k, 0, -1), lambda raw: [_text(v) for v in raw]),
    "zset": (
        lambda p, k: p.zrange(k, 0, -1, withscores=True),
        lambda raw: [[_text(m), s] for m, s in raw],
    ),
    "stream": (
        lambda p, k: p.xrange(k),
        lambda raw: [
            [_text(i), {_key_text(f): _text(v) for f, v in fields.items()}] for i, fields in raw
        ],
    ),
}
