"""Stores cannot be turned against the portal: the guards are the portal's own, maps are bounded,
stores can be disabled and deleted, one broken store never breaks a preview, and what a check
says names no host, port, path or credentials."""

import os
import time
from urllib.parse import urlsplit

import pytest

from requests.connectors.files import RootNotAllowed
from requests.demo import DEMO_MAP, demo_database_build
from requests.models import AuditEvent, ConnectedStore, Job
from requests.services import jobs, lifecycle, store_health, store_lifecycle, stores
from requests.services.audit import SYSTEM
from requests.states import Status
from tests.processes import free_port
from tests.servers import MARIADB_URL, POSTGRES_URL, require

pytestmark = pytest.mark.django_db

API = "/api/v1/staff/stores/"

FILES_MAP = """\
collections:
  accounts:
    location: "{account_id}"
    key: [path]
    fields:
      account_id: {identity: account_id}
"""

SESSIONS_MAP = """\
collections:
  sessions:
    location: "session:{email}:*"
    key: [key]
    fields:
      email: {identity: email}
"""


def _create(staff_api, **body):
    return staff_api.post(API, body, format="json")


def _error_field(response, field):
    """The error names `field`, in the API's error shape (old or new)."""
    body = response.json()
    return field in body or (body.get("error") or {}).get("field") == field


@pytest.fixture
def allowed(tmp_path, settings):
    """The only folder files stores may live in."""
    folder = tmp_path / "allowed"
    folder.mkdir()
    settings.PORTAL_FILES_ROOTS = [str(folder)]
    return folder


@pytest.fixture
def demo_shop(tmp_path):
    path = tmp_path / "shop.sqlite3"
    demo_database_build(path)
    return stores.store_create(
        name="shop", kind="sqlite", url=f"sqlite:///{path}", map_yaml=DEMO_MAP, actor=SYSTEM
    )


def _verified(email="ada@demo.example", kind="access"):
    request = lifecycle.request_file(kind=kind, identity={"email": email})
    return lifecycle.request_mark_verified(request=request, method="code")


# --- webhooks: the private-address guard is the portal's alone ---------------------------------


@pytest.mark.parametrize("private_allowed", [False, True])
def test_a_store_asking_to_allow_private_addresses_is_refused_naming_the_options_field(
    staff_api, settings, private_allowed
):
    settings.PORTAL_WEBHOOK_ALLOW_PRIVATE = private_allowed
    response = _create(
        staff_api,
        name="helpdesk",
        kind="webhook",
        url="https://helpdesk.example/hook",
        secret="s",
        options={"allow_private": True},
    )
    assert response.status_code == 400, response.content
    assert _error_field(response, "options")
    assert "allow_private" in response.content.decode()
    assert not ConnectedStore.objects.exists()


def test_a_webhook_store_on_loopback_is_refused_unless_the_portal_allows_private_webhooks(
    staff_api, settings
):
    url = f"http://127.0.0.1:{free_port()}/hook"
    settings.PORTAL_WEBHOOK_ALLOW_PRIVATE = False
    refused = _create(staff_api, name="helpdesk", kind="webhook", url=url, secret="s")
    settings.PORTAL_WEBHOOK_ALLOW_PRIVATE = True
    accepted = _create(staff_api, name="helpdesk", kind="webhook", url=url, secret="s")

    assert refused.status_code == 400, refused.content
    assert _error_field(refused, "url")
    assert "127.0.0.1" not in refused.content.decode()
    assert accepted.status_code == 201, accepted.content


def test_an_allow_private_option_saved_before_is_ignored_by_check_and_search(settings):
    settings.PORTAL_WEBHOOK_ALLOW_PRIVATE = False
    store = ConnectedStore.objects.create(
        name="helpdesk",
        kind="webhook",
        url=f"http://127.0.0.1:{free_port()}/hook",
        secret="s",
        options={"allow_private": True},
    )

    check = store_health.store_check(store=store)
    with stores.store_connector(store) as connector:
        assert connector.allow_private is False

    assert (check.ok, check.code) == (False, "not_allowed")


# --- files stores: only inside PORTAL_FILES_ROOTS -----------------------------------------------


def _outside_urls(allowed, tmp_path):
    link = allowed / "etc-link"
    link.symlink_to("/etc")
    return {
        "the file system root": "file:///",
        "/etc": "file:///etc",
        "dot-dot out of the allowed folder": "file://" + str(allowed) + "/../../../../../etc",
        "a link inside pointing outside": link.as_uri(),
        "a sibling of the allowed folder": (tmp_path / "allowed-not").as_uri(),
    }


def test_files_stores_outside_the_allowed_roots_are_refused_without_echoing_the_path(
    staff_api, allowed, tmp_path
):
    for label, url in _outside_urls(allowed, tmp_path).items():
        response = _create(staff_api, name="uploads", kind="files", url=url, map=FILES_MAP)
        text = response.content.decode()
        assert response.status_code == 400, (label, text)
        assert _error_field(response, "url"), label
        assert "/etc" not in text and str(tmp_path) not in text and "etc-link" not in text
    inside = allowed / "uploads"
    inside.mkdir()
    ok = _create(staff_api, name="uploads", kind="files", url=inside.as_uri(), map=FILES_MAP)
    assert ok.status_code == 201, ok.content
    assert not ConnectedStore.objects.exclude(name="uploads").exists()


def test_with_no_allowed_roots_no_files_store_can_be_made(staff_api, settings, tmp_path):
    settings.PORTAL_FILES_ROOTS = []
    response = _create(
        staff_api, name="uploads", kind="files", url=tmp_path.as_uri(), map=FILES_MAP
    )
    assert response.status_code == 400
    assert _error_field(response, "url")


def test_the_account_id_passwd_never_reaches_etc_passwd(allowed, tmp_path):
    # A store saved around the API (an old row, the admin) with its root at /etc, and one whose
    # root is a link swapped to /etc after it was made: both are refused on every use.
    at_etc = ConnectedStore.objects.create(
        name="etc", kind="files", url="file:///etc", map_yaml=FILES_MAP
    )
    swapped_root = allowed / "uploads"
    swapped_root.mkdir()
    swapped = stores.store_create(
        name="swapped", kind="files", url=swapped_root.as_uri(), map_yaml=FILES_MAP, actor=SYSTEM
    )
    swapped_root.rmdir()
    swapped_root.symlink_to("/etc")
    # Inside an allowed root, a file named passwd that is a link to /etc/passwd is never a file.
    linked_root = allowed / "linked"
    linked_root.mkdir()
    (linked_root / "passwd").symlink_to("/etc/passwd")
    linked = stores.store_create(
        name="linked", kind="files", url=linked_root.as_uri(), map_yaml=FILES_MAP, actor=SYSTEM
    )

    for store in (at_etc, swapped):
        with stores.store_connector(store) as connector:
            accounts = connector.store_map.collections["accounts"]
            with pytest.raises(RootNotAllowed):
                list(connector.find(accounts, "account_id", ["passwd"]))
            with pytest.raises(RootNotAllowed):
                connector.open_file(accounts, "passwd")
            with pytest.raises(RootNotAllowed):
                connector.erase(accounts, ["passwd"])
        assert store_health.store_check(store=store).code == "not_allowed"
    with stores.store_connector(linked) as connector:
        accounts = connector.store_map.collections["accounts"]
        assert list(connector.find(accounts, "account_id", ["passwd"])) == []
    assert os.path.exists("/etc/passwd")


# --- maps: no aliases, bounded size and depth -------------------------------------------------

BILLION_LAUGHS = "a: &a ['lol','lol','lol','lol','lol','lol','lol','lol','lol']\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(9)
)


def _map_of_size(size: int) -> str:
    entry = "  c{0}:\n    key: [id]\n    fields:\n      email: {{identity: email}}\n"
    out, i = ["collections:\n"], 0
    while sum(map(len, out)) < size:
        out.append(entry.format(i))
        i += 1
    return "".join(out)


def test_the_billion_laughs_map_is_refused_at_once_naming_the_line(staff_api, redis_server_url):
    _create(staff_api, name="sessions", kind="redis", url=redis_server_url, map=SESSIONS_MAP)
    started = time.monotonic()
    response = staff_api.put(f"{API}sessions/map/", {"map": BILLION_LAUGHS}, format="json")
    elapsed = time.monotonic() - started

    assert response.status_code == 400, response.content
    assert "line 1" in response.content.decode()
    assert "aliases" in response.content.decode()
    assert elapsed < 5  # parsed it would take minutes
    assert ConnectedStore.objects.get(name="sessions").map_yaml == SESSIONS_MAP


def test_a_map_over_the_limit_is_refused_with_413_naming_the_limit(
    staff_api, redis_server_url, settings
):
    settings.PORTAL_MAP_MAX_BYTES = 100_000
    _create(staff_api, name="sessions", kind="redis", url=redis_server_url, map=SESSIONS_MAP)
    response = staff_api.put(f"{API}sessions/map/", {"map": _map_of_size(150_000)}, format="json")

    assert response.status_code == 413, response.content
    assert "100000 bytes" in response.content.decode()
    assert "PORTAL_MAP_MAX_BYTES" in response.content.decode()


def test_a_3_mb_map_gets_a_clear_4xx_not_a_500(staff_api, redis_server_url):
    response = _create(
        staff_api, name="sessions", kind="redis", url=redis_server_url, map=_map_of_size(3_000_000)
    )
    assert response.status_code in (400, 413), response.status_code
    assert not ConnectedStore.objects.exists()


def test_a_map_nested_too_deep_is_refused_naming_the_line(staff_api, redis_server_url):
    deep = "collections:\n  x: " + "[" * 200 + "]" * 200 + "\n"
    response = _create(staff_api, name="sessions", kind="redis", url=redis_server_url, map=deep)
    assert response.status_code == 400, response.content
    assert "line 2" in response.content.decode()


# --- disabling and deleting -------------------------------------------------------------------


def test_a_disabled_store_is_not_previewed_nor_given_jobs_and_both_changes_are_audited(
    staff_api, demo_shop, redis_server_url
):
    stores.store_create(
        name="sessions", kind="redis", url=redis_server_url, map_yaml=SESSIONS_MAP, actor=SYSTEM
    )
    off = staff_api.patch(f"{API}sessions/", {"enabled": False}, format="json")
    request = _verified()
    preview = staff_api.get(f"/api/v1/staff/requests/{request.reference}/preview/").json()
    created = jobs.jobs_start(request=request)

    assert off.status_code == 200 and off.json()["enabled"] is False
    assert "sessions" not in preview["stores"] and "shop" in preview["stores"]
    assert [job.store.name for job in created] == ["shop"]
    on = staff_api.patch(f"{API}sessions/", {"enabled": True}, format="json")
    assert on.json()["enabled"] is True
    events = AuditEvent.objects.filter(action__in=["store.disabled", "store.enabled"])
    assert [(e.action, e.actor, e.details["store"]) for e in events.order_by("pk")] == [
        ("store.disabled", "staff:dpo", "sessions"),
        ("store.enabled", "staff:dpo", "sessions"),
    ]


def test_a_store_deleted_while_it_is_being_disabled_is_not_found_not_a_server_error(
    staff_api, demo_shop
):
    # Two staff members at once: one reads the store, the other deletes it, then the first
    # disables or edits it (found by schemathesis against gunicorn's several workers).
    store = ConnectedStore.objects.get(name="shop")
    assert staff_api.delete(f"{API}shop/").status_code == 204

    from requests.services.errors import NotFound

    with pytest.raises(NotFound):
        store_lifecycle.store_set_enabled(store=store, enabled=False, actor=SYSTEM)
    with pytest.raises(NotFound):
        stores.store_update_map(store=store, map_yaml=DEMO_MAP, actor=SYSTEM)
    assert not AuditEvent.objects.filter(action="store.disabled").exists()


def test_enabling_needs_a_boolean(staff_api, demo_shop):
    response = staff_api.patch(f"{API}shop/", {"enabled": "perhaps"}, format="json")
    assert response.status_code == 400
    assert _error_field(response, "enabled")


def test_a_store_no_request_used_is_deleted_and_audited(staff_api, demo_shop):
    response = staff_api.delete(f"{API}shop/")

    assert response.status_code == 204, response.content
    assert not ConnectedStore.objects.exists()
    event = AuditEvent.objects.get(action="store.deleted")
    assert (event.actor, event.details["store"]) == ("staff:dpo", "shop")
    assert staff_api.delete(f"{API}shop/").status_code == 404


def test_a_store_with_jobs_of_an_open_request_is_not_deleted_and_after_it_closes_it_is_retired(
    staff_api, demo_shop
):
    request = _verified()
    Job.objects.create(request=request, store=demo_shop, kind=request.kind)
    refused = staff_api.delete(f"{API}shop/")
    assert refused.status_code == 409, refused.content
    assert ConnectedStore.objects.get(name="shop").deleted_at is None

    type(request).objects.filter(pk=request.pk).update(status=Status.COMPLETED)
    deleted = staff_api.delete(f"{API}shop/")

    assert deleted.status_code == 204, deleted.content
    kept = ConnectedStore.objects.get(name="shop")  # the job's record still names it
    assert kept.deleted_at is not None and not kept.enabled
    assert (kept.url, kept.secret, kept.options) == ("", "", {})
    assert staff_api.get(f"{API}shop/").status_code == 404
    assert [s["name"] for s in staff_api.get(API).json()] == []
    again = _create(staff_api, name="shop", kind="sqlite", url="sqlite:////nowhere.db")
    assert again.status_code == 400 and _error_field(again, "name")


def test_a_store_another_map_refers_to_is_not_deleted(staff_api, demo_shop, redis_server_url):
    referring = SESSIONS_MAP + (
        "      customer_id: {references: {store: shop, collection: customers, field: id}}\n"
    )
    stores.store_create(
        name="sessions", kind="redis", url=redis_server_url, map_yaml=referring, actor=SYSTEM
    )
    response = staff_api.delete(f"{API}shop/")
    assert response.status_code == 409
    assert "sessions" in response.content.decode()
    assert ConnectedStore.objects.filter(name="shop").exists()


# --- a store that cannot be opened is reported, not fatal ---------------------------------------


def test_stores_that_cannot_be_opened_are_named_in_the_preview_and_the_others_still_answer(
    staff_api, demo_shop, settings, allowed
):
    ConnectedStore.objects.create(
        name="bad-url", kind="redis", url="redis://cache-host-7:port/0", map_yaml=SESSIONS_MAP
    )
    ConnectedStore.objects.create(
        name="bad-map", kind="redis", url="redis://127.0.0.1:1/0", map_yaml="collections: [1"
    )
    ConnectedStore.objects.create(
        name="bad-driver",
        kind="postgresql",
        url="postgresql+nodriver://probe-user@db-host-9/probe_db",
        map_yaml="",
    )
    ConnectedStore.objects.create(
        name="outside", kind="files", url="file:///etc", map_yaml=FILES_MAP
    )
    ConnectedStore.objects.create(
        name="down", kind="redis", url=f"redis://127.0.0.1:{free_port()}/0", map_yaml=SESSIONS_MAP
    )
    request = _verified()
    response = staff_api.get(f"/api/v1/staff/requests/{request.reference}/preview/")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["stores"]["shop"]["collections"]["customers"]["count"] == 1
    for name in ("bad-url", "bad-map", "outside", "down"):
        assert name in body["errors"], name
        assert body["stores"][name]["error"] == body["errors"][name]
    assert body["complete"] is False
    text = response.content.decode()
    for hidden in ("cache-host-7", "db-host-9", "probe-user", "probe_db", "/etc", "127.0.0.1"):
        assert hidden not in text


# --- check messages name no host, port, path or credentials -------------------------------------


def _check(staff_api, *, name, kind, url, map_yaml=""):
    ConnectedStore.objects.create(name=name, kind=kind, url=url, map_yaml=map_yaml)
    response = staff_api.post(f"{API}{name}/check/")
    assert response.status_code == 200, response.content
    listing = staff_api.get(API).content.decode()
    return response.json(), response.content.decode() + listing


def _secrets_of(url):
    parts = urlsplit(url)
    found = [parts.hostname, str(parts.port or ""), parts.username, parts.password]
    found += parts.path.split("/")
    return [s for s in found if s and len(s) > 1]  # a Redis database "0" is in every timestamp


def test_a_postgresql_server_that_is_down_is_reported_without_its_address(staff_api):
    require("PostgreSQL", POSTGRES_URL)
    url = f"postgresql://probe_user:probe-pw-71@127.0.0.1:{free_port()}/probe_database"
    body, text = _check(staff_api, name="pg", kind="postgresql", url=url)

    assert (body["ok"], body["code"]) == (False, "unavailable")
    assert any("connection refused" in p for p in body["problems"]), body
    for secret in _secrets_of(url):
        assert secret not in text, secret


def test_wrong_credentials_are_reported_without_the_user_host_or_database(staff_api):
    server = urlsplit(require("MariaDB", MARIADB_URL))
    url = f"mysql://probe_user_x:probe-pw-72@{server.hostname}:{server.port}/probe_database"
    body, text = _check(staff_api, name="crm", kind="mysql", url=url)

    assert (body["ok"], body["code"]) == (False, "unavailable")
    assert body["message"]
    for secret in _secrets_of(url):
        assert secret not in text, secret


def test_a_missing_sqlite_file_is_reported_without_its_path(staff_api, tmp_path):
    path = tmp_path / "hidden-folder-44" / "secret-file-45.sqlite3"
    body, text = _check(staff_api, name="lite", kind="sqlite", url=f"sqlite:///{path}")

    assert (body["ok"], body["code"]) == (False, "unavailable")
    for secret in ("hidden-folder-44", "secret-file-45", str(tmp_path)):
        assert secret not in text, secret


@pytest.mark.parametrize(
    ("url", "code", "hidden"),
    [
        ("redis://probe-host-46:port/0", "invalid_url", ["probe-host-46"]),
        ("redis://[::1/0", "invalid_url", ["::1"]),
        ("redis://:probe-pw-47@127.0.0.1:{port}/0", "unavailable", ["probe-pw-47", "127.0.0.1"]),
    ],
)
def test_a_bad_or_unreachable_redis_url_is_reported_without_its_parts(staff_api, url, code, hidden):
    port = str(free_port())
    url = url.format(port=port)
    body, text = _check(staff_api, name="cache", kind="redis", url=url, map_yaml=SESSIONS_MAP)

    assert (body["ok"], body["code"]) == (False, code)
    for secret in [*hidden, *([port] if code == "unavailable" else [])]:
        assert secret not in text, secret


def test_a_store_that_answers_reports_ok_with_a_message_naming_no_address(
    staff_api, redis_server_url
):
    body, text = _check(
        staff_api, name="cache", kind="redis", url=redis_server_url, map_yaml=SESSIONS_MAP
    )
    assert (body["ok"], body["code"]) == (True, "ok")
    for secret in _secrets_of(redis_server_url):
        assert secret not in text, secret


# --- malformed URLs with discovery --------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "url"),
    [
        ("redis", "redis://probe-host-48:port/0"),
        ("webhook", "http://[::1/hook"),
        ("postgresql", "postgresql://u:probe-pw-49@h:port/db"),
        ("mysql", "not a url at all"),
        ("files", "file://remote-host/share"),
    ],
)
def test_a_malformed_url_with_discovery_is_a_400_naming_url(staff_api, kind, url):
    response = _create(staff_api, name="new", kind=kind, url=url, secret="s", discover=True)

    assert response.status_code == 400, response.content
    assert _error_field(response, "url")
    assert "probe-pw-49" not in response.content.decode()
    assert "probe-host-48" not in response.content.decode()
    assert not ConnectedStore.objects.exists()


def test_the_stores_command_disables_enables_and_deletes_a_store_with_audit(demo_shop):
    from django.core.management import call_command

    call_command("stores", "disable", "shop")
    assert ConnectedStore.objects.get(name="shop").enabled is False
    call_command("stores", "enable", "shop")
    assert ConnectedStore.objects.get(name="shop").enabled is True
    call_command("stores", "delete", "shop")

    assert not ConnectedStore.objects.exists()
    actions = list(AuditEvent.objects.order_by("pk").values_list("action", "actor"))
    assert actions[-3:] == [
        ("store.disabled", SYSTEM),
        ("store.enabled", SYSTEM),
        ("store.deleted", SYSTEM),
    ]


def _files_roots_setting(tmp_path, value):
    import subprocess
    import sys

    from tests.processes import ROOT, portal_env

    env = portal_env(PORTAL_DATA_DIR=str(tmp_path / "data"))
    env.pop("PORTAL_FILES_ROOTS", None)
    if value is not None:
        env["PORTAL_FILES_ROOTS"] = value
    code = "from django.conf import settings; print(repr(settings.PORTAL_FILES_ROOTS))"
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.django_db(False)
def test_files_roots_default_to_the_data_folders_files_and_none_allows_none(tmp_path):
    default = _files_roots_setting(tmp_path, None)
    none = _files_roots_setting(tmp_path, "none")
    listed = _files_roots_setting(tmp_path, "/srv/uploads, /mnt/scans")

    assert default.stdout.strip() == repr([str((tmp_path / "data" / "files").resolve())])
    assert none.stdout.strip() == "[]"
    assert listed.stdout.strip() == repr(["/srv/uploads", "/mnt/scans"])


@pytest.mark.django_db(False)
def test_a_relative_files_root_stops_the_portal_naming_the_setting(tmp_path):
    result = _files_roots_setting(tmp_path, "uploads")
    assert result.returncode != 0
    assert "PORTAL_FILES_ROOTS must list absolute folders" in result.stderr


def test_disabling_a_store_another_map_refers_to_leaves_the_preview_working(
    staff_api, demo_shop, redis_server_url
):
    referring = SESSIONS_MAP + (
        "      customer_id: {references: {store: shop, collection: customers, field: id}}\n"
    )
    stores.store_create(
        name="sessions", kind="redis", url=redis_server_url, map_yaml=referring, actor=SYSTEM
    )
    assert staff_api.patch(f"{API}shop/", {"enabled": False}, format="json").status_code == 200
    request = _verified()
    response = staff_api.get(f"/api/v1/staff/requests/{request.reference}/preview/")

    assert response.status_code == 200, response.content
    assert "shop" not in response.json()["stores"]
    assert "sessions" in response.json()["stores"]
