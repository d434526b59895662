"""A real Celery worker keeps its connection to the portal's database across tasks.

Celery's Django fixup would close it around every task, so each job, finaliser and email paid a
new connection (three per request). The worker names itself to PostgreSQL (application_name),
so the test sees its connections in pg_stat_activity, one backend process per connection.
"""

from __future__ import annotations

import time
import uuid

import psycopg
import pytest
from django.conf import settings as django_settings

from tests.processes import celery_worker, portal_env
from tests.servers import IN_CI, redis_url
from tests.test_celery_worker import sending_over

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

# A scheduler task that reads the portal's database and changes nothing when nothing expired.
TASK = "requests.tasks.packages_delete_expired"


@pytest.fixture
def redis_broker():
    with sending_over(redis_url(), {"visibility_timeout": 3600}) as broker:
        yield broker


def _postgres() -> dict:
    database = django_settings.DATABASES["default"]
    if not database["ENGINE"].endswith("postgresql"):
        message = "the portal's test database is not PostgreSQL; this test counts its backends"
        if IN_CI:
            pytest.fail(f"{message} (CI=true: tests may not skip)")
        pytest.skip(message)
    return database


def _backends(database: dict, name: str) -> set[int]:
    url = f"postgresql://{database['USER']}@{database['HOST']}:{database['PORT']}/postgres"
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (name,)
        ).fetchall()
    return {pid for (pid,) in rows}


def _run(app, queue: str, log, done: int) -> int:
    """Send one task and wait until the worker's log shows it finished; returns the new count."""
    app.send_task(TASK, queue=queue)
    deadline = time.monotonic() + 60
    while log.read_text().count(" succeeded in ") < done + 1:
        assert " raised " not in log.read_text(), log.read_text()[-3000:]
        assert time.monotonic() < deadline, f"the task did not finish:\n{log.read_text()[-3000:]}"
        time.sleep(0.05)
    return done + 1


def test_a_worker_uses_one_database_connection_for_many_tasks_and_replaces_a_broken_one(
    redis_broker, tmp_path
):
    from portal.celery import app

    database = _postgres()
    name = f"worker-{uuid.uuid4().hex[:12]}"
    url = (
        f"postgresql://{database['USER']}@{database['HOST']}:{database['PORT']}/"
        f"{database['NAME']}?application_name={name}"
    )
    env = portal_env(
        DATABASE_URL=url,
        CELERY_BROKER_URL=redis_broker[0],
        PORTAL_QUEUE=redis_broker[1],
        SECRET_KEY=django_settings.SECRET_KEY,
        PORTAL_ENCRYPTION_KEYS=",".join(django_settings.PORTAL_ENCRYPTION_KEYS),
        PORTAL_DATA_DIR=str(tmp_path / "worker"),
    )
    log = tmp_path / "worker.log"
    with celery_worker(env, log, "--pool", "solo", "-Q", redis_broker[1]):
        done = _run(app, redis_broker[1], log, 0)
        first = _backends(database, name)
        assert len(first) == 1, "after a task the worker keeps its connection open"
        for _ in range(5):
            done = _run(app, redis_broker[1], log, done)
        assert _backends(database, name) == first, "five more tasks, the same connection"

        # The database drops the connection (a restart, a proxy's idle timeout): the next task
        # finds it broken before use and connects again instead of failing.
        admin = f"postgresql://{database['USER']}@{database['HOST']}:{database['PORT']}/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(%s)", (next(iter(first)),))
        deadline = time.monotonic() + 30
        while _backends(database, name):
            assert time.monotonic() < deadline, "the terminated backend did not go away"
            time.sleep(0.05)
        done = _run(app, redis_broker[1], log, done)
        replaced = _backends(database, name)
        assert len(replaced) == 1 and replaced != first
