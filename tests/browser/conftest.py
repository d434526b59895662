"""Browser tests: Debian's Chromium, driven by Playwright, against the portal's real processes.

The portal runs as `make run` starts it (gunicorn and a Celery worker on the embedded SQLite
database and filesystem broker, the seeded demo shop as its store), in a data folder of its own,
sending mail to a real SMTP server started by the test. Nothing is downloaded: Playwright's own
browser builds are never used, only `/usr/bin/chromium` from the distribution (`apt-get install
chromium`). Without it these tests skip, except in CI where they fail.
"""

from __future__ import annotations

import os
from base64 import b32decode
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.processes import celery_worker, free_port, manage, portal_env, web_server

CHROMIUM = Path("/usr/bin/chromium")
AXE = Path(__file__).parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Long enough for a page served by a busy shared machine, short enough to fail a hung test.
TIMEOUT_MS = 20_000

pytestmark = pytest.mark.slow


def _unavailable(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (required in CI)")
    pytest.skip(reason)


@pytest.fixture
def chromium():
    """A Chromium per test. Playwright's sync API keeps an event loop running while it is open,
    which Django's ORM refuses to run under, so it never outlives the test that needs it."""
    if not CHROMIUM.exists():
        _unavailable(
            "Chromium is not installed at /usr/bin/chromium: browser tests need Debian's "
            "package (apt-get install chromium)"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is missing: pip install -r requirements.lock")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def axe_source() -> str:
    """axe-core's script (npm, locked in tests/browser/axe/), which a test injects into a page."""
    if not AXE.exists():
        _unavailable(
            "axe-core is not installed: npm ci --prefix tests/browser/axe (make test does it)"
        )
    return AXE.read_text()


SEVERE = ("serious", "critical")


def severe_violations(page, axe_source: str) -> list[str]:
    # evaluate() runs outside the page's Content-Security-Policy, which forbids inline scripts.
    page.evaluate(axe_source)
    assert page.evaluate("() => typeof axe.run") == "function", "axe-core did not load"
    results = page.evaluate(
        "() => axe.run(document, {resultTypes: ['violations']}).then(r => r.violations)"
    )
    return [
        f"{violation['id']} ({violation['impact']}): "
        + "; ".join(" ".join(node["target"]) for node in violation["nodes"][:3])
        for violation in results
        if violation["impact"] in SEVERE
    ]


@dataclass
class LivePortal:
    """The running portal: its address, environment, mailbox and the seeded demo login."""

    base_url: str
    env: dict[str, str]
    inbox: object
    demo_password: str
    logs: list[Path] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def manage(self, *args: str) -> str:
        """Run a `manage.py` command against this portal's data folder; its standard output."""
        return manage(*args, env=self.env).stdout

    def log_tail(self, characters: int = 3000) -> str:
        return "\n".join(
            f"--- {log.name}\n{log.read_text()[-characters:]}" for log in self.logs if log.exists()
        )


@pytest.fixture
def live_portal_settings() -> dict[str, str]:
    """Extra environment for the portal's processes; a test module overrides this fixture to run
    the portal with a setting turned on (two-factor sign-in, for one)."""
    return {}


@pytest.fixture
def live_portal(tmp_path, smtp_server, live_portal_settings):
    host, smtp_port, inbox = smtp_server
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = portal_env(
        PORTAL_DATA_DIR=str(tmp_path / "data"),
        PORTAL_BASE_URL=base,
        EMAIL_HOST=host,
        EMAIL_PORT=str(smtp_port),
        **live_portal_settings,
    )
    manage("migrate", "--no-input", env=env)
    manage("seed_demo", env=env)
    password = (tmp_path / "data" / "demo-staff-password").read_text().strip()
    portal = LivePortal(
        base_url=base,
        env=env,
        inbox=inbox,
        demo_password=password,
        logs=[tmp_path / "web.log", tmp_path / "worker.log"],
    )
    with (
        web_server(env, tmp_path / "web.log", port),
        celery_worker(env, tmp_path / "worker.log", "--pool", "solo"),
    ):
        yield portal


DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def new_page(chromium):
    """Open a page in a fresh browser context: one per person, so their cookies never mix."""
    contexts = []

    def _open(*, locale: str = "en-GB", viewport: dict | None = None):
        context = chromium.new_context(locale=locale, viewport=viewport or DESKTOP)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield _open
    for context in contexts:
        context.close()


@pytest.fixture
def screenshot():
    """`screenshot(page, name)` saves the page to PORTAL_SCREENSHOTS/<name>.png when that variable
    names a folder (`make screenshots` sets it to docs/screenshots), and does nothing otherwise:
    the pictures in the README come from the same steps the tests check."""
    folder = os.environ.get("PORTAL_SCREENSHOTS")

    def _shoot(page, name: str) -> None:
        if not folder:
            return
        Path(folder).mkdir(parents=True, exist_ok=True)
        # Still the same picture on every run: no caret blinking, no animation half-way.
        page.screenshot(
            path=str(Path(folder) / f"{name}.png"),
            full_page=True,
            animations="disabled",
            caret="hide",
        )

    return _shoot


def totp_code(secret: str) -> str:
    """The code an authenticator app shows now for the base32 secret a set-up page displays
    (django-otp's own TOTP, so the test and the portal count time steps alike)."""
    from django_otp.oath import TOTP

    secret = secret.replace(" ", "")
    key = b32decode(secret + "=" * (-len(secret) % 8))
    return f"{TOTP(key).token():06d}"
