"""Masking: each strategy writes what the map says, fits the column, and a second run of a
constant mask counts nothing; a record kept by the `keep` fallback is held, not remaining."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from requests.engine.erasure import erase_person, find_remaining
from requests.engine.store import PermanentStoreError
from requests.engine.storemap import StoreMap
from tests.engine.erasure_helpers import HASH_KEY, fresh_database, rows

ADA = "ada@example.com"

SCHEMA = [
    """CREATE TABLE accounts (
        id INTEGER PRIMARY KEY, email VARCHAR(200) NOT NULL, login VARCHAR(16) NOT NULL,
        nickname VARCHAR(40), city VARCHAR(5), token VARCHAR(10), phone VARCHAR(20),
        score INTEGER)""",
    """CREATE TABLE referrals (
        id INTEGER PRIMARY KEY, referrer_id INTEGER NOT NULL, friend VARCHAR(100),
        FOREIGN KEY (referrer_id) REFERENCES accounts (id))""",
    """INSERT INTO accounts VALUES
        (1, 'ada@example.com', 'ada.lovelace', 'Ada', 'Paris', 'abcdef', '+442079460000', 7),
        (2, 'bob@example.com', 'bob', 'Bob', 'Leeds', 'zzzzzz', '+442079460001', 3)""",
    # Bob was referred by Ada: his referral row points at her account.
    "INSERT INTO referrals VALUES (1, 1, 'bob')",
]


def accounts_map(**erasure) -> StoreMap:
    return StoreMap.model_validate(
        {
            "collections": {
                "accounts": {
                    "key": ["id"],
                    "fields": {
                        "email": {"identity": "email", "mask": "keep"},
                        "login": {"mask": "hash"},
                        "nickname": {"mask": "null"},
                        "city": {"mask": "fixed", "mask_value": "erased"},
                        "token": {"mask": "random"},
                        "phone": {"mask": "keep"},
                    },
                    "erasure": erasure or {"action": "hold", "basis": "anti-fraud (Art. 17(3)(e))"},
                },
                "referrals": {
                    "key": ["id"],
                    "fields": {
                        "referrer_id": {
                            "references": {
                                "collection": "accounts",
                                "field": "id",
                                "follow": "none",
                            }
                        },
                    },
                },
            }
        }
    )


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def store(request, tmp_path):
    return fresh_database(request.param, request, tmp_path, "accounts", *SCHEMA)


def erase(connect, store, store_map):
    kind, url = store
    connector = connect(kind, url, store_map, name="accounts")
    result = erase_person(
        {"accounts": connector}, {"email": ADA}, store="accounts", hash_key=HASH_KEY
    )
    return connector, result


def account(url, key):
    (found,) = rows(url, "accounts", "id = :id", {"id": key})
    return found


def test_each_mask_strategy_writes_what_the_map_says_within_the_column(connect, store):
    _, url = store
    bob = account(url, 2)

    _, result = erase(connect, store, accounts_map())

    ident, email, login, nickname, city, token, phone, score = account(url, 1)
    expected = hmac.new(HASH_KEY, b"ada.lovelace", hashlib.sha256).hexdigest()[:16]
    assert (ident, email, phone, score) == (1, ADA, "+442079460000", 7)  # keep, and unmapped
    assert login == expected  # keyed hash, cut to VARCHAR(16)
    assert nickname is None
    assert city == "erase"  # fixed text, cut to VARCHAR(5)
    assert len(token) == 6 and token != "abcdef"  # random, the same length
    assert account(url, 2) == bob
    assert result.collections["accounts"].held == 1
    assert result.collections["accounts"].basis == "anti-fraud (Art. 17(3)(e))"


def test_a_second_run_of_constant_masks_changes_and_counts_nothing(connect, store):
    _, url = store
    constant = accounts_map(action="mask").model_dump(mode="json", by_alias=True)
    fields = constant["collections"]["accounts"]["fields"]
    fields["login"] = {"mask": "fixed", "mask_value": "gone"}
    fields["token"] = {"mask": "null"}
    store_map = StoreMap.model_validate(constant)

    _, first = erase(connect, store, store_map)
    masked = account(url, 1)
    _, second = erase(connect, store, store_map)

    assert first.collections["accounts"].masked == 1
    assert second.collections["accounts"].masked == 0  # found again (email kept), unchanged
    assert account(url, 1) == masked


def test_a_record_kept_by_the_keep_fallback_is_reported_held_by_the_sweep(connect, store):
    """Bob's referral points at Ada's account: `fallback: keep` leaves it, says why, and the
    sweep (which still finds it by email) reports it held rather than remaining."""
    _, url = store
    before = account(url, 1)

    connector, result = erase(connect, store, accounts_map(action="delete", fallback="keep"))

    assert account(url, 1) == before
    accounts = result.collections["accounts"]
    assert (accounts.kept, accounts.deleted) == (1, 0)
    assert accounts.notes == [
        "kept: 1 record(s) referenced by 1 record(s) of others (through referrals.referrer_id) "
        "(fallback keep)"
    ]
    assert find_remaining({"accounts": connector}, {"email": ADA}) == {
        "accounts": {"accounts": {"remaining": 0, "held": 1}}
    }


def test_a_deletable_record_found_again_is_remaining_for_the_sweep(connect, store):
    kind, url = store
    connector = connect(kind, url, accounts_map(action="delete"), name="accounts")

    assert find_remaining({"accounts": connector}, {"email": ADA}) == {
        "accounts": {"accounts": {"remaining": 1, "held": 0}}
    }


def test_a_mask_the_column_cannot_take_fails_and_changes_nothing(connect, store):
    _, url = store
    broken = accounts_map(action="mask").model_dump(mode="json", by_alias=True)
    broken["collections"]["accounts"]["fields"]["login"] = {"mask": "null"}  # NOT NULL
    before = rows(url, "accounts")

    with pytest.raises(PermanentStoreError, match="login: the null mask needs a column"):
        erase(connect, store, StoreMap.model_validate(broken))

    assert rows(url, "accounts") == before
