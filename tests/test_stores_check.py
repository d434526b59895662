"""`stores check` says what a job would refuse or do differently, before anyone approves (issue
9), through the HTTP API, the management command and the console, and the preview says the same
in the same words. On a shop connected with discovery, untouched, in SQLite, PostgreSQL and
MariaDB:

- `visits` has no primary key: erasure would stop with an error once the person has visits;
- `customers.wallet_id` and `wallets.customer_id` are both NOT NULL: a loop erasure cannot order,
  so it masks the person's rows in both tables instead of deleting them;
- `audit_log` has no identity column and nothing leads to it: nothing in it is ever found;
- `customers` is large and its email is searched in lower case with no index that serves it.
"""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from requests.demo import DEMO_MAP, demo_database_build
from requests.models import ConnectedStore
from tests.access_fixtures import approve, file_and_verify
from tests.engine.erasure_helpers import execute, fresh_database

pytestmark = pytest.mark.django_db

ANN = "ann.wallet@example.org"

TABLES = [
    """CREATE TABLE customers (id INTEGER PRIMARY KEY, email VARCHAR(120) NOT NULL,
        wallet_id INTEGER NOT NULL{customer_fk})""",
    """CREATE TABLE wallets (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL,
        iban VARCHAR(40), FOREIGN KEY (customer_id) REFERENCES customers (id))""",
    """CREATE TABLE visits (customer_id INTEGER NOT NULL, page VARCHAR(100),
        FOREIGN KEY (customer_id) REFERENCES customers (id))""",
    "CREATE TABLE audit_log (id INTEGER PRIMARY KEY, what VARCHAR(100))",
]
CUSTOMER_FK = ", FOREIGN KEY (wallet_id) REFERENCES wallets (id)"
ROWS = [
    f"INSERT INTO customers VALUES (1, '{ANN}', 1), (2, 'bo.wallet@example.org', 2)",
    "INSERT INTO wallets VALUES (1, 1, 'XX00 0001'), (2, 2, 'XX00 0002')",
    "INSERT INTO visits VALUES (1, '/home'), (1, '/cart'), (2, '/home')",
    "INSERT INTO audit_log VALUES (1, 'nightly export')",
]
# Enough customers to call the table large (LARGE_TABLE_ROWS in the SQL connector's checks).
SERIES = "g(n) AS (SELECT 100 UNION ALL SELECT n + 1 FROM g WHERE n < 12100)"
MANY = {
    "sqlite": [
        f"INSERT INTO customers WITH RECURSIVE {SERIES} SELECT n, 'c' || n || '@example.org', n "
        "FROM g",
        f"INSERT INTO wallets WITH RECURSIVE {SERIES} SELECT n, n, NULL FROM g",
    ],
    "postgresql": [
        """INSERT INTO customers SELECT g, 'c' || g || '@example.org', g
            FROM generate_series(100, 12100) AS g""",
        "INSERT INTO wallets SELECT g, g, NULL FROM generate_series(100, 12100) AS g",
    ],
    "mysql": [
        "SET SESSION max_recursive_iterations = 20000",
        f"INSERT INTO customers WITH RECURSIVE {SERIES} "
        "SELECT n, CONCAT('c', n, '@example.org'), n FROM g",
        f"INSERT INTO wallets WITH RECURSIVE {SERIES} SELECT n, n, NULL FROM g",
    ],
}
SCHEMAS = {
    "sqlite": [TABLES[0].format(customer_fk=CUSTOMER_FK), *TABLES[1:], *ROWS, *MANY["sqlite"]],
    # The loop's second foreign key once both tables hold rows (it is checked when added).
    "postgresql": [
        TABLES[0].format(customer_fk=""),
        *TABLES[1:],
        *ROWS,
        *MANY["postgresql"],
        "ALTER TABLE customers ADD FOREIGN KEY (wallet_id) REFERENCES wallets (id)",
    ],
    "mysql": [
        "SET FOREIGN_KEY_CHECKS = 0",
        TABLES[0].format(customer_fk=CUSTOMER_FK),
        *TABLES[1:],
        *ROWS,
        *MANY["mysql"],
        "SET FOREIGN_KEY_CHECKS = 1",
    ],
}

LOOP = "customers.wallet_id -> wallets; wallets.customer_id -> customers"


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def shop(request, tmp_path, staff_api, settings):
    settings.DATA_DIR = tmp_path / "data"
    kind, url = fresh_database(request.param, request, tmp_path, "wallets", *SCHEMAS[request.param])
    created = staff_api.post(
        "/api/v1/staff/stores/",
        {"name": "shop", "kind": kind, "url": url, "discover": True},
        format="json",
    )
    assert created.status_code == 201, created.content
    return kind, url


def _one(texts: list[str], *words: str) -> str:
    (found,) = [t for t in texts if all(w in t for w in words)]
    return found


def test_the_check_names_the_table_without_a_key_the_loop_and_the_unreached_table(shop, staff_api):
    response = staff_api.post("/api/v1/staff/stores/shop/check/")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["ok"] is False and body["code"] == "cannot_handle", body
    no_key = _one(body["problems"], "visits")
    assert "no key" in no_key and "erasure" in no_key and "stops with an error" in no_key
    loop = _one(body["warnings"], LOOP)
    assert "masks the person's records" in loop
    # What the mask changes, table by table: wallets has nothing marked as personal data.
    assert "table customers: email" in loop
    assert "table wallets: nothing" in loop
    assert "audit_log" in _one(body["warnings"], "never find anything")
    # The store's last check is kept as it was said.
    listed = staff_api.get("/api/v1/staff/stores/shop/").json()
    assert (listed["last_check_ok"], listed["last_check_code"]) == (False, "cannot_handle")
    # Words from the map, never the connection's.
    assert "127.0.0.1" not in response.content.decode()


def test_a_large_table_searched_in_lower_case_without_an_index_is_a_warning(shop, staff_api):
    kind, url = shop
    body = staff_api.post("/api/v1/staff/stores/shop/check/").json()

    warning = _one(body["warnings"], "every search reads the whole table")
    assert warning.startswith("table customers: email is searched")
    # MariaDB's default collation ignores case: the column itself is compared, and an index on
    # it serves; elsewhere lower(email) is compared, which only PostgreSQL can index.
    assert ("no index starts with email" if kind == "mysql" else "lower(email)") in warning
    if kind == "sqlite":
        return
    index = "(lower(email))" if kind == "postgresql" else "(email)"
    execute(url, f"CREATE INDEX customers_email ON customers {index}")

    again = staff_api.post("/api/v1/staff/stores/shop/check/").json()

    assert not [w for w in again["warnings"] if "every search reads" in w], again["warnings"]


def test_the_command_says_the_same(shop, staff_api):
    api = staff_api.post("/api/v1/staff/stores/shop/check/").json()
    out = io.StringIO()

    with pytest.raises(CommandError):
        call_command("stores", "check", "shop", stdout=out)

    printed = out.getvalue()
    assert printed.startswith("FAILED (cannot_handle): ")
    for problem in api["problems"]:
        assert f"  - {problem}\n" in printed
    for warning in api["warnings"]:
        assert f"  ! {warning}\n" in printed


def test_the_console_store_page_shows_the_problems_and_warnings(shop, staff_user):
    client = Client()
    client.force_login(staff_user)

    page = client.post("/staff/stores/shop/check/", follow=True).content.decode()

    assert "visits" in page and "no key" in page
    assert LOOP.replace("->", "-&gt;") in page


def test_the_preview_says_what_erasure_will_refuse_or_mask_in_the_checks_words(
    shop, staff_api, staff_user, public_api, file_request
):
    checked = staff_api.post("/api/v1/staff/stores/shop/check/").json()
    reference = file_and_verify(public_api, file_request, kind="erasure", email=ANN)

    preview = staff_api.get(f"/api/v1/staff/requests/{reference}/preview/").json()

    said = preview["erasure_warnings"]["shop"]
    for problem in checked["problems"]:
        assert problem in said
    assert _one(checked["warnings"], LOOP) in said
    collections = preview["stores"]["shop"]["collections"]
    assert collections["visits"]["count"] == 2  # both her visits: her erasure would stop there
    assert collections["visits"]["erasure_instead"] == "refuse"
    assert collections["customers"]["erasure_instead"] == "mask"
    assert collections["wallets"]["erasure_instead"] == "mask"
    # The request page shows it beside each collection and in full under the store.
    client = Client()
    client.force_login(staff_user)
    page = client.get(f"/staff/requests/{reference}/").content.decode()
    assert "Erasure stops here with an error" in page
    assert "Masked instead: a loop of references" in page
    assert LOOP.replace("->", "-&gt;") in page


def test_approved_anyway_the_erasure_stops_saying_what_the_check_said(
    shop, staff_api, public_api, file_request, django_capture_on_commit_callbacks
):
    reference = file_and_verify(public_api, file_request, kind="erasure", email=ANN)

    detail = approve(staff_api, django_capture_on_commit_callbacks, reference)

    assert detail["status"] == "needs_attention", detail
    (job,) = [j for j in detail["jobs"] if j["store"] == "shop"]
    assert "visits" in job["error"] and "no key" in job["error"]


def test_the_admin_action_shows_the_problems_and_warnings(shop, django_user_model):
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("root", "r@example.com", "pw"))
    store = ConnectedStore.objects.get(name="shop")

    page = client.post(
        "/admin/requests/connectedstore/",
        {"action": "check_stores", "_selected_action": [store.pk]},
        follow=True,
    ).content.decode()

    assert "Shop: table visits has no key" in page  # the admin capitalises its messages
    assert LOOP.replace("->", "-&gt;") in page


def test_a_phone_column_no_region_reads_is_a_warning_until_the_portal_names_one(
    tmp_path, staff_api, settings
):
    settings.PORTAL_DEFAULT_PHONE_REGION = None
    path = tmp_path / "demo.sqlite3"
    demo_database_build(path)
    created = staff_api.post(
        "/api/v1/staff/stores/",
        {"name": "demo", "kind": "sqlite", "url": f"sqlite:///{path}", "map": DEMO_MAP},
        format="json",
    )
    assert created.status_code == 201, created.content

    before = staff_api.post("/api/v1/staff/stores/demo/check/").json()
    settings.PORTAL_DEFAULT_PHONE_REGION = "GB"
    after = staff_api.post("/api/v1/staff/stores/demo/check/").json()

    warning = _one(before["warnings"], "PORTAL_DEFAULT_PHONE_REGION")
    assert warning.startswith("customers.phone: ") and "this table" in warning
    assert before["ok"] and after["ok"]
    assert not [w for w in after["warnings"] if "PORTAL_DEFAULT_PHONE_REGION" in w]
