"""Nothing is lost at intake when the database restarts: a live portal (gunicorn and a Celery
worker with its scheduler) on a PostgreSQL of the test's own is sent a burst of filings while
that PostgreSQL is restarted. Every answer is 201 or 503 with Retry-After, never 500, and every
201 gets its verification email, through the send task's retries or the reconciler.

The shared server on 5432 is never touched: the test runs initdb and pg_ctl into a temporary
directory on a free port (as the `postgres` user when run as root).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import pytest

from tests.processes import celery_worker, free_port, manage, portal_env, web_server
from tests.servers import IN_CI, redis_url

pytestmark = pytest.mark.slow

FILINGS = 150
CLIENTS = 6
OUTAGE_SECONDS = 3


def _postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        message = "PostgreSQL server binaries (initdb, pg_ctl) are not in /usr/lib/postgresql"
        if IN_CI:
            pytest.fail(f"{message} (CI=true: tests may not skip)")
        pytest.skip(message)
    return Path(found[-1]).parent


class PrivatePostgres:
    """A PostgreSQL cluster of this test's own, which it may stop and start at will."""

    def __init__(self, root: Path):
        self.bin = _postgres_bin()
        self.root = root
        self.data = root / "data"
        self.log = root / "postgres.log"
        self.port = free_port()
        self._as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *args: str, timeout: float = 120) -> None:
        subprocess.run(
            [*self._as_postgres, *args], check=True, capture_output=True, timeout=timeout
        )

    def init(self) -> None:
        if self._as_postgres:
            shutil.chown(self.root, user="postgres")
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
            "--auth=trust", "-E", "UTF8", "--no-sync",
        )  # fmt: skip

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
            "-c fsync=off -c synchronous_commit=off -c max_connections=60"
        )
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
            "-o", options, "-w", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"


@contextmanager
def private_postgres():
    root = Path(tempfile.mkdtemp(prefix="portal-pg-"))
    server = PrivatePostgres(root)
    try:
        server.init()
        server.start()
        yield server
    finally:
        # It may already be stopped.
        with suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


def test_a_burst_of_filings_through_a_postgres_restart_loses_nothing(tmp_path, smtp_server):
    host, smtp_port, inbox = smtp_server
    broker = redis_url()
    with private_postgres() as postgres:
        database_url = postgres.create_database("portal")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = portal_env(
            PORTAL_DATA_DIR=str(tmp_path / "data"),
            PORTAL_BASE_URL=base,
            DATABASE_URL=database_url,
            # Redis carries the tasks (on a queue of this test's own); the rate-limit counts
            # stay in the database cache, so they go down with PostgreSQL too.
            CELERY_BROKER_URL=broker,
            PORTAL_QUEUE=f"restart-{uuid.uuid4().hex[:8]}",
            EMAIL_HOST=host,
            EMAIL_PORT=str(smtp_port),
            PORTAL_THROTTLE_FILE="100000/hour",
            PORTAL_VERIFICATION_RECONCILE_SECONDS="2",
            PORTAL_VERIFICATION_RESEND_AFTER_SECONDS="5",
            PORTAL_MAIL_SEND_LEASE_SECONDS="10",
        )
        manage("migrate", "--no-input", env=env)

        with (
            web_server(env, tmp_path / "web.log", port),
            celery_worker(env, tmp_path / "worker.log", "-B", "--concurrency", "2"),
            httpx.Client(base_url=base, timeout=60) as http,
        ):
            # The first third is filed before the restart, the second as it goes down and while
            # it is down, the last once it is back: so the burst meets the outage on any machine.
            stopping = threading.Event()
            restarted = threading.Event()
            filed_so_far = []

            def restart_when_a_third_is_filed() -> None:
                while len(filed_so_far) < FILINGS // 3:
                    time.sleep(0.05)
                stopping.set()
                postgres.stop("fast")
                time.sleep(OUTAGE_SECONDS)  # the outage the filings run into
                postgres.start()
                restarted.set()

            def file_one(i: int) -> tuple[str, httpx.Response]:
                if i >= FILINGS // 3:
                    stopping.wait(120)
                if i >= 2 * FILINGS // 3:
                    restarted.wait(120)
                email = f"person{i}@example.com"
                response = http.post(
                    "/api/v1/requests/",
                    json={"kind": "access", "identity": {"email": email}},
                )
                filed_so_far.append(i)
                if response.status_code == 503:
                    time.sleep(0.5)  # a client backs off a little, as Retry-After asks
                return email, response

            restarter = threading.Thread(target=restart_when_a_third_is_filed)
            restarter.start()
            with ThreadPoolExecutor(CLIENTS) as pool:
                answers = list(pool.map(file_one, range(FILINGS)))
            restarter.join(timeout=120)
            assert restarted.is_set(), "PostgreSQL was not restarted"

            statuses = [response.status_code for _, response in answers]
            unexpected = sorted({status for status in statuses if status not in (201, 503)})
            assert not unexpected, (
                f"answers other than 201/503: {unexpected}\n"
                + (tmp_path / "web.log").read_text()[-4000:]
            )
            unavailable = [response for _, response in answers if response.status_code == 503]
            assert unavailable, "no filing met the outage, so the test proved nothing"
            assert all(int(response.headers["Retry-After"]) > 0 for response in unavailable)
            accepted = {email for email, response in answers if response.status_code == 201}
            assert len(accepted) >= FILINGS // 2

            # Every accepted filing gets its email: sent by the task (retried through the
            # outage) or queued again by the reconciler.
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                mailed = {message["To"] for message in list(inbox.messages)}
                if accepted <= mailed:
                    break
                time.sleep(0.5)
            missing = accepted - {message["To"] for message in list(inbox.messages)}
            assert not missing, (
                f"{len(missing)} of {len(accepted)} accepted filings got no email\n"
                + (tmp_path / "worker.log").read_text()[-4000:]
            )
            print(
                f"{len(accepted)} accepted, {len(unavailable)} answered 503 during the restart, "
                f"{len(inbox.messages)} emails for {len(accepted)} accepted filings"
            )
