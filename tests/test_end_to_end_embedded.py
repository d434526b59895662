"""The portal as `make run` starts it on embedded defaults (SQLite, filesystem broker), driven over
HTTP as a person and a DPO would: file in the browser, get the email, verify, see the status."""

import re

import httpx
import pytest

from tests.conftest import code_from
from tests.processes import celery_worker, free_port, manage, portal_env, web_server

pytestmark = pytest.mark.slow


def _csrf(html: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, "the page has no CSRF token"
    return match.group(1)


def test_a_person_files_verifies_and_follows_their_request_on_the_embedded_defaults(
    tmp_path, smtp_server
):
    host, smtp_port, inbox = smtp_server
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = portal_env(
        PORTAL_DATA_DIR=str(tmp_path / "data"),
        PORTAL_BASE_URL=base,
        EMAIL_HOST=host,
        EMAIL_PORT=str(smtp_port),
    )
    manage("migrate", "--no-input", env=env)
    manage("seed_demo", env=env)
    password = (tmp_path / "data" / "demo-staff-password").read_text().strip()
    assert (tmp_path / "data" / "portal.sqlite3").exists()

    with (
        web_server(env, tmp_path / "web.log", port),
        celery_worker(env, tmp_path / "worker.log", "--pool", "solo"),
        httpx.Client(base_url=base, timeout=30) as browser,
    ):
        form = browser.get("/")
        assert form.status_code == 200
        filed = browser.post(
            "/",
            data={
                "csrfmiddlewaretoken": _csrf(form.text),
                "kind": "erasure",
                "email": "Person@Example.com",
                "phone": "",
                "name": "",
                "account_id": "",
            },
            follow_redirects=True,
        )
        assert filed.status_code == 200
        reference = re.search(r"/r/([^/]+)/filed/", str(filed.url)).group(1)

        message = inbox.wait_for(1)
        assert message["To"] == "person@example.com"
        verify_page = browser.get(f"/r/{reference}/verify/")
        status_page = browser.post(
            f"/r/{reference}/verify/",
            data={"csrfmiddlewaretoken": _csrf(verify_page.text), "code": code_from(message)},
            follow_redirects=True,
        )
        assert status_page.status_code == 200
        assert f"/r/{reference}/status/" in str(status_page.url)
        assert "reviewing your request" in status_page.text

        # The same flow works through the public API on the embedded database.
        api = browser.post(
            "/api/v1/requests/", json={"kind": "access", "identity": {"email": "api@example.com"}}
        )
        assert api.status_code == 201

        # The DPO logs in and sees the request in the queue.
        login = browser.get("/staff/login/")
        queue = browser.post(
            "/staff/login/",
            data={
                "csrfmiddlewaretoken": _csrf(login.text),
                "username": "dpo",
                "password": password,
            },
            follow_redirects=True,
        )
        assert queue.status_code == 200
        assert reference in queue.text
