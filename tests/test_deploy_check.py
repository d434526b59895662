"""Production settings: an https PORTAL_BASE_URL, a long SECRET_KEY and DEBUG off make
`manage.py check --deploy` clean, and turn on HSTS, secure cookies, the https redirect and the
proxy's scheme header. Each check runs the portal's own settings in a fresh process, with only
the environment a deployment would set."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys

import pytest

from tests.processes import ROOT

# What the settings of a fresh process see, and nothing from the test run.
KEPT = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")


def environment(tmp_path, **settings: str) -> dict[str, str]:
    env = {key: os.environ[key] for key in KEPT if key in os.environ}
    env.update(
        DJANGO_SETTINGS_MODULE="portal.settings",
        PORTAL_DATA_DIR=str(tmp_path / "data"),
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.update(settings)
    return env


def production(tmp_path, **overrides: str) -> dict[str, str]:
    settings = {
        "PORTAL_BASE_URL": "https://privacy.example.org",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "DEBUG": "false",
    }
    settings.update(overrides)
    return environment(tmp_path, **settings)


def check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


PROBE = """
import json, django
django.setup()
from django.conf import settings
from django.test import Client
client = Client()
plain = client.get("/staff/login/")
proxied = client.get("/healthz", HTTP_X_FORWARDED_PROTO="https")
probe = client.get("/healthz")
print(json.dumps({
    "hsts_seconds": settings.SECURE_HSTS_SECONDS,
    "hsts_subdomains": settings.SECURE_HSTS_INCLUDE_SUBDOMAINS,
    "ssl_redirect": settings.SECURE_SSL_REDIRECT,
    "proxy_header": settings.SECURE_PROXY_SSL_HEADER,
    "session_secure": settings.SESSION_COOKIE_SECURE,
    "csrf_secure": settings.CSRF_COOKIE_SECURE,
    "allowed_hosts": settings.ALLOWED_HOSTS,
    "plain": [plain.status_code, plain.get("Location")],
    "proxied": [proxied.status_code, proxied.get("Strict-Transport-Security")],
    "probe": [probe.status_code, probe.get("Strict-Transport-Security")],
}))
"""


def probe(env: dict[str, str]) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_check_deploy_is_clean_with_the_production_settings(tmp_path):
    done = check_deploy(production(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout
    assert "WARNING" not in done.stderr


@pytest.mark.parametrize(
    ("change", "warning"),
    [
        ({"DEBUG": "true"}, "security.W018"),
        ({"SECRET_KEY": "short"}, "security.W009"),
        ({"PORTAL_BASE_URL": "http://privacy.example.org"}, "security.W004"),
        ({"PORTAL_SSL_REDIRECT": "false"}, "security.W008"),
    ],
)
def test_check_deploy_fails_when_a_production_setting_is_missing(tmp_path, change, warning):
    done = check_deploy(production(tmp_path, **change))
    assert done.returncode != 0
    assert warning in done.stderr


def test_https_turns_on_hsts_secure_cookies_the_redirect_and_the_proxy_header(tmp_path):
    seen = probe(production(tmp_path))
    assert seen["hsts_seconds"] == 31536000 and seen["hsts_subdomains"] is True
    assert seen["ssl_redirect"] is True
    assert seen["proxy_header"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert seen["session_secure"] is True and seen["csrf_secure"] is True
    assert "privacy.example.org" in seen["allowed_hosts"]
    # Plain http is sent to https; behind the proxy the request counts as secure and gets HSTS.
    assert seen["plain"] == [301, "https://testserver/staff/login/"]
    assert seen["proxied"] == [200, "max-age=31536000; includeSubDomains"]
    # The load balancer's plain-http health probe is answered, not redirected.
    assert seen["probe"] == [200, None]


def test_the_hsts_lifetime_and_the_proxy_header_follow_their_settings(tmp_path):
    seen = probe(
        production(
            tmp_path,
            PORTAL_HSTS_SECONDS="600",
            PORTAL_HSTS_INCLUDE_SUBDOMAINS="false",
            PORTAL_PROXY_SSL_HEADER="none",
            PORTAL_SSL_REDIRECT="false",
        )
    )
    assert seen["hsts_seconds"] == 600 and seen["hsts_subdomains"] is False
    assert seen["proxy_header"] is None and seen["ssl_redirect"] is False
    # Without a trusted proxy header a client cannot claim https with a header of its own.
    assert seen["proxied"] == [200, None]
    assert seen["plain"][0] == 200


def test_plain_http_by_default_sets_no_hsts_and_no_redirect(tmp_path):
    seen = probe(environment(tmp_path))
    assert seen["hsts_seconds"] == 0 and seen["ssl_redirect"] is False
    assert seen["proxy_header"] is None
    assert seen["session_secure"] is False
    assert seen["plain"][0] == 200 and seen["proxied"] == [200, None]


def test_a_base_url_that_is_not_http_fails_loudly(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=environment(tmp_path, PORTAL_BASE_URL="privacy.example.org"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "PORTAL_BASE_URL must be an http:// or https:// address" in done.stderr
