"""The Content Security Policy on every kind of response, and pages that run under it.

A browser is not driven here; instead each page is checked for what a strict policy would block
(inline scripts, event-handler attributes, `javascript:` links, inline styles without a hash), so
that a page passing these checks shows no CSP violation of that kind in a browser."""

from __future__ import annotations

import base64
import hashlib
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings

from requests.engine import erasure as engine
from tests.access_fixtures import approve
from tests.erasure_fixtures import FakeEngine, file_erasure, shop_and_crm

pytestmark = pytest.mark.django_db

TEMPLATES = Path(settings.BASE_DIR) / "templates"
# Written into the access package's ZIP and opened from the person's disk: never served, so no
# response's policy applies to it.
NOT_SERVED = {"package/index.html"}


def policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    directives = {}
    for part in header.split(";"):
        name, *sources = part.split()
        directives[name] = sources
    return directives


def assert_strict(response) -> dict[str, list[str]]:
    directives = policy(response)
    assert directives["default-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["form-action"] == ["'self'"]
    assert directives["base-uri"] == ["'none'"]
    assert directives["object-src"] == ["'none'"]
    header = response["Content-Security-Policy"]
    assert "unsafe-inline" not in header and "unsafe-eval" not in header and "*" not in header
    return directives


class InlineCode(HTMLParser):
    """Collects what a strict policy blocks in a page."""

    def __init__(self) -> None:
        super().__init__()
        self.inline_scripts: list[str] = []
        self.handlers: list[str] = []
        self.style_attributes: list[str] = []
        self.style_blocks: list[str] = []
        self._in: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        for name, value in attrs:
            if name.startswith("on"):
                self.handlers.append(f"<{tag} {name}>")
            if name in ("href", "src", "action") and (value or "").strip().lower().startswith(
                "javascript:"
            ):
                self.handlers.append(f"<{tag} {name}=javascript:>")
            if name == "style":
                self.style_attributes.append(f"<{tag} style>")
        data_only = values.get("type", "") in ("application/json", "application/ld+json")
        if tag == "script" and not values.get("src") and not data_only:
            self._in, self._text = "script", []
        if tag == "style":
            self._in, self._text = "style", []

    def handle_data(self, data):
        if self._in:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag == self._in:
            (self.inline_scripts if tag == "script" else self.style_blocks).append(
                "".join(self._text)
            )
            self._in = None


def inline_code(response) -> InlineCode:
    parser = InlineCode()
    parser.feed(response.content.decode())
    return parser


def assert_runs_under_the_policy(response) -> None:
    found = inline_code(response)
    assert found.inline_scripts == []
    assert found.handlers == []
    assert found.style_attributes == []
    assert found.style_blocks == []


def test_public_pages_send_a_strict_policy_and_have_no_inline_code(client):
    page = client.get("/")
    assert page.status_code == 200
    assert_strict(page)
    assert_runs_under_the_policy(page)
    assert re.search(r'<link rel="stylesheet" href="/static/portal/portal\.[^"]*css"', page.text)


def test_error_pages_send_the_policy_too(client):
    missing = client.get("/no-such-page/")
    assert missing.status_code == 404
    assert_strict(missing)
    assert_runs_under_the_policy(missing)


def test_the_staff_console_sends_the_policy_and_has_no_inline_code(client, staff_user):
    login = client.get("/staff/login/")
    assert_strict(login)
    assert_runs_under_the_policy(login)
    client.force_login(staff_user)
    queue = client.get("/staff/")
    assert queue.status_code == 200
    assert_strict(queue)
    assert_runs_under_the_policy(queue)


def test_the_admin_login_and_index_load_their_scripts_from_files_only(client, django_user_model):
    login = client.get("/admin/login/")
    assert login.status_code == 200
    assert_strict(login)
    assert_runs_under_the_policy(login)
    client.force_login(django_user_model.objects.create_superuser("root", "r@example.com", "pw"))
    index = client.get("/admin/")
    assert index.status_code == 200
    assert_strict(index)
    found = inline_code(index)
    assert found.inline_scripts == [] and found.handlers == [] and found.style_blocks == []


def test_api_answers_send_the_policy_public_and_staff(public_api, staff_api):
    filed = public_api.post(
        "/api/v1/requests/", {"kind": "access", "identity": {"email": "a@example.com"}}, "json"
    )
    assert filed.status_code == 201
    assert_strict(filed)
    assert_strict(staff_api.get("/api/v1/staff/requests/"))
    assert_strict(public_api.get("/api/schema/"))
    refused = public_api.get("/api/v1/staff/requests/")
    assert refused.status_code in (401, 403)
    assert_strict(refused)


def test_the_browsable_api_runs_its_scripts_from_files_only(staff_api):
    page = staff_api.get("/api/v1/staff/requests/", HTTP_ACCEPT="text/html")
    assert page.status_code == 200 and page["Content-Type"].startswith("text/html")
    assert_strict(page)
    found = inline_code(page)
    # Its CSRF token travels in a JSON data block, which is not script; a couple of layout
    # `style` attributes in DRF's own template are ignored by the browser (cosmetic only).
    assert found.inline_scripts == [] and found.handlers == [] and found.style_blocks == []
    assert 'id="drf_csrf"' in page.text


def test_the_health_view_answers_without_the_database_and_with_the_policy(client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert len(queries) == 0
    assert_strict(response)
    assert client.post("/healthz").status_code == 405


def test_markup_a_person_types_is_shown_to_staff_as_text(client, django_user_model):
    from requests.services import lifecycle

    markup = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    data_request = lifecycle.request_file(
        kind="access", identity={"email": "ada@example.com", "name": markup}
    )
    client.force_login(django_user_model.objects.create_superuser("root", "r@example.com", "pw"))
    page = client.post(f"/staff/requests/{data_request.reference}/", {"action": "reveal"})
    assert page.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert markup not in page.text
    assert_runs_under_the_policy(page)


def test_no_served_template_holds_inline_script_handlers_or_inline_style():
    offenders = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        name = str(path.relative_to(TEMPLATES))
        if name in NOT_SERVED:
            continue
        text = path.read_text()
        if re.search(r"<script(?![^>]*\bsrc=)", text):
            offenders.append(f"{name}: inline <script>")
        if re.search(r"\son[a-z]+\s*=", text):
            offenders.append(f"{name}: event handler attribute")
        if re.search(r"\sstyle\s*=", text):
            offenders.append(f"{name}: style attribute")
        if "javascript:" in text.lower():
            offenders.append(f"{name}: javascript: URL")
        if "<style" in text and name != "erasure/certificate.html":
            offenders.append(f"{name}: <style> block")
    assert offenders == []


@pytest.fixture
def fake(monkeypatch, tmp_path, settings):
    settings.DATA_DIR = tmp_path / "data"
    stand_in = FakeEngine()
    monkeypatch.setattr(engine, "erase_person", stand_in.erase_person)
    monkeypatch.setattr(engine, "find_remaining", stand_in.find_remaining)
    return stand_in


def test_the_certificate_page_styles_itself_with_a_hash_the_policy_allows(
    fake, tmp_path, public_api, file_request, staff_api, django_capture_on_commit_callbacks
):
    shop_and_crm(tmp_path)
    fake.result("shop", customers={"deleted": 1})
    fake.result("crm", contacts={"deleted": 1})
    reference = file_erasure(public_api, file_request)
    assert approve(staff_api, django_capture_on_commit_callbacks, reference)["status"] == (
        "completed"
    )

    page = staff_api.get(f"/api/v1/staff/requests/{reference}/certificate/?format=html")
    assert page.status_code == 200
    directives = assert_strict(page)
    found = inline_code(page)
    assert found.inline_scripts == [] and found.handlers == [] and found.style_attributes == []
    [style] = found.style_blocks
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in directives["style-src"]
    assert "body {" in style
    # Other pages do not get the certificate's allowance.
    assert f"'sha256-{digest}'" not in policy(staff_api.get("/api/v1/staff/requests/"))["style-src"]
