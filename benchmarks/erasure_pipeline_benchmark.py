"""Erasure pipeline benchmark: approval to completed through real Celery workers, in a PostgreSQL
store of 1,000,000 customers with 10,000,000 orders.

    .venv/bin/python benchmarks/erasure_pipeline_benchmark.py
    .venv/bin/python benchmarks/erasure_pipeline_benchmark.py --latency 50 --throughput 1000

Needs PostgreSQL (BENCH_POSTGRES_URL, default postgresql://postgres@127.0.0.1:5432/postgres) and
redis-server on the PATH (a private one is started on a free port, so nothing else's queues are
touched).

The store is a copy (CREATE DATABASE ... TEMPLATE) of the finder benchmark's `dsr_bench_1000000`
(`benchmarks/finder_benchmark.py`: customers with an email each, ten orders each spread through
the table, indexed, with a foreign key), built first by that benchmark's code if it does not exist
yet; the copy is dropped at the end, so the finder benchmark's database is never changed. The
map is the one discovery drafts. The portal's own database is a fresh PostgreSQL database,
migrated. Each erasure is of a different customer (1 customer and 10 orders deleted).

This process plays the web: it files and verifies the requests beforehand (their verification
emails are dropped from the queue), then approves them with `request_approve`, as the approve
endpoint does; workers are real `celery worker` processes (`--pool solo`) on the private Redis.

- Latency: one worker; each request approved alone, timed from the call that approves it (its
  own transaction included, as the web's answer would be) until the request's row says
  `completed` (polled every millisecond), which covers the broker's hop to the worker, the job
  (claim, connectors, the engine's erasure in one transaction, the job's result) and the advance
  the same task makes next (the verification sweep, the certificate, the suppression ledger, the
  completion). The completion email goes after that and is not counted.
- Throughput: two workers; --throughput requests approved one after the other as fast as the
  portal approves, from the first approval to the last request completed (emails included:
  the workers send them meanwhile).

Results are printed as a Markdown table (and JSON with --json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager, suppress
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

SERVER = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
CUSTOMERS = 1_000_000
CHILDREN = 10
HEAVY = 100_000  # the finder benchmark's default: its database is reused as is
SEED = 20260415


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(predicate, timeout: float, what: str, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


# --- servers and databases ---------------------------------------------------------------------


@contextmanager
def private_redis(folder: Path):
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not on the PATH")
    import redis

    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(folder)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)

    def pings() -> bool:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    try:
        wait_for(pings, 20, "redis-server")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


@contextmanager
def databases(keep: bool):
    """(store URL, portal URL): a copy of the finder benchmark's store, and an empty portal."""
    import psycopg
    from finder_benchmark import database_url, ensure_database

    template = f"dsr_bench_{CUSTOMERS}"
    try:  # the finder benchmark's database, whatever its heavy customer: never rebuilt here
        with psycopg.connect(database_url(SERVER, template)) as conn:
            customers, children = conn.execute(
                "SELECT customers, children FROM bench_meta"
            ).fetchone()
        if (customers, children) != (CUSTOMERS, CHILDREN):
            raise SystemExit(f"{template} holds {customers} customers x {children}: rebuild it")
        log(f"store: reusing the finder benchmark's {template}")
    except psycopg.OperationalError:
        ensure_database(SERVER, CUSTOMERS, CHILDREN, HEAVY, rebuild=False)
    suffix = f"{os.getpid()}_{uuid.uuid4().hex[:6]}"
    store, portal = f"dsr_erasure_store_{suffix}", f"dsr_erasure_portal_{suffix}"
    with psycopg.connect(SERVER, autocommit=True) as admin:
        t0 = time.perf_counter()
        admin.execute(f'CREATE DATABASE "{store}" TEMPLATE "{template}" STRATEGY FILE_COPY')
        log(f"store: copied {template} in {time.perf_counter() - t0:.1f} s")
        admin.execute(f'CREATE DATABASE "{portal}"')
    try:
        yield database_url(SERVER, store), database_url(SERVER, portal)
    finally:
        if not keep:
            with psycopg.connect(SERVER, autocommit=True) as admin:
                for name in (store, portal):
                    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def workers(env: dict, count: int, folder: Path, queue: str):
    processes = []
    logs = []
    try:
        for n in range(count):
            path = folder / f"worker{len(list(folder.glob('worker*.log')))}-{n}.log"
            logs.append(path)
            with path.open("w") as out:
                processes.append(
                    subprocess.Popen(
                        [str(BIN / "celery"), "-A", "portal", "worker", "--loglevel", "INFO",
                         "--pool", "solo", "-Q", queue, "-n", f"bench{n}-{uuid.uuid4().hex[:4]}@%h",
                         "--without-heartbeat", "--without-gossip", "--without-mingle"],
                        cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )  # fmt: skip
        wait_for(lambda: all("ready." in p.read_text() for p in logs), 60, "the workers", every=0.2)
        yield processes
    finally:
        for process in processes:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


# --- the portal side ----------------------------------------------------------------------------


def setup_django(env: dict) -> None:
    os.environ.update(env)
    import django

    django.setup()


def prepare_requests(count: int, used: set[int]) -> list[int]:
    """File and verify `count` erasures of distinct customers; returns their ids."""
    from finder_benchmark import email_for

    from requests.models import DataRequest
    from requests.services import lifecycle

    rng = random.Random(SEED + len(used))
    ids = []
    while len(ids) < count:
        customer = rng.randint(1, CUSTOMERS)
        if customer in used:
            continue
        used.add(customer)
        filed = lifecycle.request_file(kind="erasure", identity={"email": email_for(customer)})
        lifecycle.request_mark_verified(request=filed, method="code")
        ids.append(filed.pk)
    assert DataRequest.objects.filter(pk__in=ids, status="in_review").count() == count
    return ids


def approve(request_id: int) -> None:
    from requests.models import DataRequest
    from requests.services import lifecycle

    lifecycle.request_approve(request=DataRequest.objects.get(pk=request_id), actor="staff:bench")


def latency(request_ids: list[int], portal_url: str, phases: list | None = None) -> list[float]:
    """Approval to completed, one request at a time. `phases` gets, per request, the seconds
    from the approval's commit to the job's start, of the job, and from the job's end to the
    request's completion (the advance, in the same task: sweep, certificate, ledger,
    completion)."""
    import psycopg

    timings = []
    with psycopg.connect(portal_url, autocommit=True) as conn:
        for n, request_id in enumerate(request_ids, start=1):
            t0 = time.perf_counter()
            approve(request_id)  # commits, then sends the job
            committed = time.time()
            while True:
                (status,) = conn.execute(
                    "SELECT status FROM requests_datarequest WHERE id = %s", (request_id,)
                ).fetchone()
                if status == "completed":
                    break
                if status == "needs_attention" or time.perf_counter() - t0 > 60:
                    raise SystemExit(f"request {request_id} did not complete: {status}")
                time.sleep(0.001)
            timings.append(time.perf_counter() - t0)
            if phases is not None:
                started, finished, closed = conn.execute(
                    "SELECT j.started_at, j.finished_at, r.closed_at FROM requests_job j "
                    "JOIN requests_datarequest r ON r.id = j.request_id WHERE r.id = %s",
                    (request_id,),
                ).fetchone()
                phases.append(
                    (
                        started.timestamp() - committed,
                        (finished - started).total_seconds(),
                        (closed - finished).total_seconds(),
                    )
                )
            if n % 10 == 0:
                log(f"  latency: {n}/{len(request_ids)}, median {statistics.median(timings):.3f} s")
    return timings


def throughput(request_ids: list[int], portal_url: str) -> dict:
    import psycopg

    t0 = time.perf_counter()
    for request_id in request_ids:
        approve(request_id)
    approved = time.perf_counter() - t0
    log(f"  throughput: {len(request_ids)} approved in {approved:.1f} s")
    with psycopg.connect(portal_url, autocommit=True) as conn:

        def done() -> bool:
            (pending, attention) = conn.execute(
                "SELECT count(*) FILTER (WHERE status <> 'completed'), "
                "count(*) FILTER (WHERE status = 'needs_attention') "
                "FROM requests_datarequest WHERE id = ANY(%s)",
                (request_ids,),
            ).fetchone()
            if attention:
                raise SystemExit(f"{attention} request(s) need attention")
            return pending == 0

        wait_for(done, 600, "the throughput run", every=0.02)
    elapsed = time.perf_counter() - t0
    return {"requests": len(request_ids), "seconds": elapsed, "approve_seconds": approved}


def check(store_url: str, request_ids: list[int]) -> dict:
    """Every request completed with a certificate, and exactly its customer and orders gone."""
    import psycopg

    from requests.models import DataRequest, ErasureCertificate, Job

    requests = DataRequest.objects.filter(pk__in=request_ids)
    assert requests.filter(status="completed").count() == len(request_ids)
    assert ErasureCertificate.objects.filter(request__in=requests).count() == len(request_ids)
    deleted = sum(
        job.counts["totals"]["deleted"] for job in Job.objects.filter(request__in=requests)
    )
    with psycopg.connect(store_url) as conn:
        (customers,) = conn.execute("SELECT count(*) FROM customer").fetchone()
    return {"deleted_records": deleted, "customers_left": customers}


# --- the run ------------------------------------------------------------------------------------


def run(args) -> dict:
    results: dict = {
        "machine": f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}",
        "python": platform.python_version(),
        # Other work on the machine (a test run, another benchmark) slows every number.
        "load_before": ", ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    with tempfile.TemporaryDirectory(prefix="erasure-bench-") as tmp:
        folder = Path(tmp)
        with databases(args.keep) as (store_url, portal_url), private_redis(folder) as broker:
            queue = f"bench-{uuid.uuid4().hex[:8]}"
            env = {
                "DJANGO_SETTINGS_MODULE": "portal.settings",
                "DATABASE_URL": portal_url,
                "CELERY_BROKER_URL": broker,
                "PORTAL_QUEUE": queue,
                "PORTAL_DATA_DIR": str(folder / "data"),
                "SECRET_KEY": "erasure-benchmark-secret-key-not-for-production-use-0123456789",
                "PORTAL_BASE_URL": "http://portal.bench",
                "CELERY_TASK_ALWAYS_EAGER": "false",
                "LOG_LEVEL": "WARNING",
                "PYTHONUNBUFFERED": "1",
            }
            subprocess.run(
                [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
                cwd=ROOT, env={**os.environ, **env}, check=True,
            )  # fmt: skip
            setup_django(env)
            from django.conf import settings

            env["PORTAL_ENCRYPTION_KEYS"] = ",".join(settings.PORTAL_ENCRYPTION_KEYS)
            worker_env = {**os.environ, **env}

            from requests.services.stores import store_create

            t0 = time.perf_counter()
            store_create(
                name="shop", kind="postgresql", url=store_url, discover=True, actor="staff:bench"
            )
            log(f"store connected with discovery in {time.perf_counter() - t0:.1f} s")
            used: set[int] = set()
            warmup = prepare_requests(3, used)
            timed = prepare_requests(args.latency, used)
            bulk = prepare_requests(args.throughput, used)
            import redis

            redis.Redis.from_url(broker).delete(queue)  # the verification emails: not measured

            log(f"latency: 1 worker, {args.latency} erasures one at a time")
            with workers(worker_env, 1, folder, queue):
                latency(warmup, portal_url)  # the worker's first job imports SQLAlchemy etc.
                phases: list = []
                timings = latency(timed, portal_url, phases)
            ordered = sorted(timings)
            results["latency"] = {
                "erasures": len(timings),
                "median": statistics.median(timings),
                "to_job_start": statistics.median(p[0] for p in phases),
                "job": statistics.median(p[1] for p in phases),
                "advance": statistics.median(p[2] for p in phases),
                "p95": ordered[max(0, int(len(ordered) * 0.95) - 1)],
                "min": ordered[0],
                "max": ordered[-1],
            }
            log(f"throughput: {args.workers} workers, {args.throughput} erasures")
            with workers(worker_env, args.workers, folder, queue):
                latency(prepare_requests(2, used), portal_url)  # both workers warm
                outcome = throughput(bulk, portal_url)
            outcome["per_second"] = outcome["requests"] / outcome["seconds"]
            outcome["workers"] = args.workers
            results["throughput"] = outcome
            results["check"] = check(store_url, timed + bulk)
            results["customers"] = CUSTOMERS
            results["orders"] = CUSTOMERS * CHILDREN
    results["load_after"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return results


def markdown(results: dict) -> str:
    lat, thr = results["latency"], results["throughput"]
    return "\n".join(
        [
            "| measurement | result | target | Fides 2.78.2 |",
            "| --- | ---: | ---: | ---: |",
            f"| approval to completed, median of {lat['erasures']} (1 worker) | "
            f"{lat['median']:.3f} s (p95 {lat['p95']:.3f} s) | under 0.030 s | 0.53 s |",
            f"| throughput, {thr['requests']:,} erasures ({thr['workers']} workers) | "
            f"{thr['per_second']:.1f} /s ({thr['seconds']:.1f} s) | at least 60 /s | 1.8 /s |",
            "",
            f"Median phases of one erasure: approval's commit to the job's start "
            f"{lat['to_job_start'] * 1000:.1f} ms (broker, claim); the job "
            f"{lat['job'] * 1000:.1f} ms (connectors, finder, one transaction, result); the "
            f"job's end to completed {lat['advance'] * 1000:.1f} ms (the same task: verification "
            f"sweep, certificate, ledger, completion). Load average before the run: "
            f"{results['load_before']}; after: {results['load_after']}.",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=int, default=50, help="erasures timed one at a time")
    parser.add_argument("--throughput", type=int, default=1000, help="erasures in the burst")
    parser.add_argument("--workers", type=int, default=2, help="workers for the throughput run")
    parser.add_argument("--keep", action="store_true", help="keep the databases afterwards")
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = parser.parse_args()
    results = run(args)
    print(markdown(results))
    print(
        f"\n{results['check']['deleted_records']:,} records deleted in all; "
        f"{results['check']['customers_left']:,} customers left; {results['machine']}, "
        f"Python {results['python']}"
    )
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
