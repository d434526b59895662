"""With no EMAIL_HOST the demo keeps its mail for staff on the console's Mail page, decoded, and
never writes messages (addresses, codes) to a log; with EMAIL_HOST it sends over SMTP as before."""

import logging
import re
import socket
import time

import httpx
import pytest
from django.core import mail
from django.test import Client

from requests.mailbox import BACKEND
from requests.models import DemoMail
from tests.processes import celery_worker, free_port, manage, portal_env, web_server

ADDRESS = "zoe.martin@example.com"


@pytest.fixture
def demo_mail(settings):
    settings.EMAIL_BACKEND = BACKEND


@pytest.fixture
def reviewer(django_user_model):
    from requests.permissions import REVIEWER, role_group

    user = django_user_model.objects.create_user(username="rev", password="x", is_staff=True)
    user.groups.add(role_group(REVIEWER))
    return user


def _file_in_french(public_api, capture) -> str:
    with capture(execute=True):
        response = public_api.post(
            "/api/v1/requests/",
            {"kind": "access", "identity": {"email": ADDRESS}, "language": "fr"},
            format="json",
        )
    assert response.status_code == 201, response.content
    return response.json()["reference"]


def _code(text: str) -> str:
    match = re.search(r"\b(\d{6})\b", text)
    assert match, "no six-digit code"
    return match.group(1)


@pytest.mark.django_db
def test_a_filed_requests_code_is_on_the_staff_mail_page_and_not_in_the_log(
    demo_mail, public_api, reviewer, django_capture_on_commit_callbacks, caplog
):
    caplog.set_level(logging.DEBUG)
    _file_in_french(public_api, django_capture_on_commit_callbacks)
    stored = DemoMail.objects.get()
    code = _code(stored.content["body"])

    staff = Client()
    staff.force_login(reviewer)
    page = staff.get("/staff/mail/")
    assert page.status_code == 200
    html = page.content.decode()
    assert code in html
    assert "Confirmez votre demande auprès de" in html, "the subject reads decoded, in UTF-8"
    assert ADDRESS in html
    assert code not in caplog.text
    assert ADDRESS not in caplog.text
    assert "kept for the staff console" in caplog.text


@pytest.mark.django_db
def test_the_mail_page_is_not_readable_anonymously_by_non_staff_or_by_auditors(
    demo_mail, public_api, django_user_model, django_capture_on_commit_callbacks
):
    _file_in_french(public_api, django_capture_on_commit_callbacks)
    code = _code(DemoMail.objects.get().content["body"])

    anonymous = Client().get("/staff/mail/")
    assert anonymous.status_code == 302 and "/staff/login/" in anonymous["Location"]
    assert code not in anonymous.content.decode()

    visitor = Client()
    visitor.force_login(django_user_model.objects.create_user(username="visitor", password="x"))
    auditor = Client()
    # Staff in no role group are auditors: they read requests, never people's codes.
    auditor.force_login(
        django_user_model.objects.create_user(username="aud", password="x", is_staff=True)
    )
    for client in (visitor, auditor):
        refused = client.get("/staff/mail/")
        assert refused.status_code == 403
        assert code not in refused.content.decode()
    assert 'href="/staff/mail/"' not in auditor.get("/staff/").content.decode()


@pytest.mark.django_db
def test_stored_mail_is_encrypted_at_rest(
    demo_mail, public_api, django_capture_on_commit_callbacks
):
    from django.db import connection

    _file_in_french(public_api, django_capture_on_commit_callbacks)
    with connection.cursor() as cursor:
        cursor.execute("SELECT content FROM requests_demomail")
        (raw,) = cursor.fetchone()
    assert ADDRESS not in raw and "Confirmez" not in raw


@pytest.mark.django_db
def test_the_console_links_the_mail_page_only_when_mail_is_kept(settings, reviewer):
    staff = Client()
    staff.force_login(reviewer)
    settings.EMAIL_BACKEND = BACKEND
    assert 'href="/staff/mail/"' in staff.get("/staff/").content.decode()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    assert 'href="/staff/mail/"' not in staff.get("/staff/").content.decode()


class _RefusingServer:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        return f"550 5.1.1 <{address}>: Recipient address rejected: no such user"


@pytest.mark.django_db
def test_a_refused_recipient_is_logged_without_the_address(
    settings, public_api, django_capture_on_commit_callbacks, caplog
):
    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(_RefusingServer(), hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    caplog.set_level(logging.INFO)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = public_api.post(
                "/api/v1/requests/",
                {"kind": "access", "identity": {"email": "refused@example.com"}},
                format="json",
            )
    finally:
        controller.stop()
    assert response.status_code == 201
    # The portal's own records (aiosmtpd, the test's mail server, logs its side under mail.log).
    formatter = logging.Formatter()
    portal_log = "\n".join(
        formatter.format(record) for record in caplog.records if record.name != "mail.log"
    )
    assert "refused" in portal_log and "550" in portal_log
    assert "refused@example.com" not in portal_log
    assert len(mail.outbox) == 0


@pytest.mark.slow
def test_the_embedded_portal_keeps_mail_out_of_the_worker_and_web_logs(tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = portal_env(PORTAL_DATA_DIR=str(tmp_path / "data"), PORTAL_BASE_URL=base)
    env.pop("EMAIL_HOST", None)
    manage("migrate", "--no-input", env=env)
    manage("seed_demo", env=env)
    password = (tmp_path / "data" / "demo-staff-password").read_text().strip()
    worker_log, web_log = tmp_path / "worker.log", tmp_path / "web.log"
    with (
        web_server(env, web_log, port),
        celery_worker(env, worker_log, "--pool", "solo"),
        httpx.Client(base_url=base, timeout=30) as browser,
    ):
        filed = browser.post(
            "/api/v1/requests/", json={"kind": "access", "identity": {"email": ADDRESS}}
        )
        assert filed.status_code == 201
        login = browser.get("/staff/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
        browser.post(
            "/staff/login/",
            data={"csrfmiddlewaretoken": token, "username": "dpo", "password": password},
        )
        code = None
        deadline = time.monotonic() + 60
        while code is None and time.monotonic() < deadline:
            page = browser.get("/staff/mail/")
            assert page.status_code == 200
            if ADDRESS in page.text:
                code = _code(page.text.split("<pre", 1)[1])
            else:
                time.sleep(0.2)  # polling for the worker, not waiting for a result to appear
        assert code, f"no mail on the staff page:\n{worker_log.read_text()[-3000:]}"

    for log in (worker_log, web_log):
        text = log.read_text()
        assert code not in text, f"the code is in {log.name}"
        assert ADDRESS not in text, f"the address is in {log.name}"
    assert "kept for the staff console" in worker_log.read_text()


@pytest.mark.django_db
def test_the_mail_page_speaks_french_to_french_staff(demo_mail, reviewer):
    staff = Client(headers={"Accept-Language": "fr"})
    staff.force_login(reviewer)
    page = staff.get("/staff/mail/").content.decode()
    assert "Courrier de démonstration" in page
    assert "Aucun message pour l\N{RIGHT SINGLE QUOTATION MARK}instant." in page
