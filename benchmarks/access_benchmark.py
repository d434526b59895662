"""Access package benchmark: one person with 10,000 and with 1,000,000 records in PostgreSQL.

    .venv/bin/python benchmarks/access_benchmark.py                   # 10,000 and 1,000,000
    .venv/bin/python benchmarks/access_benchmark.py --sizes 10000 --repeat 5

Needs PostgreSQL (TEST_POSTGRES_URL, default postgresql://postgres@127.0.0.1:5432/postgres).
It creates two throwaway databases: the store (a shop: customers, invoices, invoice lines, made
with generate_series; 10,000 other customers with 5 invoices of 3 lines each around the person)
and the portal's own database, and drops both at the end.

Each measured run is a child process, the worker: it files and verifies an access request for the
person, then times `request_approve` with Celery tasks run in-process (eager), which is the whole
worker side from approval to the package being ready: the access job (the finder over the store,
the part file) and the finaliser (the ZIP with data.json, the CSVs, index.html, the manifest).
The broker's hop between the two tasks (a few milliseconds) is not included. The worker's peak
memory is its peak resident set size (`ru_maxrss`, read by the parent through RUSAGE_CHILDREN and
by the child itself), shown next to its resident size before approval (Django and the app loaded).

The person's N records: 1 customer, N/10 - 1 invoices and 9N/10 invoice lines.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PERSON = "person@example.com"
OTHER_CUSTOMERS = 10_000

STORE_MAP = """
info:
  purposes: [Selling music]
  legal_basis: contract
  recipients: [Payment processor]
  retention: 10 years
  source: You
collections:
  customers:
    key: [id]
    categories: [contact details]
    fields:
      email: {identity: email}
  invoices:
    key: [id]
    categories: [purchases]
    fields:
      customer_id: {references: {collection: customers, field: id}}
  invoice_lines:
    key: [id]
    categories: [purchases]
    fields:
      invoice_id: {references: {collection: invoices, field: id}}
"""


def _database_url(name: str, driver: str = "postgresql") -> str:
    parts = urlsplit(POSTGRES_URL)
    return f"{driver}://{parts.netloc}/{name}"


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(sql)


def _fill_store(url: str, size: int) -> dict[str, int]:
    """The shop, with the person's `size` records and other customers around them."""
    import psycopg

    invoices = size // 10 - 1
    lines = size - 1 - invoices
    others = OTHER_CUSTOMERS
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            """
            DROP TABLE IF EXISTS invoice_lines, invoices, customers;
            CREATE TABLE customers (
                id integer PRIMARY KEY, email varchar(200) NOT NULL, first_name varchar(80),
                last_name varchar(80), city varchar(80), country varchar(80),
                created_at timestamptz NOT NULL);
            CREATE TABLE invoices (
                id integer PRIMARY KEY, customer_id integer NOT NULL REFERENCES customers (id),
                invoice_date timestamp NOT NULL, billing_address varchar(200),
                billing_city varchar(80), total numeric(10, 2) NOT NULL);
            CREATE TABLE invoice_lines (
                id integer PRIMARY KEY, invoice_id integer NOT NULL REFERENCES invoices (id),
                track_id integer NOT NULL, unit_price numeric(10, 2) NOT NULL,
                quantity integer NOT NULL);
            """
        )
        conn.execute(
            """
            INSERT INTO customers
            SELECT g, CASE WHEN g = 1 THEN %s ELSE 'customer' || g || '@example.com' END,
                   'First' || g, 'Last' || g, 'Paris', 'France',
                   timestamptz '2020-01-01' + g * interval '1 minute'
            FROM generate_series(1, %s) g
            """,
            (PERSON, others + 1),
        )
        # The person's invoices first (ids 1..invoices), then 5 for every other customer.
        conn.execute(
            """
            INSERT INTO invoices
            SELECT g, 1, timestamp '2015-01-01' + g * interval '1 hour',
                   g || ' Rue de la Paix', 'Paris', (g %% 100) + 0.99
            FROM generate_series(1, %s) g
            """,
            (invoices,),
        )
        conn.execute(
            """
            INSERT INTO invoices
            SELECT %s + g, 2 + (g - 1) / 5, timestamp '2016-01-01' + g * interval '1 hour',
                   g || ' Main Street', 'Lyon', (g %% 50) + 0.99
            FROM generate_series(1, %s) g
            """,
            (invoices, others * 5),
        )
        # The person's lines spread over their invoices; 3 lines for every other invoice.
        conn.execute(
            """
            INSERT INTO invoice_lines
            SELECT g, 1 + (g - 1) %% %s, 1 + g %% 3500, 0.99, 1 + g %% 3
            FROM generate_series(1, %s) g
            """,
            (invoices, lines),
        )
        conn.execute(
            """
            INSERT INTO invoice_lines
            SELECT %s + g, %s + 1 + (g - 1) / 3, 1 + g %% 3500, 1.99, 1
            FROM generate_series(1, %s) g
            """,
            (lines, invoices, others * 15),
        )
        conn.execute(
            """
            CREATE INDEX ON customers (lower(email));
            CREATE INDEX ON invoices (customer_id);
            CREATE INDEX ON invoice_lines (invoice_id);
            ANALYZE customers; ANALYZE invoices; ANALYZE invoice_lines;
            """
        )
    return {"customers": 1, "invoices": invoices, "invoice_lines": lines}


def _child_env(portal_db: str, data_dir: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="portal.settings",
        DATABASE_URL=_database_url(portal_db),
        PORTAL_DATA_DIR=str(data_dir),
        CELERY_TASK_ALWAYS_EAGER="true",
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
    )
    return env


def _vm_rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def child(store_url: str, runs: int) -> None:
    """`runs` measured requests, one after the other, in this process (the worker)."""
    import django

    django.setup()
    from django.conf import settings

    from requests.models import AccessPackage, ConnectedStore, Job
    from requests.services import lifecycle

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    # A running worker has its modules imported: import what the first job would, before timing.
    import requests.connectors.registry
    import requests.engine.finder
    import requests.services.access  # noqa: F401

    ConnectedStore.objects.get_or_create(
        name="shop", defaults={"kind": "postgresql", "url": store_url, "map_yaml": STORE_MAP}
    )
    rss_before = _vm_rss_kib()
    results = []
    for _ in range(runs):
        request = lifecycle.request_file(kind="access", identity={"email": PERSON})
        request = lifecycle.request_mark_verified(request=request, method="code")
        started = time.perf_counter()
        lifecycle.request_approve(request=request, actor="staff:benchmark")
        elapsed = time.perf_counter() - started
        request.refresh_from_db()
        package = AccessPackage.objects.get(request=request)
        job = Job.objects.get(request=request)
        results.append(
            {
                "status": request.status,
                "seconds": elapsed,
                "records": package.records,
                "zip_bytes": package.size,
                "job_seconds": (job.finished_at - job.started_at).total_seconds(),
            }
        )
    print(
        json.dumps(
            {
                "runs": results,
                "rss_before_mib": rss_before / 1024,
                "peak_rss_self_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


def _run_child(store_url: str, env: dict[str, str], runs: int) -> dict:
    completed = subprocess.run(
        [sys.executable, __file__, "--child", store_url, "--repeat", str(runs)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise SystemExit(f"the worker failed:\n{completed.stdout}\n{completed.stderr}")
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    # The largest peak of any child waited for so far (sizes run smallest first).
    result["peak_rss_children_mib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.repeat)
        return

    token = uuid.uuid4().hex[:8]
    store_db, portal_db = f"bench_access_store_{token}", f"bench_access_portal_{token}"
    data_dir = Path(tempfile.mkdtemp(prefix="bench-access-"))
    env = _child_env(portal_db, data_dir)
    for name in (store_db, portal_db):
        _admin(f'CREATE DATABASE "{name}"')
    try:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--verbosity", "0"],
            env=env,
            cwd=ROOT,
            check=True,
        )
        store_url = _database_url(store_db, "postgresql+psycopg")
        rows = []
        for size in sorted(args.sizes):
            made = time.perf_counter()
            counts = _fill_store(_database_url(store_db), size)
            print(
                f"{size:>9,} records: store filled in {time.perf_counter() - made:.1f} s {counts}",
                flush=True,
            )
            worker = _run_child(store_url, env, args.repeat)
            runs = worker["runs"]
            for run in runs:
                assert run["status"] == "completed", run
                assert run["records"] == size, run
            seconds = statistics.median(r["seconds"] for r in runs)
            row = {
                "size": size,
                "seconds": seconds,
                "best": min(r["seconds"] for r in runs),
                "job_seconds": statistics.median(r["job_seconds"] for r in runs),
                "records_per_second": size / seconds,
                "zip_mib": runs[0]["zip_bytes"] / 2**20,
                "rss_before_mib": worker["rss_before_mib"],
                "peak_rss_mib": worker["peak_rss_self_mib"],
                "peak_rss_children_mib": worker["peak_rss_children_mib"],
            }
            rows.append(row)
            print(
                f"{size:>9,} records: approval to package ready {seconds:.3f} s median of "
                f"{len(runs)} (best {row['best']:.3f} s; job {row['job_seconds']:.3f} s), "
                f"{row['records_per_second']:,.0f} records/s, ZIP {row['zip_mib']:.1f} MiB, "
                f"worker peak RSS {row['peak_rss_mib']:.0f} MiB "
                f"(before approval {row['rss_before_mib']:.0f} MiB; "
                f"RUSAGE_CHILDREN so far {row['peak_rss_children_mib']:.0f} MiB)",
                flush=True,
            )
        print(
            "\n| person's records | approval to package ready (median) | records/s "
            "| of which the access job | ZIP | worker peak RSS | RSS before approval |"
        )
        print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for row in rows:
            print(
                f"| {row['size']:,} | {row['seconds']:.3f} s | {row['records_per_second']:,.0f} "
                f"| {row['job_seconds']:.3f} s | {row['zip_mib']:.1f} MiB "
                f"| {row['peak_rss_mib']:.0f} MiB | {row['rss_before_mib']:.0f} MiB |"
            )
    finally:
        for name in (store_db, portal_db):
            _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        subprocess.run(["rm", "-rf", str(data_dir)], check=False)


if __name__ == "__main__":
    main()
