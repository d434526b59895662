import pytest


@pytest.fixture
def postgres_database():
    from tests.servers import fresh_postgres_database

    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def mariadb_database():
    from tests.servers import fresh_mariadb_database

    with fresh_mariadb_database() as url:
        yield url


@pytest.fixture
def redis_server_url():
    from tests.servers import redis_url

    return redis_url()


@pytest.fixture
def redis_cache(settings, redis_server_url):
    """The portal's production cache: Redis, under a prefix of this test's own (removed after)."""
    import uuid

    prefix = f"test-{uuid.uuid4().hex[:8]}"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_server_url,
            "KEY_PREFIX": prefix,
        }
    }
    import redis

    server = redis.Redis.from_url(redis_server_url)
    yield server, prefix
    for key in server.scan_iter(f"{prefix}:*"):
        server.delete(key)


@pytest.fixture
def staff_user(django_user_model):
    """A DPO: a staff account in the `dpo` group (roles: requests/permissions.py)."""
    from requests.permissions import DPO, role_group

    user = django_user_model.objects.create_user(
        username="dpo", password="correct horse battery", is_staff=True
    )
    user.groups.add(role_group(DPO))
    return user


@pytest.fixture
def staff_api(staff_user):
    from rest_framework.test import APIClient

    from requests.services.tokens import token_create

    client = APIClient()
    key = token_create(user=staff_user, actor="system")
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


@pytest.fixture
def public_api():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def file_request(public_api, django_capture_on_commit_callbacks):
    """File a request through the public API, running the queued email task as a worker would."""

    def _file(kind="access", **identity):
        identity.setdefault("email", "ada@example.com")
        with django_capture_on_commit_callbacks(execute=True):
            response = public_api.post(
                "/api/v1/requests/", {"kind": kind, "identity": identity}, format="json"
            )
        assert response.status_code == 201, response.content
        return response.json()["reference"]

    return _file


def code_from(message) -> str:
    import re

    match = re.search(r"\b(\d{6})\b", body_of(message))
    assert match, "no six-digit code in the email"
    return match.group(1)


def link_token_from(message, reference: str) -> str:
    import re

    match = re.search(rf"/r/{re.escape(reference)}/verify/([A-Za-z0-9_\-]+)/", body_of(message))
    assert match, "no verification link in the email"
    return match.group(1)


class _Inbox:
    """Messages received by the test SMTP server, parsed."""

    def __init__(self):
        import threading

        self.messages = []
        self._arrived = threading.Condition()

    async def handle_DATA(self, server, session, envelope):
        from email import message_from_bytes, policy

        message = message_from_bytes(envelope.content, policy=policy.default)
        with self._arrived:
            self.messages.append(message)
            self._arrived.notify_all()
        return "250 Message accepted for delivery"

    def wait_for(self, count: int, timeout: float = 30.0):
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.messages) >= count, timeout=timeout):
                raise AssertionError(f"expected {count} message(s), got {len(self.messages)}")
        return self.messages[count - 1]


@pytest.fixture
def smtp_server():
    """A real SMTP server (aiosmtpd) on a free local port; yields (host, port, inbox)."""
    import socket

    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield "127.0.0.1", port, inbox
    finally:
        controller.stop()


def body_of(message) -> str:
    """The plain-text body of a received email.message.EmailMessage or a Django message."""
    if hasattr(message, "get_body"):
        return message.get_body(preferencelist=("plain",)).get_content()
    return message.body


@pytest.fixture(autouse=True)
def files_stores_may_live_in_the_tests_temporary_folders(settings, tmp_path_factory):
    """PORTAL_FILES_ROOTS for tests: pytest's own temporary folders, where test stores live."""
    settings.PORTAL_FILES_ROOTS = [str(tmp_path_factory.getbasetemp())]
