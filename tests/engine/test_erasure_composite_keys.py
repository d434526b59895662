"""Records keyed by several columns are erased and masked by their whole key, in every engine."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from requests.engine.erasure import erase_person
from requests.engine.storemap import StoreMap
from tests.engine.erasure_helpers import HASH_KEY, fresh_database, rows

SCHEMA = [
    "CREATE TABLE people (id INTEGER PRIMARY KEY, email VARCHAR(200) NOT NULL)",
    """CREATE TABLE memberships (
        person_id INTEGER NOT NULL, club VARCHAR(20) NOT NULL, nickname VARCHAR(64),
        PRIMARY KEY (person_id, club), FOREIGN KEY (person_id) REFERENCES people (id))""",
    "INSERT INTO people VALUES (1, 'ada@example.com'), (2, 'bob@example.com')",
    # Bob is in the same clubs: only the pair (person, club) tells the rows apart.
    """INSERT INTO memberships VALUES (1, 'chess', 'queen'), (1, 'rowing', 'stroke'),
        (1, 'choir', 'alto'), (2, 'chess', 'knight'), (2, 'rowing', 'bow')""",
]


def club_map(action: str) -> StoreMap:
    return StoreMap.model_validate(
        {
            "collections": {
                "people": {"key": ["id"], "fields": {"email": {"identity": "email"}}},
                "memberships": {
                    "key": ["person_id", "club"],
                    "fields": {
                        "person_id": {"references": {"collection": "people", "field": "id"}},
                        "nickname": {"mask": "hash"},
                    },
                    "erasure": {"action": action, "basis": "club statutes (Art. 17(3)(e))"},
                },
            }
        }
    )


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def clubs(request, tmp_path):
    return fresh_database(request.param, request, tmp_path, "clubs", *SCHEMA)


def erase(connect, clubs, action):
    kind, url = clubs
    connector = connect(kind, url, club_map(action), name="clubs")
    return erase_person(
        {"clubs": connector}, {"email": "ada@example.com"}, store="clubs", hash_key=HASH_KEY
    )


def test_records_with_a_composite_key_are_deleted_by_the_whole_key(connect, clubs):
    _, url = clubs
    bob = rows(url, "memberships", "person_id = 2")

    result = erase(connect, clubs, "delete")

    assert result.collections["memberships"].deleted == 3
    assert result.collections["people"].deleted == 1
    assert rows(url, "memberships") == bob
    assert rows(url, "people") == [(2, "bob@example.com")]


def test_records_with_a_composite_key_are_masked_by_the_whole_key(connect, clubs):
    _, url = clubs
    bob = rows(url, "memberships", "person_id = 2")

    result = erase(connect, clubs, "hold")

    assert result.collections["memberships"].held == 3
    expected = {
        (1, club, hmac.new(HASH_KEY, nickname.encode(), hashlib.sha256).hexdigest())
        for club, nickname in [("chess", "queen"), ("rowing", "stroke"), ("choir", "alto")]
    }
    assert set(rows(url, "memberships", "person_id = 1")) == expected
    assert rows(url, "memberships", "person_id = 2") == bob


@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "mysql"])
def test_a_key_holding_a_time_finds_its_rows_again(connect, request, tmp_path, kind):
    """A visit keyed by (email, time): SQLite keeps the time as the text written, without
    fractions, and the row must still be found by the key the finder read."""
    kind, url = fresh_database(
        kind,
        request,
        tmp_path,
        "visits",
        """CREATE TABLE visit (email VARCHAR(100) NOT NULL, seen TIMESTAMP NOT NULL,
            PRIMARY KEY (email, seen))""",
        """INSERT INTO visit VALUES ('ada@example.com', '2024-01-06 10:00:00'),
            ('ada@example.com', '2024-02-09 18:30:00'),
            ('bob@example.com', '2024-01-06 10:00:00')""",
    )
    store_map = StoreMap.model_validate(
        {
            "collections": {
                "visit": {"key": ["email", "seen"], "fields": {"email": {"identity": "email"}}}
            }
        }
    )
    connector = connect(kind, url, store_map, name="visits")

    result = erase_person(
        {"visits": connector}, {"email": "ada@example.com"}, store="visits", hash_key=HASH_KEY
    )

    assert result.collections["visit"].deleted == 2
    assert [row[0] for row in rows(url, "visit")] == ["bob@example.com"]
