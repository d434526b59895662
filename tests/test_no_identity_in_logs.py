"""A full erasure whose failures carry the person's address, then a scan: the address appears in
no log line, no audit event, no job's error and no reason shown to staff.

The failures: a database error raised on the row holding the address (a trigger quoting it), a
downstream service that reports its erasure failed with a reason echoing the address, and a mail
server that refuses the address when the person is told the erasure is done."""

from __future__ import annotations

import json
import logging
import time

import psycopg
import pytest

from requests import tasks
from requests.models import AuditEvent, ConnectedStore, DataRequest, Job
from requests.services import job_staff, lifecycle
from tests.engine.webhook_server import WebhookService
from tests.erasure_fixtures import wait_until, worker_env
from tests.processes import celery_worker
from tests.servers import redis_url
from tests.test_celery_worker import sending_over

EMAIL = "grace.hopper@example.org"
SECRET = "log-scan-secret-0123456789"
SHOP_MAP = """
collections:
  customers:
    key: [id]
    fields:
      email: {identity: email}
"""
HELPDESK_MAP = """
collections:
  tickets:
    key: [id]
    fields:
      email: {identity: email}
"""
QUOTING_TRIGGER = """
CREATE FUNCTION quote_on_delete() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
  RAISE EXCEPTION 'row % of % cannot be deleted', OLD.id, OLD.email; END $$;
CREATE TRIGGER quote_on_delete BEFORE DELETE ON customers
  FOR EACH ROW EXECUTE FUNCTION quote_on_delete();
"""


class _RefusingInbox:
    """An SMTP handler that takes every message until told to refuse the person's address; the
    refusal quotes the address, as real servers do."""

    def __init__(self) -> None:
        self.refuse = False
        self.messages = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse and address.lower() == EMAIL:
            return f"550 5.1.1 <{address}>: recipient unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope.content)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp(settings):
    import socket

    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = _RefusingInbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    try:
        yield inbox
    finally:
        controller.stop()


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


@pytest.mark.django_db
def test_failures_that_quote_the_address_leave_it_in_no_log_audit_event_or_job_error(
    postgres_database, smtp, settings, caplog, django_capture_on_commit_callbacks
):
    settings.PORTAL_WEBHOOK_ALLOW_PRIVATE = True
    with psycopg.connect(_plain(postgres_database)) as conn:
        conn.execute(
            "CREATE TABLE customers (id bigint PRIMARY KEY, email text NOT NULL);"
            f"INSERT INTO customers VALUES (1, '{EMAIL}'), (2, 'someone@example.org');"
            + QUOTING_TRIGGER
        )
    ConnectedStore.objects.create(
        name="shop", kind="postgresql", url=postgres_database, map_yaml=SHOP_MAP
    )
    capture = django_capture_on_commit_callbacks
    caplog.set_level(logging.DEBUG)
    with WebhookService(SECRET, {"tickets": [{"id": 5, "email": EMAIL}]}) as service:
        ConnectedStore.objects.create(
            name="helpdesk", kind="webhook", url=service.url, secret=SECRET, map_yaml=HELPDESK_MAP
        )
        service.pending_erase = True
        with capture(execute=True):
            request = lifecycle.request_file(kind="erasure", identity={"email": EMAIL})
        request = lifecycle.request_mark_verified(request=request, method="code")
        with capture(execute=True):
            lifecycle.request_approve(request=request, actor="staff:dpo")
        # The recipient's erasure failed, and it says so in words that quote the person.
        (job_name,) = service.jobs
        service.jobs[job_name] = {"status": "failed", "reason": f"no mailbox for {EMAIL}"}
        with capture(execute=True):
            tasks.erasure_recipients_check.delay()
        request.refresh_from_db()
        assert request.status == "needs_attention"
        errors = dict(Job.objects.filter(request=request).values_list("store__name", "error"))
        assert "database error" in errors["shop"]
        assert "recipient reported that its erasure failed" in errors["helpdesk"]

        # Fixed on both sides; staff retry; the person's mail server now refuses the address.
        with psycopg.connect(_plain(postgres_database)) as conn:
            conn.execute("DROP TRIGGER quote_on_delete ON customers")
        service.jobs[job_name] = {"status": "done", "erased": 1}
        smtp.refuse = True
        with capture(execute=True):
            job_staff.request_retry_failed_jobs(request=request, actor="staff:dpo")
        with capture(execute=True):
            tasks.erasure_recipients_check.delay()
    request.refresh_from_db()
    assert request.status == "completed", request.attention_reason
    refused = [r.getMessage() for r in caplog.records if "mail for request" in r.getMessage()]
    assert any("refused" in line and "550" in line for line in refused)

    needles = {EMAIL, EMAIL.split("@")[0]}
    # Every line the portal and its libraries logged (not the test's own SMTP server's).
    logged = "\n".join(
        f"{record.getMessage()}\n{record.exc_text or ''}"
        for record in caplog.records
        if record.name != "mail.log"
    )
    audit = json.dumps(list(AuditEvent.objects.values_list("action", "details")))
    job_errors = json.dumps(list(Job.objects.values_list("error", flat=True)))
    reasons = json.dumps(list(DataRequest.objects.values_list("attention_reason", flat=True)))
    for needle in needles:
        assert needle not in logged
        assert needle not in audit
        assert needle not in job_errors
        assert needle not in reasons


def _assert_nowhere(logged: str) -> None:
    audit = json.dumps(list(AuditEvent.objects.values_list("action", "details")))
    job_errors = json.dumps(list(Job.objects.values_list("error", flat=True)))
    reasons = json.dumps(list(DataRequest.objects.values_list("attention_reason", flat=True)))
    for needle in (EMAIL, EMAIL.split("@")[0]):
        assert needle not in logged
        assert needle not in audit
        assert needle not in job_errors
        assert needle not in reasons


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_with_real_workers_their_logs_hold_no_identity_value_through_the_same_failures(
    postgres_database, smtp, settings, tmp_path
):
    with psycopg.connect(_plain(postgres_database)) as conn:
        conn.execute(
            "CREATE TABLE customers (id bigint PRIMARY KEY, email text NOT NULL);"
            f"INSERT INTO customers VALUES (1, '{EMAIL}'), (2, 'someone@example.org');"
            + QUOTING_TRIGGER
        )
    ConnectedStore.objects.create(
        name="shop", kind="postgresql", url=postgres_database, map_yaml=SHOP_MAP
    )
    with (
        WebhookService(SECRET, {"tickets": [{"id": 5, "email": EMAIL}]}) as service,
        sending_over(redis_url(), {"visibility_timeout": 3600}) as broker,
    ):
        ConnectedStore.objects.create(
            name="helpdesk", kind="webhook", url=service.url, secret=SECRET, map_yaml=HELPDESK_MAP
        )
        service.pending_erase = True
        env = worker_env(
            broker,
            tmp_path / "data",
            EMAIL_HOST=settings.EMAIL_HOST,
            EMAIL_PORT=str(settings.EMAIL_PORT),
            PORTAL_WEBHOOK_ALLOW_PRIVATE="true",
        )
        args = ("--pool", "solo", "-Q", broker[1], "--loglevel", "DEBUG")
        with celery_worker(env, tmp_path / "worker.log", *args):
            request = lifecycle.request_file(kind="erasure", identity={"email": EMAIL})
            wait_until(lambda: smtp.messages, timeout=60, what="the verification email")
            request = lifecycle.request_mark_verified(request=request, method="code")
            lifecycle.request_approve(request=request, actor="staff:dpo")
            wait_until(lambda: service.jobs, timeout=60, what="the erase call")
            (job_name,) = service.jobs
            service.jobs[job_name] = {"status": "failed", "reason": f"no mailbox for {EMAIL}"}

            def failed_twice() -> bool:
                tasks.erasure_recipients_check.delay()
                time.sleep(0.5)
                return Job.objects.filter(request=request, state="failed").count() == 2

            wait_until(failed_twice, timeout=60, what="both jobs to fail")
            with psycopg.connect(_plain(postgres_database)) as conn:
                conn.execute("DROP TRIGGER quote_on_delete ON customers")
            service.jobs[job_name] = {"status": "done", "erased": 1}
            smtp.refuse = True
            job_staff.request_retry_failed_jobs(request=request, actor="staff:dpo")

            def completed() -> bool:
                tasks.erasure_recipients_check.delay()
                time.sleep(0.5)
                return DataRequest.objects.get(pk=request.pk).status == "completed"

            wait_until(completed, timeout=90, what="the retried erasure to complete")
            wait_until(
                lambda: "refused" in (tmp_path / "worker.log").read_text(),
                timeout=60,
                what="the refused completion email",
            )
        logged = (tmp_path / "worker.log").read_text()
    assert any("refused" in line and "550" in line for line in logged.splitlines())
    retried = AuditEvent.objects.filter(request=request, action="job.failed")
    assert any("database error" in (event.details.get("reason") or "") for event in retried)
    _assert_nowhere(logged)
