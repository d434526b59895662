"""The Redis connector against a real Redis: keys found by the identifier in their names."""

from __future__ import annotations

import json
import socket
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis

from requests.connectors.registry import connector_for
from requests.engine.store import PermanentStoreError, TransientStoreError
from requests.engine.storemap import StoreMap

# A database of its own so that the tests never touch the portal's broker data in db 0.
TEST_DB = 13


def with_db(url: str, db: int = TEST_DB) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, ""))


@pytest.fixture
def store(redis_server_url):
    """(url, client, prefix): a unique key prefix in the test db, its keys removed afterwards."""
    url = with_db(redis_server_url)
    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    prefix = f"t{uuid.uuid4().hex[:10]}"
    try:
        yield url, client, prefix
    finally:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


def sessions_map(pattern: str, **fields) -> StoreMap:
    return StoreMap.model_validate(
        {
            "collections": {
                "sessions": {
                    "location": pattern,
                    "key": ["key"],
                    "fields": fields or {"customer_id": {}},
                }
            }
        }
    )


def open_connector(url: str, store_map: StoreMap, **kwargs):
    return connector_for("redis", url, store_map, name="sessions-store", **kwargs)


def found(connector, store_map, field, values):
    return list(connector.find(store_map.collections["sessions"], field, values))


def test_finds_one_customers_session_keys_and_not_those_of_a_customer_whose_id_extends_it(store):
    url, client, p = store
    client.hset(f"{p}:session:12:a", mapping={"ip": "10.0.0.1", "agent": "firefox"})
    client.set(f"{p}:session:12:b", json.dumps({"cart": [1, 2]}))
    client.set(f"{p}:session:123:a", "someone else")
    client.set(f"{p}:session:1:a", "someone else too")
    store_map = sessions_map(f"{p}:session:{{customer_id}}:*")

    with open_connector(url, store_map) as connector:
        records = found(connector, store_map, "customer_id", ["12"])

    assert sorted(r["key"] for r in records) == [f"{p}:session:12:a", f"{p}:session:12:b"]
    assert {r["customer_id"] for r in records} == {"12"}


def test_reads_strings_json_hashes_sets_lists_and_sorted_sets_by_their_type(store):
    url, client, p = store
    client.set(f"{p}:u:7:plain", "hello")
    client.set(f"{p}:u:7:json", json.dumps({"theme": "dark"}))
    client.set(f"{p}:u:7:number", "0123")
    client.hset(f"{p}:u:7:hash", mapping={"name": "Ada", "city": "London"})
    client.sadd(f"{p}:u:7:set", "b", "a")
    client.rpush(f"{p}:u:7:list", "first", "second")
    client.zadd(f"{p}:u:7:zset", {"low": 1, "high": 2})
    client.set(f"{p}:u:7:binary", b"\xff\x00")
    store_map = sessions_map(f"{p}:u:{{customer_id}}:*")

    with open_connector(url, store_map) as connector:
        records = {
            r["key"].rsplit(":", 1)[1]: r for r in found(connector, store_map, "customer_id", [7])
        }

    assert {name: r["type"] for name, r in records.items()} == {
        "plain": "string",
        "json": "string",
        "number": "string",
        "hash": "hash",
        "set": "set",
        "list": "list",
        "zset": "zset",
        "binary": "string",
    }
    assert records["plain"]["value"] == "hello"
    assert records["json"]["value"] == {"theme": "dark"}
    assert records["number"]["value"] == "0123"  # not turned into a number
    assert records["hash"]["value"] == {"name": "Ada", "city": "London"}
    assert records["set"]["value"] == ["a", "b"]
    assert records["list"]["value"] == ["first", "second"]
    assert records["zset"]["value"] == [["low", 1.0], ["high", 2.0]]
    assert records["binary"]["value"] == {"base64": "/wA="}


def test_glob_characters_in_values_match_only_themselves(store):
    url, client, p = store
    for customer in ["12", "1*", "1?", "[1]", "1", "a\\b"]:
        client.set(f"{p}:session:{customer}:x", "v")
    store_map = sessions_map(f"{p}:session:{{customer_id}}:*")

    with open_connector(url, store_map) as connector:
        for value in ["1*", "1?", "[1]", "a\\b"]:
            keys = [r["key"] for r in found(connector, store_map, "customer_id", [value])]
            assert keys == [f"{p}:session:{value}:x"], value
        assert found(connector, store_map, "customer_id", ["*"]) == []


def test_keys_holding_an_email_are_found_in_any_case_when_the_collection_ignores_case(store):
    url, client, p = store
    client.set(f"{p}:cart:Ada@Example.com", "v")
    client.set(f"{p}:cart:bob@example.com", "v")
    exact = sessions_map(f"{p}:cart:{{email}}", email={})
    relaxed = StoreMap.model_validate(
        {
            "collections": {
                "sessions": {
                    "location": f"{p}:cart:{{email}}",
                    "fields": {"email": {}},
                    "options": {"ignore_case": True},
                }
            }
        }
    )

    with open_connector(url, exact) as connector:
        assert found(connector, exact, "email", ["ada@example.com"]) == []
    with open_connector(url, relaxed) as connector:
        records = found(connector, relaxed, "email", ["ada@example.com"])
        many = found(
            connector,
            relaxed,
            "email",
            [f"x{n}@example.com" for n in range(20)] + ["ADA@example.com"],
        )

    assert [(r["key"], r["email"]) for r in records] == [
        (f"{p}:cart:Ada@Example.com", "Ada@Example.com")
    ]
    assert [r["key"] for r in many] == [f"{p}:cart:Ada@Example.com"]


def test_email_identities_match_keys_in_any_case_unless_the_field_says_exact(store):
    url, client, p = store
    client.set(f"{p}:cart:Ada@Example.com", "v")
    auto = sessions_map(f"{p}:cart:{{email}}", email={"identity": "email"})
    exact = sessions_map(f"{p}:cart:{{email}}", email={"identity": "email", "match": "exact"})

    with open_connector(url, auto) as connector:
        carts = auto.collections["sessions"]
        by_identity = list(connector.find_identity(carts, "email", "email", ["ada@example.com"]))
        by_value = list(connector.find(carts, "email", ["ada@example.com"]))
    with open_connector(url, exact) as connector:
        carts = exact.collections["sessions"]
        as_stored = list(connector.find_identity(carts, "email", "email", ["ada@example.com"]))

    assert [r["key"] for r in by_identity] == [f"{p}:cart:Ada@Example.com"]
    assert by_value == []  # a referenced value is compared exactly
    assert as_stored == []


def test_many_values_are_searched_in_one_walk_with_the_same_results(store):
    url, client, p = store
    for customer in range(100):
        client.set(f"{p}:session:{customer}:x", "v")
        client.set(f"{p}:session:{customer}1:x", "v")  # 01, 11, ...: ids that extend another
    client.set(f"{p}:session:1*:x", "v")
    store_map = sessions_map(f"{p}:session:{{customer_id}}:*")
    wanted = [str(n) for n in range(0, 100, 3)] + ["1*"]  # more than one SCAN per value would do

    with open_connector(url, store_map) as connector:
        keys = sorted(r["key"] for r in found(connector, store_map, "customer_id", wanted))

    assert keys == sorted(f"{p}:session:{v}:x" for v in wanted)


def test_a_value_holding_the_separator_is_not_searched_so_it_cannot_reach_another_key(store):
    url, client, p = store
    client.set(f"{p}:session:12:3:x", "customer 12's session 3")
    store_map = sessions_map(f"{p}:session:{{customer_id}}:*")

    with open_connector(url, store_map) as connector:
        assert found(connector, store_map, "customer_id", ["12:3"]) == []
        assert len(found(connector, store_map, "customer_id", ["12"])) == 1


def test_a_pattern_without_a_separator_after_the_placeholder_is_refused(store):
    url, _, p = store
    store_map = sessions_map(f"{p}:session:{{customer_id}}*")

    with open_connector(url, store_map) as connector:
        result = connector.check()
        with pytest.raises(PermanentStoreError, match="separator"):
            found(connector, store_map, "customer_id", ["12"])

    assert not result.ok
    assert any("separator" in problem for problem in result.problems)


def test_placeholders_other_than_the_searched_field_are_returned_with_each_key(store):
    url, client, p = store
    client.set(f"{p}:cart:12:ada@example.com", "v")
    client.set(f"{p}:cart:13:bob@example.com", "v")
    store_map = sessions_map(f"{p}:cart:{{customer_id}}:{{email}}", customer_id={}, email={})

    with open_connector(url, store_map) as connector:
        records = found(connector, store_map, "email", ["ada@example.com"])

    assert [(r["customer_id"], r["email"]) for r in records] == [("12", "ada@example.com")]


def test_erase_unlinks_the_keys_of_the_collection_and_refuses_others(store):
    url, client, p = store
    client.set(f"{p}:session:12:a", "v")
    client.hset(f"{p}:session:12:b", mapping={"f": "v"})
    client.set(f"{p}:other:12", "not in the collection")
    store_map = sessions_map(f"{p}:session:{{customer_id}}:*")
    sessions = store_map.collections["sessions"]

    with open_connector(url, store_map) as connector:
        keys = [r["key"] for r in connector.find(sessions, "customer_id", ["12"])]
        with pytest.raises(PermanentStoreError):
            connector.erase(sessions, [f"{p}:other:12"])
        assert connector.erase(sessions, keys) == 2
        assert connector.erase(sessions, keys) == 0  # a retried erasure is harmless
        assert found(connector, store_map, "customer_id", ["12"]) == []

    assert client.get(f"{p}:other:12") == b"not in the collection"


def test_the_check_answers_ok_when_redis_answers_ping(store):
    url, _, p = store
    with open_connector(url, sessions_map(f"{p}:session:{{customer_id}}:*")) as connector:
        result = connector.check()
    assert result.ok, result.message
    assert "PING" in result.message


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_redis_where_nothing_listens_fails_the_check_clearly_and_find_is_transient():
    port = _closed_port()
    store_map = sessions_map("session:{customer_id}:*")

    with open_connector(f"redis://127.0.0.1:{port}/{TEST_DB}", store_map, timeout=2) as connector:
        result = connector.check()
        with pytest.raises(TransientStoreError, match=f"127.0.0.1:{port}"):
            found(connector, store_map, "customer_id", ["12"])

    assert not result.ok
    assert f"could not connect to Redis at 127.0.0.1:{port}" in result.message


def test_wrong_credentials_are_a_permanent_error_that_never_shows_the_password(redis_server_url):
    parts = urlsplit(with_db(redis_server_url))
    url = f"redis://nobody:s3cret-pw@{parts.hostname}:{parts.port}/{TEST_DB}"
    store_map = sessions_map("session:{customer_id}:*")

    with open_connector(url, store_map, timeout=2) as connector:
        result = connector.check()
        with pytest.raises(PermanentStoreError) as raised:
            found(connector, store_map, "customer_id", ["12"])

    assert not result.ok
    assert "credentials" in result.message
    assert "s3cret-pw" not in result.message and "s3cret-pw" not in str(raised.value)
