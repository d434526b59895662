"""A real Celery worker process, on Redis or RabbitMQ, carries the request's emails and work."""

import uuid
from contextlib import contextmanager, suppress

import pytest
from django.conf import settings as django_settings

from requests.models import DataRequest
from tests.conftest import code_from
from tests.processes import celery_worker, portal_env
from tests.servers import RABBITMQ_URL, redis_url, require

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _forget_connections(app) -> None:
    # Earlier tests may have built the connection and producer pools (and the queue routing) for
    # another broker; drop them so this test's broker and queue take effect.
    app._pool = None
    app.__dict__.pop("amqp", None)


@contextmanager
def sending_over(url: str, transport_options: dict):
    """This process sends tasks over `url`, on a queue of its own so parallel runs never meet."""
    from portal.celery import app

    queue = f"test-{uuid.uuid4().hex[:12]}"
    keys = ("broker_url", "task_always_eager", "broker_transport_options", "task_default_queue")
    saved = {key: app.conf[key] for key in keys}
    app.conf.update(
        broker_url=url,
        task_always_eager=False,
        broker_transport_options=transport_options,
        task_default_queue=queue,
    )
    _forget_connections(app)
    try:
        yield url, queue
    finally:
        # Remove the test's queue from the broker; it may never have been declared.
        with app.connection_for_write() as connection, suppress(Exception):
            connection.default_channel.queue_delete(queue)
        app.conf.update(saved)
        _forget_connections(app)


@pytest.fixture
def redis_broker():
    with sending_over(redis_url(), {"visibility_timeout": 3600}) as broker:
        yield broker


@pytest.fixture
def rabbitmq_broker():
    with sending_over(require("RabbitMQ", RABBITMQ_URL), {}) as broker:
        yield broker


def test_a_worker_sends_the_code_and_completes_an_approved_request(
    redis_broker, smtp_server, public_api, staff_api, tmp_path
):
    _file_verify_approve(redis_broker, smtp_server, public_api, staff_api, tmp_path)


def test_a_worker_on_rabbitmq_does_the_same(
    rabbitmq_broker, smtp_server, public_api, staff_api, tmp_path
):
    _file_verify_approve(rabbitmq_broker, smtp_server, public_api, staff_api, tmp_path)


def _file_verify_approve(broker, smtp_server, public_api, staff_api, tmp_path):
    host, port, inbox = smtp_server
    database = django_settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        db_url = f"sqlite:///{database['NAME']}"
    else:
        db_url = f"postgresql://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"
    env = portal_env(
        DATABASE_URL=db_url,
        CELERY_BROKER_URL=broker[0],
        PORTAL_QUEUE=broker[1],
        EMAIL_HOST=host,
        EMAIL_PORT=str(port),
        SECRET_KEY=django_settings.SECRET_KEY,
        PORTAL_ENCRYPTION_KEYS=",".join(django_settings.PORTAL_ENCRYPTION_KEYS),
        PORTAL_DATA_DIR=str(tmp_path / "worker"),
        PORTAL_BASE_URL="http://portal.test",
    )
    with celery_worker(env, tmp_path / "worker.log", "--pool", "solo", "-Q", broker[1]):
        filed = public_api.post(
            "/api/v1/requests/",
            {"kind": "access", "identity": {"email": "worker@example.com"}},
            format="json",
        )
        reference = filed.json()["reference"]
        message = inbox.wait_for(1)
        assert message["To"] == "worker@example.com"
        verified = public_api.post(
            f"/api/v1/requests/{reference}/verify/", {"code": code_from(message)}, format="json"
        )
        assert verified.json()["status"] == "in_review"
        approved = staff_api.post(f"/api/v1/staff/requests/{reference}/approve/")
        assert approved.status_code == 200, approved.content
        completed = inbox.wait_for(2)
        assert "http://portal.test/r/" in str(completed.get_body(preferencelist=("plain",)))
    assert DataRequest.objects.get(reference=reference).status == "completed"
