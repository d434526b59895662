"""Everything the portal keeps under PORTAL_DATA_DIR is private to its user: files 0600, folders
0700. Checked on a fresh data folder after `migrate`, the demo seed, and a whole access request
run by a real worker on the embedded defaults (SQLite, filesystem broker) up to its package."""

import os
import re
import stat
import time

import httpx
import pytest

from requests.demo import CUSTOMERS
from tests.processes import celery_worker, free_port, manage, portal_env, web_server

pytestmark = pytest.mark.slow


def _too_open(root) -> list[str]:
    found = []
    for folder, folders, files in os.walk(root):
        for name in [folder, *(os.path.join(folder, item) for item in folders + files)]:
            mode = os.lstat(name).st_mode
            if stat.S_ISLNK(mode):
                continue
            expected = 0o700 if stat.S_ISDIR(mode) else 0o600
            if stat.S_IMODE(mode) != expected:
                found.append(f"{oct(stat.S_IMODE(mode))} {os.path.relpath(name, root)}")
    return sorted(set(found))


def _poll(check, what: str, timeout: float = 90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.25)  # polling the live processes
    raise AssertionError(f"timed out waiting for {what}")


def test_data_files_are_0600_and_folders_0700_from_migrate_to_package(tmp_path):
    data = tmp_path / "data"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = portal_env(PORTAL_DATA_DIR=str(data), PORTAL_BASE_URL=base)
    env.pop("EMAIL_HOST", None)
    manage("migrate", "--no-input", env=env)
    manage("seed_demo", env=env)
    key = re.search(r"Generated token (\S+)", manage("drf_create_token", "dpo", env=env).stdout)[1]
    assert (data / "portal.sqlite3").exists() and (data / "secret_key").exists()
    assert _too_open(data) == []

    email = CUSTOMERS[0][1]
    staff = {"Authorization": f"Token {key}"}
    with (
        web_server(env, tmp_path / "web.log", port),
        celery_worker(env, tmp_path / "worker.log", "--pool", "solo"),
        httpx.Client(base_url=base, timeout=30) as client,
    ):
        filed = client.post(
            "/api/v1/requests/", json={"kind": "access", "identity": {"email": email}}
        )
        assert filed.status_code == 201, filed.text
        reference = filed.json()["reference"]
        password = (data / "demo-staff-password").read_text().strip()
        login = client.get("/staff/login/")
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text)[1]
        client.post(
            "/staff/login/",
            data={"csrfmiddlewaretoken": csrf, "username": "dpo", "password": password},
        )

        def code():
            page = client.get("/staff/mail/").text
            match = re.search(r"<pre[^>]*>.*?\b(\d{6})\b", page, re.S)
            return match and match[1]

        verified = client.post(
            f"/api/v1/requests/{reference}/verify/", json={"code": _poll(code, "the email")}
        )
        assert verified.status_code == 200, verified.text
        approved = client.post(f"/api/v1/staff/requests/{reference}/approve/", headers=staff)
        assert approved.status_code == 200, approved.text

        def completed():
            detail = client.get(f"/api/v1/staff/requests/{reference}/", headers=staff).json()
            return detail["status"] in {"completed", "needs_attention"} and detail["status"]

        assert _poll(completed, "the package") == "completed"

    packages = list((data / "packages").rglob("*.zip"))
    assert packages, "no package was written"
    assert _too_open(data) == []


def test_an_existing_open_data_folder_is_closed_when_the_portal_starts(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o755)
    manage("check", env=portal_env(PORTAL_DATA_DIR=str(data)))
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert _too_open(data) == []
