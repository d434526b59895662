"""On schemas written like real applications, connected with discovery and no hand edits, access
gives exactly the person's rows and erasure touches nothing of anyone else's, checked against an
oracle that computes ownership by brute force (tests/engine/ownership_corpus.py).

For each pattern, engine and person:
- the package holds in full exactly the rows that are the person's alone (catalogue rows may be
  shown beside them), its other rows only concern the person, and no other person's identity
  value appears anywhere in it;
- after erasure, every row that was the person's alone is gone or holds none of their identity
  values; every other row is byte-identical but for references to the person's rows set to
  null, and only where the certificate says it did so;
- the verification sweep finds nothing left;
- the certificate accounts for every row of the person's that is still there (kept or masked),
  with a reason for each collection that kept one.
"""

from __future__ import annotations

import json

import pytest

from requests.engine.discovery import discover
from requests.engine.erasure import erase_person, find_remaining
from requests.engine.fides import fill_from_live, import_fides_dataset
from requests.engine.finder import json_value
from requests.engine.mapfile import check_store_map, dump_store_map, load_store_map
from requests.engine.ownership import WITHHELD, find_owned
from requests.engine.storemap import Follow, Role, StoreMap
from tests.engine.erasure_helpers import HASH_KEY, fresh_database
from tests.engine.ownership_corpus import (
    FIDES_PATTERN,
    FIDES_PEOPLE,
    ORDERS,
    ORDERS_FIDES,
    Oracle,
    cases,
    read_all,
)

CASES = cases()
FIDES_CASES = [(FIDES_PATTERN, kind, who) for kind in FIDES_PATTERN.kinds for who in FIDES_PEOPLE]


@pytest.fixture(
    params=CASES + FIDES_CASES,
    ids=[f"{p.name}-{kind}-{who}" for p, kind, who in CASES + FIDES_CASES],
)
def case(request, tmp_path, connect):
    """A pattern's schema in a fresh database, connected with the map discovery drafts (or, for
    the Fides pattern, the dataset imported and completed from the live store), untouched."""
    pattern, kind, who = request.param
    kind, url = fresh_database(kind, request, tmp_path, pattern.name, *pattern.statements(kind))
    draft = discover(connect(kind, url, StoreMap()))
    if pattern is FIDES_PATTERN:
        draft = fill_from_live(import_fides_dataset(ORDERS_FIDES), draft)
    connector = connect(kind, url, draft, name="app")
    return pattern, who, url, draft, connector


def test_a_fides_dataset_without_keys_is_keyed_from_the_live_store_and_its_catalogue_is_reference(
    tmp_path, connect, request
):
    kind, url = fresh_database("sqlite", request, tmp_path, "fides", *ORDERS)
    imported = import_fides_dataset(ORDERS_FIDES)
    assert imported.collections["orders"].key == []

    completed = fill_from_live(imported, discover(connect(kind, url, StoreMap())))

    assert completed.collections["orders"].key == ["id"]
    assert completed.collections["order_details"].key == ["id"]
    assert completed.collections["products"].effective_role == Role.REFERENCE
    assert completed.collections["customers"].effective_role == Role.PERSON
    handled = completed.collections["orders"].fields["employee_id"].references
    assert (handled.collection, handled.follow) == ("employees", Follow.NONE)
    assert check_store_map(completed, store_name="app") == []


def test_the_discovered_map_is_valid_as_it_is(case):
    _, _, _, draft, _ = case

    assert check_store_map(draft, store_name="app") == []
    assert load_store_map(dump_store_map(draft)) == draft


def test_the_package_holds_exactly_the_persons_rows_and_nothing_of_anyone_else(case):
    pattern, who, url, _, connector = case
    oracle = Oracle(pattern, read_all(url, pattern.tables))
    identity = pattern.people[who][2]
    records = []

    find_owned({"app": connector}, identity, sink=records.append)

    full = {(r.collection, r.key[0]) for r in records if WITHHELD not in r.data.values()}
    partial = {(r.collection, r.key[0]) for r in records if WITHHELD in r.data.values()}
    # Every row of the person's alone, in full; nothing else but rows that concern them (shared:
    # with the others' data withheld, where a row holds any) and catalogue rows.
    assert oracle.alone(who) <= full
    assert {row for row in full | partial if row[0] not in pattern.reference} <= (
        oracle.alone(who) | oracle.concerns(who)
    )
    assert not partial & oracle.alone(who)
    text = json.dumps([{k: json_value(v) for k, v in r.data.items()} for r in records]).lower()
    mine = pattern.people[who][:2]
    for table, columns in pattern.person_tables.items():
        for i, row in oracle.data[table].items():
            if (table, i) == mine:
                continue
            for column in columns:
                if row[column] is not None:
                    assert str(row[column]).lower() not in text, (table, column)


def test_erasure_changes_only_the_persons_rows_and_explains_what_it_kept(case):
    pattern, who, url, _, connector = case
    before = read_all(url, pattern.tables)
    oracle = Oracle(pattern, before)
    identity = pattern.people[who][2]
    alone, concerns = oracle.alone(who), oracle.concerns(who)
    own_values = [v.lower() for v in oracle.identity_values(who)]

    result = erase_person({"app": connector}, identity, store="app", hash_key=HASH_KEY)

    after = read_all(url, pattern.tables)
    for table, i in alone:
        row = after[table].get(i)
        assert row is None or not any(v in str(list(row.values())).lower() for v in own_values), (
            table,
            i,
        )
    nulled: dict[str, set] = {}
    references = oracle.references_to(who)
    for table, rows in before.items():
        for i, row in rows.items():
            if (table, i) in alone:
                continue
            assert i in after[table], ("another person's row was deleted", table, i)
            for column, value in row.items():
                now = after[table][i][column]
                if now == value:
                    continue
                # Only a reference to one of the person's own rows, set to null.
                assert now is None and (table, column) in references, (table, i, column)
                assert (_target(pattern, table, column), value) in alone, (table, i, column)
                nulled.setdefault(table, set()).add(i)
    for table in nulled:
        notes = " ".join(result.collections[table].notes)
        assert "set to null" in notes, table
    # The count of rows set to null is the database's, not the engine's own.
    assert {t: c.nullified for t, c in result.collections.items() if c.nullified} == {
        t: len(rows) for t, rows in nulled.items()
    }
    remaining = find_remaining({"app": connector}, identity)
    assert all(c["remaining"] == 0 for per in remaining.values() for c in per.values()), remaining
    for table in pattern.tables:
        still = [(t, i) for t, i in alone | concerns if t == table and i in after[table]]
        done = result.collections.get(table)
        # Every row left is counted once: kept as it was, set to null, masked or held.
        accounted = (done.kept + done.nullified + done.masked + done.held) if done else 0
        assert accounted == len(still), (table, accounted, len(still))
        if done is not None and done.kept:
            assert done.notes, table
    assert all(v not in json.dumps(result.to_json()).lower() for v in own_values)


def _refs(pattern):
    return pattern.owner + pattern.mention + pattern.parent


def _target(pattern, table, column):
    return next(t2 for t, c, t2 in _refs(pattern) if (t, c) == (table, column))
