"""Intake under load: N filings from 50 concurrent clients against gunicorn on PostgreSQL and
Redis, with a real Celery worker sending every verification email to an SMTP server, next to the
trivial `/healthz` view of the same server in the same run.

    .venv/bin/python benchmarks/intake_load_benchmark.py                  # 10,000 filings
    .venv/bin/python benchmarks/intake_load_benchmark.py --count 2000     # a shorter run

Needs PostgreSQL (BENCH_POSTGRES_URL, default postgresql://postgres@127.0.0.1:5432/postgres),
where a fresh database is made and dropped at the end, and Redis (BENCH_REDIS_URL, default
redis://127.0.0.1:6379): the first empty database among 11 to 15 is used for the broker and the
cache, and emptied at the end, so nothing else's keys are touched.

The portal runs as in production: `gunicorn -c python:portal.gunicorn_conf` (--web-workers sync
workers, no access log, warmed up with unmeasured requests first), `celery worker
--concurrency 2`, DEBUG off, mail over SMTP to an
aiosmtpd server in this process that counts each message by recipient. The filing rate limits
are raised for the run (PORTAL_THROTTLE_FILE and PORTAL_THROTTLE_FILE_IDENTITY); every filing has
its own address. The clients are httpx coroutines in this process, each sending its next
request as soon as the last one is answered.

1. `/healthz`, --count GETs from --concurrency clients: the trivial view's throughput and latency.
2. `POST /api/v1/requests/`, --count filings from --concurrency clients, then wait until the SMTP
   server has every verification email.

Then it checks that nothing was lost: every filing answered 201, no 5xx, the database holds
exactly the filed requests with no email still owed, and the SMTP server got one email for each
filed address. Results are printed as Markdown (JSON with --json).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import redis
from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SERVER = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379").rstrip("/")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Inbox:
    """aiosmtpd handler: counts messages per recipient, and when each arrived."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_recipient: dict[str, int] = {}
        self.times: list[float] = []

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            for recipient in envelope.rcpt_tos:
                self.by_recipient[recipient] = self.by_recipient.get(recipient, 0) + 1
            self.times.append(time.perf_counter())
        return "250 OK"

    def count(self) -> int:
        with self.lock:
            return len(self.times)


@contextlib.contextmanager
def fresh_database():
    name = f"dsr_intake_load_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(SERVER, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = SERVER.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(SERVER, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def empty_redis_database():
    for number in range(11, 16):
        client = redis.Redis.from_url(f"{REDIS}/{number}")
        if client.dbsize() == 0:
            break
    else:
        raise SystemExit("no empty Redis database among 11 to 15")
    try:
        yield f"{REDIS}/{number}"
    finally:
        client.flushdb()


@contextlib.contextmanager
def running(args: list[str], env: dict[str, str], log_path: Path):
    with log_path.open("w") as out:
        process = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_of(pid: int | str) -> float:
    """User + system CPU seconds of one process (or /proc/self/task/<tid>), 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _session_pids(session: int) -> list[int]:
    """The processes of one session: gunicorn's arbiter and workers, or Celery's."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            if int(fields[3]) == session:
                pids.append(int(entry.name))
    return pids


class CpuMeter:
    """CPU seconds spent by each side of the run: gunicorn, Celery, the database's backends for
    this run's database, the load generator's thread and the SMTP server's thread (both in this
    process). Redis and PostgreSQL's own background processes serve other databases too, so
    they are left out."""

    def __init__(self, web: int, worker: int, database_url: str) -> None:
        self.web, self.worker = web, worker
        self.database = database_url.rsplit("/", 1)[1]

    def backends(self) -> list[int]:
        with psycopg.connect(SERVER, autocommit=True) as admin:
            rows = admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s", (self.database,)
            ).fetchall()
        return [row[0] for row in rows]

    def sample(self) -> dict[str, dict[int, float]]:
        main = threading.main_thread().native_id
        threads = [int(t.name) for t in Path("/proc/self/task").iterdir()]
        return {
            "gunicorn": {pid: _cpu_of(pid) for pid in _session_pids(self.web)},
            "celery": {pid: _cpu_of(pid) for pid in _session_pids(self.worker)},
            "postgres": {pid: _cpu_of(pid) for pid in self.backends()},
            "client": {main: _cpu_of(f"self/task/{main}")},
            "smtp": {tid: _cpu_of(f"self/task/{tid}") for tid in threads if tid != main},
        }

    @staticmethod
    def per_request(before: dict, after: dict, count: int) -> dict[str, float]:
        """CPU milliseconds per request by side. A process that started during the phase counts
        from zero; one that ended during it (a backend closed) loses its share, so the database's
        figure is a lower bound."""
        spent = {
            side: sum(cpu - before[side].get(pid, 0.0) for pid, cpu in after[side].items())
            for side in after
        }
        result = {side: round(seconds * 1000 / count, 2) for side, seconds in spent.items()}
        result["total"] = round(sum(spent.values()) * 1000 / count, 2)
        return result


def wait_for(predicate, timeout: float, what: str, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


def answering(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


async def load(base: str, count: int, concurrency: int, make_request) -> dict:
    """`count` requests from `concurrency` clients, each sending its next when answered."""
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    next_number = iter(range(count))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120) as client:

        async def one_client():
            for number in next_number:
                started = time.perf_counter()
                try:
                    response = await make_request(client, number)
                    status = str(response.status_code)
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                latencies.append(time.perf_counter() - started)
                statuses[status] = statuses.get(status, 0) + 1

        cpu = time.process_time()
        started = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(concurrency)))
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu

    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000

    return {
        "requests": count,
        "wall_s": round(wall, 2),
        "per_s": round(count / wall, 1),
        "p50_ms": round(pct(50), 1),
        "p90_ms": round(pct(90), 1),
        "p99_ms": round(pct(99), 1),
        "max_ms": round(latencies[-1] * 1000, 1),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 1),
        "statuses": statuses,
        "client_cpu_s": round(cpu, 2),
    }


def unsealed_events(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        query = "SELECT count(*) FROM requests_auditevent WHERE sequence IS NULL"
        return conn.execute(query).fetchone()[0]


def address(number: int) -> str:
    return f"load-{number}@bench.example"


async def health(client, number):
    return await client.get("/healthz")


async def file_one(client, number):
    body = {"kind": "access", "identity": {"email": address(number)}}
    return await client.post("/api/v1/requests/", json=body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--web-workers", type=int, default=8)
    parser.add_argument("--worker-concurrency", type=int, default=2)
    parser.add_argument("--mail-timeout", type=float, default=1200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    data_dir = Path(tempfile.mkdtemp(prefix="portal-load-"))
    port = free_port()
    results: dict = {}
    try:
        with fresh_database() as database_url, empty_redis_database() as redis_url:
            env = {
                key: value
                for key, value in os.environ.items()
                if not key.startswith(("PORTAL_", "CELERY_", "EMAIL_", "DJANGO_"))
                and key not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG")
            }
            env.update(
                DJANGO_SETTINGS_MODULE="portal.settings",
                PORTAL_DATA_DIR=str(data_dir),
                DATABASE_URL=database_url,
                REDIS_URL=redis_url,
                PORTAL_BASE_URL=f"http://127.0.0.1:{port}",
                SECRET_KEY=uuid.uuid4().hex * 2,
                EMAIL_HOST="127.0.0.1",
                EMAIL_PORT=str(smtp.port),
                PORTAL_THROTTLE_FILE="1000000/hour",
                PORTAL_THROTTLE_FILE_IDENTITY="1000000/hour",
                PYTHONUNBUFFERED="1",
            )
            subprocess.run(
                [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
                cwd=ROOT,
                env=env,
                check=True,
            )
            web = [
                str(BIN / "gunicorn"), "-c", "python:portal.gunicorn_conf",
                "portal.wsgi:application", "--bind", f"127.0.0.1:{port}",
                "--workers", str(args.web_workers), "--backlog", "2048",
            ]  # fmt: skip
            worker = [
                str(BIN / "celery"), "-A", "portal", "worker", "--loglevel", "INFO",
                "--concurrency", str(args.worker_concurrency),
                "--without-gossip", "--without-mingle",
            ]  # fmt: skip
            with (
                running(web, env, data_dir / "web.log") as web_process,
                running(worker, env, data_dir / "worker.log") as worker_process,
            ):
                meter = CpuMeter(web_process.pid, worker_process.pid, database_url)
                wait_for(lambda: answering(port), 120, "gunicorn")
                worker_log = data_dir / "worker.log"
                wait_for(lambda: "ready." in worker_log.read_text(), 120, "the Celery worker")
                base = f"http://127.0.0.1:{port}"
                # Unmeasured: until every web worker has booted and imported the app.
                asyncio.run(load(base, 20 * args.web_workers, args.concurrency, health))
                load_average = os.getloadavg()[0]

                log(f"healthz: {args.count} requests from {args.concurrency} clients")
                before = meter.sample()
                results["healthz"] = asyncio.run(load(base, args.count, args.concurrency, health))
                results["healthz"]["cpu_ms"] = meter.per_request(before, meter.sample(), args.count)
                log(f"healthz: {results['healthz']}")

                log(f"intake: {args.count} filings from {args.concurrency} clients")
                started = time.perf_counter()
                before = meter.sample()
                results["intake"] = asyncio.run(load(base, args.count, args.concurrency, file_one))
                log(f"intake: {results['intake']}")
                filed = results["intake"]["statuses"].get("201", 0)
                wait_for(lambda: inbox.count() >= filed, args.mail_timeout, f"{filed} emails")
                # From the first filing to the last email: the mail is part of a filing's cost.
                results["intake"]["cpu_ms"] = meter.per_request(before, meter.sample(), args.count)
                # Audit events are sealed into the chain by the worker shortly after each commit.
                wait_for(lambda: unsealed_events(database_url) == 0, 60, "the audit sealing")
                last = max(inbox.times) if inbox.times else started
                results["mail"] = {
                    "emails": inbox.count(),
                    "first_filing_to_last_email_s": round(last - started, 2),
                    "after_last_filing_s": round(last - started - results["intake"]["wall_s"], 2),
                    "per_s": round(inbox.count() / (last - started), 1),
                }
                log(f"mail: {results['mail']}")

            with psycopg.connect(database_url) as conn:
                requests_held = conn.execute("SELECT count(*) FROM requests_datarequest").fetchone()
                owed = conn.execute(
                    "SELECT count(*) FROM requests_identityverification WHERE send_pending"
                ).fetchone()
            missing = [n for n in range(args.count) if address(n) not in inbox.by_recipient]
            statuses = results["intake"]["statuses"]
            results["checks"] = {
                "filings_answered_201": filed,
                "server_errors": sum(v for k, v in statuses.items() if k.startswith("5")),
                "other_answers": {k: v for k, v in statuses.items() if k != "201"},
                "requests_in_database": requests_held[0],
                "emails_still_owed": owed[0],
                "addresses_without_email": len(missing),
                "addresses_with_more_than_one": sum(
                    1 for v in inbox.by_recipient.values() if v > 1
                ),
            }
            results["machine"] = {
                "cpus": os.cpu_count(),
                "load_average_before": round(load_average, 2),
                "load_average_after": round(os.getloadavg()[0], 2),
                "python": platform.python_version(),
                "web_workers": args.web_workers,
                "worker_concurrency": args.worker_concurrency,
            }
    finally:
        smtp.stop()
        shutil.rmtree(data_dir, ignore_errors=True)

    checks = results["checks"]
    lost = (
        checks["filings_answered_201"] != args.count
        or checks["server_errors"]
        or checks["requests_in_database"] != args.count
        or checks["emails_still_owed"]
        or checks["addresses_without_email"]
    )
    results["ratio"] = round(results["intake"]["per_s"] / results["healthz"]["per_s"], 2)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        report(results, args)
    sys.exit(1 if lost else 0)


def report(results: dict, args) -> None:
    print("| view | requests | clients | req/s | p50 | p90 | p99 | max | answers |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for name, label in (("healthz", "`GET /healthz`"), ("intake", "`POST /api/v1/requests/`")):
        r = results[name]
        answers = ", ".join(f"{k}: {v}" for k, v in sorted(r["statuses"].items()))
        print(
            f"| {label} | {r['requests']} | {args.concurrency} | {r['per_s']} | {r['p50_ms']} ms "
            f"| {r['p90_ms']} ms | {r['p99_ms']} ms | {r['max_ms']} ms | {answers} |"
        )
    print("\nCPU milliseconds per request, by process (filings: until the last email arrived):\n")
    sides = list(results["healthz"]["cpu_ms"])
    print("| view | " + " | ".join(sides) + " |")
    print("| --- |" + " ---: |" * len(sides))
    for name, label in (("healthz", "`GET /healthz`"), ("intake", "`POST /api/v1/requests/`")):
        cpu = results[name]["cpu_ms"]
        print(f"| {label} | " + " | ".join(f"{cpu[side]}" for side in sides) + " |")
    mail, checks = results["mail"], results["checks"]
    print(
        f"\nIntake throughput is {results['ratio']} of the trivial view's. Emails: "
        f"{mail['emails']} received, the last {mail['first_filing_to_last_email_s']} s after the "
        f"first filing ({mail['after_last_filing_s']} s after the last), {mail['per_s']}/s."
    )
    print(f"Checks: {json.dumps(checks)}")
    print(f"Machine: {json.dumps(results['machine'])}")


if __name__ == "__main__":
    main()
