"""The stores pages (/staff/stores/): a DPO adds a store with discovery, reviews the drafted map as
a table, edits its YAML (a refused edit names the line, in place), checks the connection, disables
and deletes it (a refusal says why), and reads the store's history. Only DPOs may open them."""

from __future__ import annotations

import re
import sqlite3
from html import unescape as html_unescape

import pytest
from django.test import Client

from requests.models import ConnectedStore, Job
from requests.models.jobs import JobState
from requests.permissions import AUDITOR, DPO, REVIEWER, role_group
from requests.services import lifecycle, stores
from requests.services.audit import SYSTEM

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop_url(tmp_path):
    """A small shop database made here: people, their orders, and a catalogue."""
    path = tmp_path / "shop-secret-name.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT NOT NULL, full_name TEXT);
        CREATE TABLE orders (
            id INTEGER PRIMARY KEY,
            customer_id INTEGER NOT NULL REFERENCES customers(id),
            total NUMERIC
        );
        INSERT INTO customers VALUES (1, 'ada@example.com', 'Ada Lovelace');
        INSERT INTO orders VALUES (10, 1, 12.5);
        """
    )
    conn.commit()
    conn.close()
    return f"sqlite:///{path}"


@pytest.fixture
def signed_in(django_user_model):
    def _sign_in(role: str) -> Client:
        user = django_user_model.objects.create_user(
            username=f"{role}-user", password="pw", is_staff=True
        )
        user.groups.add(role_group(role))
        client = Client()
        client.force_login(user)
        return client

    return _sign_in


@pytest.fixture
def dpo(signed_in):
    return signed_in(DPO)


def _add_shop(client, url: str):
    return client.post(
        "/staff/stores/",
        {"new-name": "shop", "new-kind": "sqlite", "new-url": url, "new-discover": "on"},
    )


def _text(response) -> str:
    """The page's text without tags, spaces collapsed, for reading sentences."""
    html = response.content.decode()
    return html_unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def _map_line(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


# Adding a store with discovery, and the draft as a table


def test_a_dpo_adds_a_store_with_discovery_and_is_taken_to_its_drafted_map(dpo, shop_url):
    response = _add_shop(dpo, shop_url)
    assert response.status_code == 302
    assert response["Location"] == "/staff/stores/shop/"
    store = ConnectedStore.objects.get(name="shop")
    assert set(stores.store_map(store).collections) == {"customers", "orders"}

    page = dpo.get("/staff/stores/shop/")
    assert page.status_code == 200
    text = _text(page)
    assert "Discovery drafted its map" in text
    table = _text_of(page, "map-table")
    assert "customers" in table and "orders" in table
    assert "email : email" in table
    assert "customer_id → customers.id" in table
    assert "owner: the record belongs to it" in table
    assert "Delete" in table
    assert "People" in _text_of(page, "collection-customers")
    assert "Owned by people" in _text_of(page, "collection-orders")


def test_the_table_shows_a_mention_and_a_role_the_map_sets(dpo, shop_url):
    _add_shop(dpo, shop_url)
    edited = (
        "collections:\n"
        "  customers:\n    key: [id]\n    fields:\n      email: {identity: email}\n"
        "  orders:\n    role: reference\n    key: [id]\n    fields:\n"
        "      customer_id:\n"
        "        references: {collection: customers, field: id, kind: mention, follow: none}\n"
        "    erasure: {action: hold, basis: Tax law}\n"
    )
    assert dpo.post("/staff/stores/shop/map/", {"edit-map": edited}).status_code == 302
    table = _text_of(dpo.get("/staff/stores/shop/"), "map-table")
    assert "Reference data" in table
    assert "mention only: not the person's record" in table
    assert "not followed" in table
    assert "Keep (legal hold): Tax law" in table


def _text_of(response, element_id: str) -> str:
    html = response.content.decode()
    match = re.search(rf'<(\w+)[^>]*id="{element_id}"[^>]*>(.*?)</\1>', html, re.S)
    assert match, f"no element #{element_id}"
    return html_unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(2))))


def test_the_connection_url_is_never_shown_back_on_any_page(dpo, shop_url):
    refused = dpo.post(
        "/staff/stores/",
        {"new-name": "Not A Name", "new-kind": "sqlite", "new-url": shop_url},
    )
    assert refused.status_code == 400
    assert "shop-secret-name" not in refused.content.decode()
    assert 'type="password"' in refused.content.decode()
    _add_shop(dpo, shop_url)
    for path in ("/staff/stores/", "/staff/stores/shop/"):
        assert "shop-secret-name" not in dpo.get(path).content.decode()
    checked = dpo.post("/staff/stores/shop/check/")
    assert "shop-secret-name" not in checked.content.decode()


def test_a_store_that_cannot_be_reached_is_not_added_and_the_reason_is_shown(dpo, tmp_path):
    response = dpo.post(
        "/staff/stores/",
        {
            "new-name": "gone",
            "new-kind": "postgresql",
            "new-url": "postgresql://nobody:hunter2@127.0.0.1:1/none",
            "new-discover": "on",
        },
    )
    assert response.status_code == 400
    assert "Discovery could not read the store" in _text(response)
    assert "hunter2" not in response.content.decode()
    assert not ConnectedStore.objects.filter(name="gone").exists()


# Editing the map


def test_a_bad_map_edit_is_refused_with_its_line_shown_in_place_then_a_fixed_one_is_saved(
    dpo, shop_url
):
    _add_shop(dpo, shop_url)
    store = ConnectedStore.objects.get(name="shop")
    drafted = store.map_yaml
    bad = drafted.replace("identity: email", "identity: emial", 1)
    bad_line = _map_line(bad, "identity: emial")

    refused = dpo.post("/staff/stores/shop/map/", {"edit-map": bad})
    assert refused.status_code == 400
    problems = _text_of(refused, "map-problems")
    assert f"Line {bad_line}" in problems
    assert "unknown identity type 'emial'" in problems
    assert f"line {bad_line}:" not in problems  # said once, by the link
    assert "emial" in problems  # the offending line quoted beside the problem
    html = refused.content.decode()
    assert f'data-map-line="{bad_line}"' in html
    assert 'aria-invalid="true"' in html
    assert 'aria-describedby="id_edit-map_helptext id_edit-map_error map-problems"' in html
    assert "identity: emial" in html  # the text sent stays in the box, to be fixed
    store.refresh_from_db()
    assert store.map_yaml == drafted

    fixed = bad.replace("identity: emial", "identity: email")
    saved = dpo.post("/staff/stores/shop/map/", {"edit-map": fixed})
    assert saved.status_code == 302
    store.refresh_from_db()
    assert store.map_yaml == fixed
    assert "The map is saved." in _text(dpo.get("/staff/stores/shop/"))


def test_a_yaml_syntax_error_names_its_line(dpo, shop_url):
    _add_shop(dpo, shop_url)
    broken = "collections:\n  customers:\n    key: [id\n"
    refused = dpo.post("/staff/stores/shop/map/", {"edit-map": broken})
    assert refused.status_code == 400
    problems = _text_of(refused, "map-problems")
    assert re.search(r"Line \d+, column \d+ YAML syntax:", problems)
    assert "started on line 3" in problems


# Check, disable, delete


def test_the_check_button_shows_the_result_and_the_list_shows_it_as_the_last_check(dpo, shop_url):
    _add_shop(dpo, shop_url)
    checked = dpo.post("/staff/stores/shop/check/")
    assert checked.status_code == 200
    result = _text_of(checked, "check-result")
    assert "The check passed." in result and "ok" in result
    assert ConnectedStore.objects.get(name="shop").last_check_code == "ok"
    listing = _text_of(dpo.get("/staff/stores/"), "stores")
    assert "OK ok" in listing
    history = _text_of(dpo.get("/staff/stores/shop/"), "history")
    assert "dpo-user checked the connection: it passed (ok)." in history


def test_a_failed_check_says_why_in_the_portals_words(dpo, shop_url, tmp_path):
    _add_shop(dpo, shop_url)
    conn = sqlite3.connect(shop_url.removeprefix("sqlite:///"))
    conn.execute("DROP TABLE orders")
    conn.commit()
    conn.close()
    checked = dpo.post("/staff/stores/shop/check/")
    result = _text_of(checked, "check-result")
    assert "The check failed." in result
    assert "map_mismatch" in result
    assert "orders" in result


def test_the_list_shows_the_time_of_the_latest_failed_job(dpo, shop_url):
    _add_shop(dpo, shop_url)
    store = ConnectedStore.objects.get(name="shop")
    assert "None" in _text_of(dpo.get("/staff/stores/"), "stores")
    filed = lifecycle.request_file(kind="access", identity={"email": "ada@example.com"})
    Job.objects.create(request=filed, store=store, kind="access", state=JobState.FAILED)
    listing = _text_of(dpo.get("/staff/stores/"), "stores")
    assert "1 failed job" in listing


def test_disabling_and_enabling_a_store(dpo, shop_url):
    _add_shop(dpo, shop_url)
    response = dpo.post("/staff/stores/shop/enabled/", {"enabled": "false"})
    assert response.status_code == 302
    assert ConnectedStore.objects.get(name="shop").enabled is False
    assert "Disabled" in _text_of(dpo.get("/staff/stores/"), "stores")
    dpo.post("/staff/stores/shop/enabled/", {"enabled": "true"})
    assert ConnectedStore.objects.get(name="shop").enabled is True
    assert dpo.post("/staff/stores/shop/enabled/", {"enabled": "maybe"}).status_code == 400


def test_deleting_a_store_another_map_refers_to_is_refused_with_the_reason_then_allowed(
    dpo, shop_url
):
    _add_shop(dpo, shop_url)
    stores.store_create(
        name="crm",
        kind="manual",
        map_yaml=(
            "collections:\n  notes:\n    key: [id]\n    fields:\n      customer_id:\n"
            "        references: {store: shop, collection: customers, field: id}\n"
        ),
        actor=SYSTEM,
    )
    refused = dpo.post("/staff/stores/shop/delete/")
    assert refused.status_code == 409
    reason = _text_of(refused, "delete-error")
    assert "The store was not deleted" in reason
    assert "The maps of crm refer to this store" in reason
    assert ConnectedStore.objects.filter(name="shop").exists()

    assert dpo.post("/staff/stores/crm/delete/").status_code == 302
    deleted = dpo.post("/staff/stores/shop/delete/")
    assert deleted.status_code == 302
    assert deleted["Location"] == "/staff/stores/"
    assert not ConnectedStore.objects.filter(name="shop").exists()
    assert "Store shop deleted." in _text(dpo.get("/staff/stores/"))
    assert dpo.get("/staff/stores/shop/").status_code == 404


def test_deleting_a_store_with_work_for_an_open_request_is_refused(dpo, shop_url):
    _add_shop(dpo, shop_url)
    filed = lifecycle.request_file(kind="access", identity={"email": "ada@example.com"})
    Job.objects.create(request=filed, store=ConnectedStore.objects.get(name="shop"), kind="access")
    refused = dpo.post("/staff/stores/shop/delete/")
    assert refused.status_code == 409
    assert "1 request(s) not yet closed have work in this store" in _text_of(
        refused, "delete-error"
    )


# History


def test_the_history_tells_each_change_as_a_sentence_newest_first(dpo, shop_url):
    _add_shop(dpo, shop_url)
    drafted = ConnectedStore.objects.get(name="shop").map_yaml
    dpo.post("/staff/stores/shop/map/", {"edit-map": drafted})
    dpo.post("/staff/stores/shop/enabled/", {"enabled": "false"})
    history = _text_of(dpo.get("/staff/stores/shop/"), "history")
    added = "dpo-user added the store; discovery drafted a map of 2 collection(s)."
    saved = "dpo-user saved the map (2 collection(s))."
    disabled = "dpo-user disabled the store."
    for sentence in (added, saved, disabled):
        assert sentence in history
    assert history.index(disabled) < history.index(saved) < history.index(added)
    assert not re.search(r"store\.\w", history)  # no raw action names such as store.disabled


def test_a_stores_history_holds_only_its_own_events(dpo, shop_url):
    _add_shop(dpo, shop_url)
    stores.store_create(name="paper", kind="manual", actor=SYSTEM)
    history = _text_of(dpo.get("/staff/stores/shop/"), "history")
    assert "without a map" not in history
    assert "The portal added the store without a map." in _text_of(
        dpo.get("/staff/stores/paper/"), "history"
    )


# Who may open them


@pytest.mark.parametrize("role", [REVIEWER, AUDITOR])
def test_reviewers_and_auditors_are_refused_every_stores_page_and_action(role, signed_in, shop_url):
    stores.store_create(name="shop", kind="sqlite", url=shop_url, discover=True, actor=SYSTEM)
    client = signed_in(role)
    for path in ("/staff/stores/", "/staff/stores/shop/"):
        assert client.get(path).status_code == 403, path
    posts = {
        "/staff/stores/": {"new-name": "other", "new-kind": "manual"},
        "/staff/stores/shop/map/": {"edit-map": "collections: {}\n"},
        "/staff/stores/shop/check/": {},
        "/staff/stores/shop/enabled/": {"enabled": "false"},
        "/staff/stores/shop/delete/": {},
    }
    for path, data in posts.items():
        assert client.post(path, data).status_code == 403, path
    store = ConnectedStore.objects.get(name="shop")
    assert store.enabled and store.last_checked_at is None
    assert set(ConnectedStore.objects.values_list("name", flat=True)) == {"shop"}
    assert "collections: {}" not in store.map_yaml


def test_signed_out_visitors_are_sent_to_the_login_page(client):
    response = client.get("/staff/stores/")
    assert response.status_code == 302
    assert response["Location"].startswith("/staff/login/")


def test_only_dpos_see_the_stores_link(dpo, signed_in):
    assert 'href="/staff/stores/"' in dpo.get("/staff/").content.decode()
    assert 'href="/staff/stores/"' not in signed_in(REVIEWER).get("/staff/").content.decode()


# In French


def test_the_stores_pages_speak_french_with_french_dates(dpo, shop_url):
    _add_shop(dpo, shop_url)
    dpo.post("/staff/stores/shop/check/")
    listing = _text(dpo.get("/staff/stores/", HTTP_ACCEPT_LANGUAGE="fr"))
    assert "Sources connectées" in listing
    assert "Ajouter une source" in listing
    assert re.search(r"\b\d{1,2} \w+ \d{4} à \d{2}:\d{2}", listing)  # 29 novembre 2026 à 03:58
    page = dpo.get("/staff/stores/shop/", HTTP_ACCEPT_LANGUAGE="fr")
    assert "Ce que dit la carte" in _text(page)
    assert "Personnes" in _text_of(page, "collection-customers")
    assert (
        "dpo-user a ajouté la source ; la découverte a rédigé une carte de 2 collection(s)."
        in _text_of(page, "history")
    )


def test_discovery_asked_of_a_manual_system_is_refused_beside_the_checkbox(dpo):
    response = dpo.post(
        "/staff/stores/",
        {"new-name": "paper", "new-kind": "manual", "new-discover": "on"},
    )
    assert response.status_code == 400
    assert 'id="id_new-discover_error"' in response.content.decode()
    assert not ConnectedStore.objects.filter(name="paper").exists()


def test_a_webhook_stores_signing_secret_is_kept_and_never_shown_back(dpo, settings):
    settings.PORTAL_WEBHOOK_ALLOW_PRIVATE = True
    response = dpo.post(
        "/staff/stores/",
        {
            "new-name": "billing",
            "new-kind": "webhook",
            "new-url": "http://127.0.0.1:9/dsr",
            "new-secret": "s3cret-signing-key",
        },
    )
    assert response.status_code == 302
    assert ConnectedStore.objects.get(name="billing").secret == "s3cret-signing-key"
    page = dpo.get("/staff/stores/billing/").content.decode()
    assert "s3cret-signing-key" not in page and "127.0.0.1:9" not in page
