"""Erasures carried by real Celery worker processes on Redis, through what goes wrong in
production: a worker killed (SIGKILL) in the middle of an erasure, a store that goes down and comes
back, and a broker that loses every queued message. The database is the truth: the request
completes each time, every record is erased once, and no job is left stuck.

How the erasure is made slow enough to kill mid-way: the store is PostgreSQL with a trigger that
sleeps a millisecond per deleted invoice line (`pg_sleep`), and the person has 4,000 of them, so
the one transaction of the store's erasure runs for several seconds; the test kills the worker's
process group once PostgreSQL shows that transaction's DELETE running. Leases are 3 seconds, so
the job is taken up again soon after, by the reconciler (the test sends its task)."""

from __future__ import annotations

import os
import signal
import socket
import time
from contextlib import contextmanager
from urllib.parse import urlsplit

import psycopg
import pytest
import redis
from django.utils import timezone

from requests import tasks
from requests.models import AuditEvent, DataRequest, ErasureCertificate, Job
from requests.services import lifecycle
from tests.erasure_fixtures import (
    PERSON,
    TcpProxy,
    private_redis,
    shop_and_crm,
    wait_until,
    worker_env,
)
from tests.processes import BIN, celery_worker, running
from tests.servers import redis_url
from tests.test_celery_worker import sending_over

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

LINES = 4000  # the person's invoice lines
INVOICES = 200  # the person's invoices
OTHERS = 40  # other customers, with 2 invoices of 5 lines each

STORE_MAP = """
collections:
  customers:
    key: [id]
    fields:
      email: {identity: email}
  invoices:
    key: [id]
    fields:
      customer_id: {references: {collection: customers, field: id}}
  invoice_lines:
    key: [id]
    fields:
      invoice_id: {references: {collection: invoices, field: id}}
"""

SCHEMA = f"""
CREATE TABLE customers (id bigint PRIMARY KEY, email text NOT NULL);
CREATE TABLE invoices (id bigint PRIMARY KEY,
                       customer_id bigint NOT NULL REFERENCES customers(id));
CREATE TABLE invoice_lines (id bigint PRIMARY KEY,
                            invoice_id bigint NOT NULL REFERENCES invoices(id), amount int);
CREATE INDEX ON invoices (customer_id);
CREATE INDEX ON invoice_lines (invoice_id);
INSERT INTO customers VALUES (1, '{PERSON}');
INSERT INTO customers SELECT g, 'other' || g || '@example.com'
  FROM generate_series(2, {OTHERS + 1}) g;
INSERT INTO invoices SELECT g, 1 FROM generate_series(1, {INVOICES}) g;
INSERT INTO invoices SELECT {INVOICES} + g, 2 + (g - 1) / 2 FROM generate_series(1, {OTHERS * 2}) g;
INSERT INTO invoice_lines SELECT g, 1 + (g - 1) % {INVOICES}, g FROM generate_series(1, {LINES}) g;
INSERT INTO invoice_lines SELECT {LINES} + g, {INVOICES} + 1 + (g - 1) / 5, g
  FROM generate_series(1, {OTHERS * 10}) g;
"""

SLOW_DELETES = """
CREATE FUNCTION slow_delete() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN PERFORM pg_sleep(0.001); RETURN OLD; END $$;
CREATE TRIGGER slow_delete BEFORE DELETE ON invoice_lines
  FOR EACH ROW EXECUTE FUNCTION slow_delete();
"""


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _count(url: str, sql: str) -> int:
    with psycopg.connect(_plain(url)) as conn:
        return conn.execute(sql).fetchone()[0]


def _shop(url: str, *, slow: bool = False) -> str:
    with psycopg.connect(_plain(url)) as conn:
        conn.execute(SCHEMA + (SLOW_DELETES if slow else ""))
    return url


def _snapshot(url: str) -> dict[str, int]:
    return {
        "customers": _count(url, "SELECT count(*) FROM customers"),
        "invoices": _count(url, "SELECT count(*) FROM invoices"),
        "invoice_lines": _count(url, "SELECT count(*) FROM invoice_lines"),
        "others_lines": _count(
            url, f"SELECT count(*) FROM invoice_lines WHERE invoice_id > {INVOICES}"
        ),
    }


@pytest.fixture
def broker():
    with sending_over(redis_url(), {"visibility_timeout": 3600}) as sent:
        yield sent


@pytest.fixture
def staff_store(staff_api):
    def connect(name: str, url: str, map_yaml: str = STORE_MAP) -> None:
        created = staff_api.post(
            "/api/v1/staff/stores/",
            {"name": name, "kind": "postgresql", "url": url, "map": map_yaml},
            format="json",
        )
        assert created.status_code == 201, created.content

    return connect


def _file_and_verify(public_api, email: str = PERSON) -> str:
    """File through the public API; the identity check itself (the emailed code, which a worker
    sends) is the intake tests' subject, so it is passed here through its service."""
    filed = public_api.post(
        "/api/v1/requests/", {"kind": "erasure", "identity": {"email": email}}, format="json"
    )
    assert filed.status_code == 201, filed.content
    reference = filed.json()["reference"]
    lifecycle.request_mark_verified(
        request=DataRequest.objects.get(reference=reference), method="code"
    )
    return reference


def _status(reference: str) -> str:
    return DataRequest.objects.get(reference=reference).status


def _settled(reference: str) -> bool:
    return _status(reference) in ("completed", "needs_attention")


def _worker(env, log, *extra):
    return celery_worker(env, log, "--pool", "solo", "-Q", env["PORTAL_QUEUE"], *extra)


@contextmanager
def _beat(env, log):
    args = [str(BIN / "celery"), "-A", "portal", "beat", "--loglevel", "INFO",
            "--schedule", str(log.parent / "beat-schedule")]  # fmt: skip
    with running(args, env=env, log=log, ready=lambda: "beat: Starting" in log.read_text()) as p:
        yield p


def test_a_worker_killed_mid_erasure_is_replaced_and_every_record_is_erased_once(
    broker, postgres_database, staff_store, public_api, staff_api, tmp_path
):
    url = _shop(postgres_database, slow=True)
    staff_store("shop", url)
    before = _snapshot(url)
    env = worker_env(broker, tmp_path / "data", PORTAL_JOB_LEASE_SECONDS="3")
    reference = _file_and_verify(public_api)
    database = urlsplit(_plain(url)).path.lstrip("/")

    with _worker(env, tmp_path / "worker1.log") as first:
        assert staff_api.post(f"/api/v1/staff/requests/{reference}/approve/").status_code == 200

        def deleting() -> bool:
            return bool(
                _count(
                    postgres_database,
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                    f"'{database}' AND state = 'active' AND query ILIKE 'DELETE%'",
                )
            )

        wait_until(deleting, timeout=60, every=0.05, what="the erasure's DELETE to run")
        time.sleep(0.5)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)

    job = Job.objects.get(request__reference=reference)
    assert (job.state, job.attempts) == ("running", 1)  # its worker is gone mid-way
    # The store's erasure is one transaction: once PostgreSQL sees the client gone, it is undone.
    wait_until(lambda: _snapshot(url) == before, timeout=60, what="the transaction to roll back")

    with _worker(env, tmp_path / "worker2.log"):
        wait_until(
            lambda: Job.objects.get(pk=job.pk).lease_expires_at < timezone.now(),
            timeout=10,
            what="the lease to run out",
        )
        tasks.jobs_reconcile.delay()  # what beat sends every PORTAL_RECONCILE_SECONDS
        wait_until(lambda: _settled(reference), timeout=120, what="the request to settle")

    assert _status(reference) == "completed"
    job.refresh_from_db()
    assert (job.state, job.attempts) == ("done", 2)
    totals = job.counts["totals"]
    assert totals["deleted"] == 1 + INVOICES + LINES  # each record erased once, by the second run
    assert job.counts["collections"]["invoice_lines"]["deleted"] == LINES
    after = _snapshot(url)
    assert after == {
        "customers": before["customers"] - 1,
        "invoices": before["invoices"] - INVOICES,
        "invoice_lines": before["invoice_lines"] - LINES,
        "others_lines": before["others_lines"],
    }
    assert not Job.objects.filter(state__in=["queued", "running", "waiting"]).exists()
    assert AuditEvent.objects.filter(request__reference=reference, action="job.done").count() == 1
    certificate = ErasureCertificate.objects.get(request__reference=reference).content
    assert certificate["totals"]["deleted"] == 1 + INVOICES + LINES
    assert certificate["stores"][0]["attempts"] == 2


def test_a_store_that_goes_down_is_retried_then_needs_staff_and_completes_once_back(
    broker, postgres_database, staff_store, public_api, staff_api, tmp_path
):
    _shop(postgres_database)
    target = urlsplit(_plain(postgres_database))
    proxy = TcpProxy(target.hostname, target.port or 5432)  # the store's address; down for now
    via_proxy = postgres_database.replace(
        target.netloc, f"{target.username}@127.0.0.1:{proxy.port}"
    )
    staff_store("shop", via_proxy)
    env = worker_env(
        broker,
        tmp_path / "data",
        PORTAL_JOB_MAX_ATTEMPTS="3",
        PORTAL_JOB_RETRY_BASE_SECONDS="1",
        PORTAL_STORE_TIMEOUT="2",
    )
    reference = _file_and_verify(public_api)
    try:
        with _worker(env, tmp_path / "worker.log"):
            assert staff_api.post(f"/api/v1/staff/requests/{reference}/approve/").status_code == 200
            wait_until(lambda: _settled(reference), timeout=90, what="the retries to run out")
            request = DataRequest.objects.get(reference=reference)
            assert request.status == "needs_attention"
            job = Job.objects.get(request=request)
            assert (job.state, job.attempts) == ("failed", 3)
            assert "gave up after 3 attempts" in job.error
            assert "connect" in request.attention_reason
            retries = AuditEvent.objects.filter(request=request, action="job.retry_scheduled")
            assert [e.details["in_seconds"] for e in retries] == [1, 2]

            proxy.start()  # the store is back
            retried = staff_api.post(f"/api/v1/staff/requests/{reference}/retry/")
            assert retried.status_code == 200, retried.content
            wait_until(lambda: _settled(reference), timeout=60, what="the retried erasure")
        assert _status(reference) == "completed"
        job.refresh_from_db()
        assert (job.state, job.attempts) == ("done", 1)  # staff's retry starts a fresh count
        assert job.counts["totals"]["deleted"] == 1 + INVOICES + LINES
        assert _count(postgres_database, "SELECT count(*) FROM customers WHERE id = 1") == 0

        # A store that is back before the cap needs nobody: the next attempt succeeds.
        proxy.stop()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", proxy.port), timeout=2)
        second = _file_and_verify(public_api, "other2@example.com")
        with _worker(env, tmp_path / "worker2.log"):
            assert staff_api.post(f"/api/v1/staff/requests/{second}/approve/").status_code == 200
            wait_until(
                lambda: (
                    Job.objects.get(request__reference=second).attempts >= 1
                    and AuditEvent.objects.filter(
                        request__reference=second, action="job.retry_scheduled"
                    ).exists()
                ),
                timeout=60,
                what="a first failed attempt",
            )
            proxy.start()
            wait_until(lambda: _settled(second), timeout=60, what="the later success")
        assert _status(second) == "completed"
        assert Job.objects.get(request__reference=second).attempts >= 2
    finally:
        proxy.stop()


def test_jobs_lost_with_the_brokers_messages_are_sent_again_by_the_reconciler(
    public_api, staff_api, tmp_path, settings
):
    settings.DATA_DIR = tmp_path / "data"
    shop_and_crm(tmp_path)
    with private_redis(tmp_path) as url, sending_over(url, {"visibility_timeout": 3600}) as sent:
        env = worker_env(
            sent,
            tmp_path / "data",
            PORTAL_RECONCILE_SECONDS="1",
            PORTAL_JOB_REQUEUE_AFTER_SECONDS="1",
        )
        reference = _file_and_verify(public_api)
        # Approved while no worker runs: the CRM's job waits in the broker (the shop's for it).
        assert staff_api.post(f"/api/v1/staff/requests/{reference}/approve/").status_code == 200
        client = redis.Redis.from_url(url)
        assert client.llen(sent[1]) >= 1
        client.flushall()  # a Redis restart without persistence: every queued message is gone
        assert client.llen(sent[1]) == 0
        with _worker(env, tmp_path / "worker.log"):
            time.sleep(2)
            assert _status(reference) == "processing"  # nothing left to deliver
            with _beat(env, tmp_path / "beat.log"):
                wait_until(lambda: _settled(reference), timeout=60, what="the reconciler")
    assert _status(reference) == "completed"
    jobs = {job.store.name: job for job in Job.objects.filter(request__reference=reference)}
    assert {name: (job.state, job.attempts) for name, job in jobs.items()} == {
        "crm": ("done", 1),
        "shop": ("done", 1),
    }
    assert jobs["crm"].finished_at <= jobs["shop"].started_at  # still in the maps' order
