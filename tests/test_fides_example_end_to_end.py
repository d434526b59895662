"""A dataset in the shape of Fides' own example project, imported with `stores import-fides
--store` and used untouched, runs access and erasure end to end through the HTTP API on real
PostgreSQL and MariaDB and on SQLite (issue 9, deliver 6).

The tea shop in tests/fixtures/fides_example/ (its README says who shares what) has what the
example project's database and dataset have: no foreign keys in the database, collections whose
dataset declares no primary key (one keyed by columns the dataset never lists), references with
`from` and `to` directions, old `fidesops_meta` next to `fides_meta`, identity fields whose
category is `system.*`, a catalogue whose categories are all `system.*`, service requests found
by either of two emails and reached from the employee who handled them, and a report table
owned by an account nobody files for.

The oracle below reads the raw rows with plain SQL and decides who owns what from the shop's own
rules, in plain Python; it never reads the map the import produced.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from django.core.management import call_command

from requests.engine.finder import json_value
from requests.engine.ownership import WITHHELD
from tests.access_fixtures import approve, data_json, file_and_verify, zip_of
from tests.engine.erasure_helpers import engine_for, fresh_database
from tests.erasure_fixtures import file_erasure

pytestmark = pytest.mark.django_db

FIXTURE = Path(__file__).parent / "fixtures" / "fides_example"
STORE = "teashop"

# Each person's emails (the first is the one they file with) and names.
PEOPLE = {
    "olga": (["olga.berg@example.net", "olga.b@example.org"], ["Olga Berg"]),
    "piet": (["piet.janssen@example.net"], ["Piet Janssen"]),
    "quinn": (["quinn.rao@example.net"], ["Quinn Rao"]),
    "rhea": (["rhea.stone@example.net"], ["Rhea Stone"]),
    "sami": (["sami.koh@example.net"], ["Sami Koh"]),
    "tomas": (["tomas.walkin@example.net"], []),
    "reports": (["reports@shop.example"], []),
}
ASKING = ["olga", "piet", "rhea", "tomas"]

KEYS = {
    "product": ["id"],
    "address": ["id"],
    "customer": ["id"],
    "employee": ["id"],
    "payment_card": ["id"],
    "orders": ["id"],
    "order_item": ["order_id", "item_no"],
    "visit": ["email", "last_visit"],
    "login": ["id"],
    "service_request": ["id"],
    "report": ["id"],
}
CATALOGUE = {"product"}
# (table, column, table pointed at by id): every column that refers to another row.
REFERENCES = [
    ("customer", "address_id", "address"),
    ("employee", "address_id", "address"),
    ("payment_card", "customer_id", "customer"),
    ("payment_card", "billing_address_id", "address"),
    ("orders", "customer_id", "customer"),
    ("orders", "shipping_address_id", "address"),
    ("orders", "payment_card_id", "payment_card"),
    ("order_item", "order_id", "orders"),
    ("order_item", "product_id", "product"),
    ("login", "customer_id", "customer"),
    ("service_request", "employee_id", "employee"),
]
# The shop's rules: a customer's cards, orders and logins are theirs, an order's lines are the
# order's; an address belongs to every row that points at it; a service request, a visit and a
# report belong to whoever's email they hold. An order only names the card that paid it, and a
# service request the employee who handled it.
BELONGS_TO = [
    ("payment_card", "customer_id", "customer"),
    ("orders", "customer_id", "customer"),
    ("login", "customer_id", "customer"),
    ("order_item", "order_id", "orders"),
]
POINTED_AT_BELONGS = [
    ("customer", "address_id", "address"),
    ("employee", "address_id", "address"),
    ("payment_card", "billing_address_id", "address"),
    ("orders", "shipping_address_id", "address"),
]
# What only names someone's row. The order's card column is not in the dataset: the import keeps
# it unfollowed (as Fides, which never reads it), so the order is neither the card holder's nor
# found for them, and stays as it is.
MENTIONS = [("service_request", "employee_id", "employee")]
EMAILS = {
    "customer": ["email"],
    "employee": ["email"],
    "service_request": ["email", "alt_email"],
    "visit": ["email"],
    "report": ["email"],
}

Row = tuple[str, tuple]


def statements(name: str) -> list[str]:
    text = (FIXTURE / name).read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def read_rows(url: str) -> dict[str, dict[tuple, dict[str, Any]]]:
    """table -> key -> row (column -> value as the driver gives it), with plain SQL."""
    engine = engine_for(url)
    prep = engine.dialect.identifier_preparer
    out: dict[str, dict[tuple, dict[str, Any]]] = {}
    try:
        with engine.connect() as conn:
            for table, key in KEYS.items():
                result = conn.execute(sa.text(f"SELECT * FROM {prep.quote(table)}"))
                out[table] = {
                    tuple(json_value(row[c]) for c in key): dict(row) for row in result.mappings()
                }
    finally:
        engine.dispose()
    return out


class Oracle:
    """Who owns each row, from the shop's rules above and the raw rows (knows nothing of maps)."""

    def __init__(self, data: dict[str, dict[tuple, dict[str, Any]]]) -> None:
        self.data = data
        who_by_email = {e: who for who, (emails, _) in PEOPLE.items() for e in emails}
        owners: dict[Row, set[str]] = {(t, k): set() for t, rows in data.items() for k in rows}
        for table, columns in EMAILS.items():
            for key, row in data[table].items():
                for column in columns:
                    value = (row[column] or "").lower()
                    if value in who_by_email:
                        owners[(table, key)].add(who_by_email[value])
        changed = True
        while changed:
            changed = False
            for table, column, target in BELONGS_TO:
                for key, row in data[table].items():
                    found = owners.get((target, (json_value(row[column]),)), set())
                    if not found <= owners[(table, key)]:
                        owners[(table, key)] |= found
                        changed = True
            for table, column, target in POINTED_AT_BELONGS:
                for key, row in data[table].items():
                    pointed = (target, (json_value(row[column]),))
                    if pointed in owners and not owners[(table, key)] <= owners[pointed]:
                        owners[pointed] |= owners[(table, key)]
                        changed = True
        self.owners = owners

    def alone(self, who: str) -> set[Row]:
        return {
            row
            for row, owners in self.owners.items()
            if owners == {who} and row[0] not in CATALOGUE
        }

    def concerns(self, who: str) -> set[Row]:
        """Rows not the person's alone that still concern them: shared with them, or naming
        one of their rows (a service request an employee handled)."""
        alone = self.alone(who)
        out = {row for row, owners in self.owners.items() if who in owners and row not in alone}
        for table, column, target in MENTIONS:
            for key, row in self.data[table].items():
                if (target, (json_value(row[column]),)) in alone and (table, key) not in alone:
                    out.add((table, key))
        return out - {row for row in out if row[0] in CATALOGUE}

    def others_values(self, who: str) -> list[str]:
        """Every other person's emails and names: none may reach this person's package."""
        return [
            value.lower()
            for other, (emails, names) in PEOPLE.items()
            if other != who
            for value in emails + names
        ]


def by_table(rows: set[Row]) -> dict[str, int]:
    out: dict[str, int] = {}
    for table, _ in rows:
        out[table] = out.get(table, 0) + 1
    return out


@pytest.fixture(
    params=[
        ("sqlite", "as written"),
        ("postgresql", "as written"),
        ("mysql", "as written"),
        # Fides lets a reference leave its direction out (walked either way): the same dataset
        # without a single `direction:` must give the same answers.
        ("postgresql", "undirected"),
    ],
    ids=["sqlite", "postgresql", "mysql", "postgresql-undirected"],
)
def teashop(request, staff_api, settings, tmp_path):
    """The tea shop in a fresh database, connected with discovery, then given the map
    `stores import-fides --store --apply` makes of the dataset, untouched."""
    kind, variant = request.param
    settings.DATA_DIR = tmp_path / "data"
    dataset = FIXTURE / "dataset.yml"
    if variant == "undirected":
        text = dataset.read_text()
        dataset = tmp_path / "undirected.yml"
        dataset.write_text(
            "\n".join(line for line in text.splitlines() if "direction:" not in line)
        )
    _, url = fresh_database(
        kind,
        request,
        tmp_path,
        STORE,
        *statements(f"schema_{kind}.sql"),
        *statements("data.sql"),
    )
    created = staff_api.post(
        "/api/v1/staff/stores/",
        {"name": STORE, "kind": kind, "url": url, "discover": True},
        format="json",
    )
    assert created.status_code == 201, created.content
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "stores", "import-fides", str(dataset), "--store", STORE, "--apply", stdout=out, stderr=err
    )
    assert f"applied to {STORE}" in err.getvalue()
    return url


def test_the_imported_map_is_keyed_from_the_database_and_checks_clean(teashop, staff_api):
    check = staff_api.post(f"/api/v1/staff/stores/{STORE}/check/").json()

    assert check["ok"], check
    assert check["problems"] == []
    text = staff_api.get(f"/api/v1/staff/stores/{STORE}/map/").json()["map"]
    from requests.engine.mapfile import load_store_map

    imported = load_store_map(text)
    assert imported.collections["order_item"].key == ["order_id", "item_no"]
    assert imported.collections["visit"].key == ["email", "last_visit"]
    assert imported.collections["product"].effective_role == "reference"
    assert imported.collections["order_item"].effective_role == "owned"
    handled = imported.collections["service_request"].fields["employee_id"].references
    assert handled.kind == "mention"
    assert not [note for note in imported.notes if "name its key" in note]


@pytest.mark.parametrize("who", ASKING)
def test_the_package_holds_exactly_the_persons_rows(
    who, teashop, public_api, file_request, staff_api, django_capture_on_commit_callbacks
):
    oracle = Oracle(read_rows(teashop))
    alone, concerns = oracle.alone(who), oracle.concerns(who)
    reference = file_and_verify(public_api, file_request, email=PEOPLE[who][0][0])

    preview = staff_api.get(f"/api/v1/staff/requests/{reference}/preview/").json()
    collections = preview["stores"][STORE]["collections"]
    counted = {n: c["ownership"]["alone"] for n, c in collections.items() if c.get("ownership")}
    assert {n: c for n, c in counted.items() if c} == by_table(alone)

    detail = approve(staff_api, django_capture_on_commit_callbacks, reference)

    assert detail["status"] == "completed", detail
    archive = zip_of(staff_api.get(f"/api/v1/staff/requests/{reference}/package/"))
    package = data_json(archive)["stores"].get(STORE, {})
    full, partial = set(), set()
    unnamed: dict[str, int] = {}
    for table, rows in package.items():
        for row in rows:
            key = (table, tuple(row[c] for c in KEYS[table]))
            if WITHHELD in key[1]:
                # A row that only mentions the person withholds even its key (another's row).
                unnamed[table] = unnamed.get(table, 0) + 1
                continue
            (partial if WITHHELD in row.values() else full).add(key)
            if key in alone:
                raw = oracle.data[table][key[1]]
                assert row == {c: json_value(v) for c, v in raw.items()}, key
    assert alone <= full
    assert (full | partial) - alone <= concerns | {r for r in full if r[0] in CATALOGUE}
    for table, count in unnamed.items():
        assert count <= by_table(concerns - full - partial).get(table, 0), table
    everything = b"".join(archive.read(name) for name in archive.namelist()).decode().lower()
    for value in oracle.others_values(who):
        assert value not in everything, value


@pytest.mark.parametrize("who", ASKING)
def test_erasure_changes_only_the_persons_rows_and_explains_what_it_kept(
    who, teashop, public_api, file_request, staff_api, django_capture_on_commit_callbacks
):
    before = read_rows(teashop)
    oracle = Oracle(before)
    alone, concerns = oracle.alone(who), oracle.concerns(who)
    own = [v.lower() for v in PEOPLE[who][0] + PEOPLE[who][1]]
    reference = file_erasure(public_api, file_request, email=PEOPLE[who][0][0])

    detail = approve(staff_api, django_capture_on_commit_callbacks, reference)

    assert detail["status"] == "completed", detail["attention_reason"]
    after = read_rows(teashop)
    for table, key in alone:
        row = after[table].get(key)
        assert row is None or not any(v in str(list(row.values())).lower() for v in own), key
    certificate = staff_api.get(f"/api/v1/staff/requests/{reference}/certificate/").json()
    (store,) = certificate["stores"]
    done = {c["name"]: c for c in store["collections"]}
    nulled: dict[str, set] = {}
    for table, rows in before.items():
        for key, row in rows.items():
            if (table, key) in alone:
                continue
            assert key in after[table], ("another person's row was deleted", table, key)
            for column, value in row.items():
                now = after[table][key][column]
                if now == value:
                    continue
                # Only a reference to one of the person's own rows, set to null.
                target = next(t for s, c, t in REFERENCES if (s, c) == (table, column))
                assert now is None and (target, (json_value(value),)) in alone, (table, key)
                nulled.setdefault(table, set()).add(key)
    for table in nulled:
        assert any("set to null" in r for r in done[table].get("reasons", [])), table
    # The certificate counts the rows whose reference was set to null, as the database shows.
    assert {t: c["nullified"] for t, c in done.items() if c["nullified"]} == {
        t: len(keys) for t, keys in nulled.items()
    }
    assert certificate["sweep"]["remaining"] == 0
    for table in KEYS:
        still = [r for r in alone | concerns if r[0] == table and r[1] in after[table]]
        entry = done.get(table, {})
        # Every row left is counted once: kept as it was, set to null (a shared row whose
        # reference to the person was cleared), masked or held.
        accounted = sum(entry.get(name, 0) for name in ("kept", "nullified", "masked", "held"))
        assert accounted == len(still), (table, accounted, len(still))
        if entry.get("kept"):
            assert entry.get("reasons"), table
    for value in own:
        assert value not in str(certificate).lower()
