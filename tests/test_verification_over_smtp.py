import pytest

from requests.models import DataRequest
from tests.conftest import body_of, code_from, link_token_from

pytestmark = pytest.mark.django_db


@pytest.fixture
def real_smtp(settings, smtp_server):
    host, port, inbox = smtp_server
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = host
    settings.EMAIL_PORT = port
    settings.DEFAULT_FROM_EMAIL = "privacy@portal.test"
    return inbox


def test_the_code_and_link_arrive_over_real_smtp_and_verify_the_request(
    real_smtp, file_request, public_api, client
):
    reference = file_request(email="Grace@Example.com")
    message = real_smtp.wait_for(1)
    assert message["To"] == "grace@example.com"
    assert message["From"] == "privacy@portal.test"
    body = body_of(message)
    token = link_token_from(message, reference)
    assert code_from(message) in body
    # The link alone verifies through the page's confirm button (GET never verifies).
    page = client.get(f"/r/{reference}/verify/{token}/")
    assert page.status_code == 200
    assert DataRequest.objects.get(reference=reference).status == "awaiting_verification"
    confirmed = client.post(f"/r/{reference}/verify/{token}/")
    assert confirmed.status_code == 302
    assert DataRequest.objects.get(reference=reference).status == "in_review"
    replay = client.post(f"/r/{reference}/verify/{token}/")
    assert replay.status_code in {200, 400, 409}
    assert "already" in replay.content.decode().lower()
    assert DataRequest.objects.get(reference=reference).status == "in_review"


def test_a_mail_server_that_is_down_leaves_the_code_owed_for_a_retry(settings, file_request):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = closed_port
    settings.EMAIL_TIMEOUT = 2
    from celery.exceptions import Retry

    with pytest.raises((ConnectionError, Retry)):
        file_request(email="down@example.com")


class _Sessions:
    """An SMTP server's handler that notes which connection each message came over."""

    def __init__(self) -> None:
        self.peers: list = []

    async def handle_DATA(self, server, session, envelope):
        self.peers.append(session.peer)
        return "250 OK"


@pytest.fixture
def counting_smtp(settings):
    """A real SMTP server (aiosmtpd) that closes connections idle for half a second."""
    import socket

    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = _Sessions()
    controller = Controller(handler, hostname="127.0.0.1", port=port, timeout=0.5)
    controller.start()
    settings.EMAIL_BACKEND = "requests.mail_smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    try:
        yield handler
    finally:
        controller.stop()


def test_emails_sent_one_after_another_share_one_connection_to_the_mail_server(
    counting_smtp, file_request
):
    for n in range(3):
        file_request(email=f"kept-{n}@example.com")
    assert len(counting_smtp.peers) == 3
    assert len(set(counting_smtp.peers)) == 1


def test_a_connection_the_mail_server_closed_is_opened_again_without_losing_the_email(
    counting_smtp, file_request
):
    import time

    file_request(email="first@example.com")
    time.sleep(1.5)  # the server drops the idle connection the worker kept
    reference = file_request(email="second@example.com")

    assert len(counting_smtp.peers) == 2
    assert len(set(counting_smtp.peers)) == 2
    verification = DataRequest.objects.get(reference=reference).verification
    assert verification.send_pending is False
    assert verification.sends == 1
