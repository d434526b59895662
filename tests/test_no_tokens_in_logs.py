"""Status-link and verification-link tokens never reach a log: gunicorn's access log as the
Procfile starts it, and Django's own request log (its "Not Found: <path>" lines)."""

import logging
import re

import httpx
import pytest
from django.urls import reverse

from portal.redaction import REDACTED, RedactSecretPaths, redact_path, redact_url
from tests.conftest import link_token_from
from tests.processes import ROOT, free_port, manage, portal_env, web_server

pytestmark = pytest.mark.slow


def _csrf(html: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, "the page has no CSRF token"
    return match.group(1)


def test_the_redaction_covers_every_url_that_carries_a_token():
    for name in ("request-verify-link", "request-status", "request-download"):
        path = reverse(name, args=["REF-1234", "s3cr3t-T0ken"])
        assert "s3cr3t-T0ken" not in redact_path(path + "?code=123456"), name
        assert "REF-1234" in redact_path(path), "the reference is kept so staff can follow it"
        assert "123456" not in redact_path(path + "?code=123456")
    referer = "https://portal.example/r/REF-1234/status/s3cr3t-T0ken/?x=1"
    assert redact_url(referer) == f"https://portal.example/r/REF-1234/status/{REDACTED}/"


def test_make_run_starts_gunicorn_with_the_redacting_configuration():
    web = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line[:4] == "web:")
    assert "-c python:portal.gunicorn_conf" in web


def test_the_log_filter_redacts_django_not_found_lines():
    record = logging.LogRecord(
        "django.request", logging.WARNING, __file__, 1, "%s: %s",
        ("Not Found", "/r/REF-1/status/s3cr3t-T0ken/"), None,
    )  # fmt: skip
    RedactSecretPaths().filter(record)
    assert record.getMessage() == f"Not Found: /r/REF-1/status/{REDACTED}/"


def test_gunicorn_logs_status_and_verification_visits_without_their_tokens(tmp_path, smtp_server):
    host, smtp_port, inbox = smtp_server
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = portal_env(
        PORTAL_DATA_DIR=str(tmp_path / "data"),
        PORTAL_BASE_URL=base,
        EMAIL_HOST=host,
        EMAIL_PORT=str(smtp_port),
        # The web process sends the email itself, so no worker is needed for this test.
        CELERY_TASK_ALWAYS_EAGER="true",
        LOG_LEVEL="INFO",
    )
    manage("migrate", "--no-input", env=env)
    log = tmp_path / "web.log"
    with web_server(env, log, port), httpx.Client(base_url=base, timeout=30) as browser:
        filed = browser.post(
            "/api/v1/requests/", json={"kind": "access", "identity": {"email": "ada@example.com"}}
        )
        assert filed.status_code == 201, filed.text
        reference = filed.json()["reference"]
        link_token = link_token_from(inbox.wait_for(1), reference)
        link = f"/r/{reference}/verify/{link_token}/"

        page = browser.get(link + "?utm_source=mail-secret-campaign")
        assert page.status_code == 200
        status_page = browser.post(
            link, data={"csrfmiddlewaretoken": _csrf(page.text)}, follow_redirects=True
        )
        assert status_page.status_code == 200
        status_path = status_page.url.path
        status_token = status_path.rstrip("/").rsplit("/", 1)[1]
        assert status_path == f"/r/{reference}/status/{status_token}/"
        # Leaving the status page sends it as the Referer; a wrong token is a logged 404.
        browser.get("/", headers={"Referer": f"{base}{status_path}"})
        wrong = browser.get(f"/r/{reference}/status/wrongTokenNotSecret42/")
        assert wrong.status_code == 404

    text = log.read_text()
    assert f"/r/{reference}/status/{REDACTED}/" in text, "the visits are not in the access log"
    assert f"/r/{reference}/verify/{REDACTED}/" in text
    for secret in (link_token, status_token, "wrongTokenNotSecret42", "mail-secret-campaign"):
        assert secret not in text, f"{secret!r} is in the web log"
