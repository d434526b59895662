"""Mail rate on the embedded default: how fast a real Celery worker on the filesystem broker sends
verification emails, with the portal as `make run` starts it (SQLite, the filesystem broker, the
demo mailbox as the mail backend, `--concurrency 2`).

    .venv/bin/python benchmarks/mail_rate_benchmark.py                     # 200 filings
    .venv/bin/python benchmarks/mail_rate_benchmark.py --count 500
    .venv/bin/python benchmarks/mail_rate_benchmark.py --poll-ms 1000 --prefetch 1  # kombu's and
                                                                           # the old defaults

Needs nothing but the project's environment: a fresh data folder is made and removed.

This process plays the web: it files --count requests through the public API (Django's test
client, in-process, each with its own address) while the worker runs, so each filing queues its
verification email on commit as under gunicorn. It times from the first filing to the moment the
last email is in the demo mailbox (counted in the database every 10 ms), and also the backlog:
with the worker stopped, --count filings are queued first, then the worker is started and timed
from its first email to its last. Results are printed as a Markdown table (JSON with --json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def wait_for(predicate, timeout: float, what: str, every: float = 0.01):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


def environment(data_dir: Path, args) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PORTAL_", "DATABASE_URL", "REDIS_URL", "CELERY_", "EMAIL_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="portal.settings",
        PORTAL_DATA_DIR=str(data_dir),
        PORTAL_THROTTLE_FILE="100000/hour",
        PORTAL_THROTTLE_FILE_IDENTITY="100000/hour",
        PORTAL_BROKER_POLL_MS=str(args.poll_ms),
        PORTAL_WORKER_PREFETCH=str(args.prefetch),
        PYTHONUNBUFFERED="1",
    )
    return env


def start_worker(env: dict[str, str], log_path: Path, concurrency: int) -> subprocess.Popen:
    with log_path.open("a") as out:
        return subprocess.Popen(
            [
                str(BIN / "celery"),
                "-A",
                "portal",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                str(concurrency),
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_worker(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def file_requests(client, count: int, prefix: str) -> float:
    started = time.perf_counter()
    for number in range(count):
        response = client.post(
            "/api/v1/requests/",
            {"kind": "access", "identity": {"email": f"{prefix}{number}@bench.example"}},
            content_type="application/json",
        )
        if response.status_code != 201:
            raise SystemExit(f"filing {number} answered {response.status_code}: {response.content}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes")
    parser.add_argument("--poll-ms", type=int, default=50, help="PORTAL_BROKER_POLL_MS")
    parser.add_argument("--prefetch", type=int, default=8, help="PORTAL_WORKER_PREFETCH")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="portal-mail-bench-"))
    env = environment(data_dir, args)
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    worker_log = data_dir / "worker.log"
    results: dict = {}
    worker = None
    try:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
            cwd=ROOT,
            env=env,
            check=True,
        )
        import django

        django.setup()
        from django.test import Client

        from requests.models import DemoMail

        client = Client()
        sent = DemoMail.objects.count

        # 1. Filing while the worker runs: first filing to last email sent.
        worker = start_worker(env, worker_log, args.concurrency)
        wait_for(lambda: "ready." in worker_log.read_text(), 120, "the worker", every=0.1)
        started = time.perf_counter()
        filing = file_requests(client, args.count, "live")
        wait_for(lambda: sent() >= args.count, args.timeout, f"{args.count} emails")
        live = time.perf_counter() - started
        results["live"] = {
            "count": args.count,
            "filing_s": round(filing, 2),
            "all_sent_s": round(live, 2),
            "emails_per_s": round(args.count / live, 1),
        }
        log(f"live: {results['live']}")
        stop_worker(worker)

        # 2. A backlog: everything queued first, then the worker drains it.
        file_requests(client, args.count, "backlog")
        before = sent()
        worker = start_worker(env, worker_log, args.concurrency)
        wait_for(lambda: sent() > before, 120, "the first email of the backlog")
        first = time.perf_counter()
        wait_for(lambda: sent() >= before + args.count, args.timeout, "the backlog")
        drained = time.perf_counter() - first
        results["backlog"] = {
            "count": args.count,
            "first_to_last_s": round(drained, 2),
            "emails_per_s": round((args.count - 1) / drained, 1),
        }
        log(f"backlog: {results['backlog']}")
    finally:
        if worker is not None:
            stop_worker(worker)
        shutil.rmtree(data_dir, ignore_errors=True)

    results["settings"] = {
        "poll_ms": args.poll_ms,
        "prefetch": args.prefetch,
        "concurrency": args.concurrency,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print("| case | emails | time | emails/s |")
    print("| --- | ---: | ---: | ---: |")
    live, backlog = results["live"], results["backlog"]
    print(
        f"| filed while the worker runs (filing took {live['filing_s']} s) | {live['count']} "
        f"| {live['all_sent_s']} s | {live['emails_per_s']} |"
    )
    print(
        f"| backlog drained (first to last email) | {backlog['count']} "
        f"| {backlog['first_to_last_s']} s | {backlog['emails_per_s']} |"
    )
    print(
        f"\npoll {args.poll_ms} ms, prefetch multiplier {args.prefetch}, worker concurrency "
        f"{args.concurrency}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )


if __name__ == "__main__":
    main()
