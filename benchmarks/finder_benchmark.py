"""Finder benchmark: one person's records in a PostgreSQL store of N customers with 10N orders.

    .venv/bin/python benchmarks/finder_benchmark.py --customers 100000 1000000 --children 10

For each size it builds (once; reused by later runs unless --rebuild) a database `dsr_bench_<N>`
on the server of BENCH_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/postgres):
`customer` (N rows, an email each, one in ten written with capitals) and `orders` (children x N
rows, spread through the table as a real history is, indexed on customer_id), plus one `heavy`
customer with --heavy orders. The map is the one discovery drafts from the live schema.

It reports, per size:
- warm: the finder (connector open, statements cached) next to hand-written SQL fetching the same
  rows (`SELECT * FROM customer WHERE lower(email) = %s`, then `SELECT * FROM orders WHERE
  customer_id = %s`) over the same connection in the same run, interleaved person by person,
  median and 95th percentile over --people people;
- cold: a fresh process loading the map YAML, connecting and finding one person (imports timed
  apart), median of 5 processes;
- peak memory (RSS) of a fresh process that finds all --people people, and of one that streams the
  heavy customer's records to a counting sink.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_SERVER = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
SEED = 20260101


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def database_url(server: str, name: str) -> str:
    base, _, _ = server.rpartition("/")
    return f"{base}/{name}"


def email_for(customer_id: int) -> str:
    """The email a customer typed (one in ten with capitals), as the generator stores it."""
    if customer_id % 10 == 0:
        return f"Customer{customer_id}@Example.com"
    return f"customer{customer_id}@example.com"


# --- building the store ----------------------------------------------------------------------


def ensure_database(
    server: str, customers: int, children: int, heavy: int, rebuild: bool
) -> tuple[str, float]:
    """The database's URL and how long it took to build (now or by an earlier run)."""
    import psycopg

    name = f"dsr_bench_{customers}"
    url = database_url(server, name)
    with psycopg.connect(server, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists and not rebuild:
            try:
                with psycopg.connect(url) as conn:
                    meta = conn.execute(
                        "SELECT customers, children, heavy, build_seconds FROM bench_meta"
                    ).fetchone()
                if meta and tuple(meta[:3]) == (customers, children, heavy):
                    log(f"{name}: reusing (built in {meta[3]:.0f} s)")
                    return url, meta[3]
            except psycopg.Error:
                pass
        if exists:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    return url, build(url, customers, children, heavy)


def build(url: str, customers: int, children: int, heavy: int) -> float:
    import psycopg

    orders = customers * children
    started = time.perf_counter()
    steps = [
        (
            "tables",
            """CREATE TABLE customer (id BIGINT NOT NULL, email TEXT NOT NULL,
                first_name TEXT, last_name TEXT, phone TEXT, created_at TIMESTAMPTZ NOT NULL);
               CREATE TABLE orders (id BIGINT NOT NULL, customer_id BIGINT NOT NULL,
                placed_at TIMESTAMPTZ NOT NULL, total NUMERIC(10, 2) NOT NULL,
                status TEXT NOT NULL, shipping_address TEXT)""",
        ),
        (
            f"{customers:,} customers",
            f"""INSERT INTO customer
                SELECT g,
                       CASE WHEN g % 10 = 0 THEN 'Customer' || g || '@Example.com'
                            ELSE 'customer' || g || '@example.com' END,
                       'First' || g, 'Last' || g, '+4420' || lpad(g::text, 8, '0'),
                       now() - g * interval '1 minute'
                FROM generate_series(1, {customers}) g""",
        ),
        (
            f"{orders:,} orders",
            # Order g belongs to customer (g - 1) % N + 1: each customer's orders are spread
            # through the table, as a history of years is.
            f"""INSERT INTO orders
                SELECT g, (g - 1) % {customers} + 1, now() - g * interval '1 second',
                       (g % 10000) / 100.0, (ARRAY['paid', 'shipped', 'returned'])[g % 3 + 1],
                       g || ' Long Street, Springfield'
                FROM generate_series(1, {orders}) g""",
        ),
        (
            f"heavy customer with {heavy:,} orders",
            f"""INSERT INTO customer VALUES ({customers + 1}, 'heavy@example.com', 'Heavy',
                    'Buyer', '+442000000000', now());
                INSERT INTO orders
                SELECT {orders} + g, {customers + 1}, now() - g * interval '1 second', 9.99,
                       'paid', 'Heavy House'
                FROM generate_series(1, {heavy}) g""",
        ),
        (
            "keys",
            "ALTER TABLE customer ADD PRIMARY KEY (id); ALTER TABLE orders ADD PRIMARY KEY (id)",
        ),
        (
            "indexes",
            "CREATE INDEX customer_email_lower ON customer (lower(email)); "
            "CREATE INDEX orders_customer_id ON orders (customer_id)",
        ),
        (
            "foreign key",
            "ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) "
            "REFERENCES customer (id)",
        ),
        ("vacuum analyze", "VACUUM ANALYZE"),
    ]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '512MB'")
        for label, sql in steps:
            t0 = time.perf_counter()
            conn.execute(sql)
            log(f"  {label}: {time.perf_counter() - t0:.1f} s")
        elapsed = time.perf_counter() - started
        conn.execute(
            "CREATE TABLE bench_meta (customers INT, children INT, heavy INT, build_seconds FLOAT)"
        )
        conn.execute(
            "INSERT INTO bench_meta VALUES (%s, %s, %s, %s)", (customers, children, heavy, elapsed)
        )
    log(f"  built in {elapsed:.0f} s")
    return elapsed


def discovered_map(url: str) -> tuple[str, float]:
    from requests.connectors.registry import connector_for
    from requests.engine.discovery import discover
    from requests.engine.mapfile import dump_store_map
    from requests.engine.storemap import StoreMap

    t0 = time.perf_counter()
    with connector_for("postgresql", url, StoreMap()) as connector:
        draft = discover(connector)
    return dump_store_map(draft), time.perf_counter() - t0


# --- measurements ------------------------------------------------------------------------------


def hand_written(raw, email: str) -> int:
    with raw.cursor() as cur:
        cur.execute("SELECT * FROM customer WHERE lower(email) = %s", (email,))
        customers = cur.fetchall()
        rows = len(customers)
        for customer in customers:
            cur.execute("SELECT * FROM orders WHERE customer_id = %s", (customer[0],))
            rows += len(cur.fetchall())
        return rows


def warm(url: str, map_yaml: str, customers: int, people: int, children: int) -> dict:
    from requests.connectors.registry import connector_for
    from requests.engine.finder import find_person
    from requests.engine.mapfile import load_store_map

    rng = random.Random(SEED)
    ids = rng.sample(range(1, customers + 1), people)
    emails = [email_for(i).lower() for i in ids]  # as the portal's intake normalises them
    connector = connector_for("postgresql", url, load_store_map(map_yaml), name="bench")
    received = [0]

    def sink(record) -> None:
        received[0] += 1

    def finder(email: str) -> int:
        received[0] = 0
        result = find_person({"bench": connector}, {"email": email}, sink=sink)
        assert received[0] == result.total
        return result.total

    def hand(email: str) -> int:
        with connector.driver_connection() as raw:
            return hand_written(raw, email)

    for email in emails[:20]:  # warm both paths: caches, statements, the connection
        finder(email)
        hand(email)
    times: dict[str, list[float]] = {"finder": [], "hand": []}
    for index, email in enumerate(emails):
        order = [("finder", finder), ("hand", hand)]
        if index % 2:
            order.reverse()
        found = {}
        for label, function in order:
            t0 = time.perf_counter()
            found[label] = function(email)
            times[label].append(time.perf_counter() - t0)
        assert found["finder"] == found["hand"] == 1 + children, found
    connector.close()

    def stats(values: list[float]) -> dict:
        ordered = sorted(values)
        return {
            "median_ms": statistics.median(ordered) * 1000,
            "p95_ms": ordered[int(len(ordered) * 0.95) - 1] * 1000,
        }

    out = {label: stats(values) for label, values in times.items()}
    out["ratio"] = out["finder"]["median_ms"] / out["hand"]["median_ms"]
    return out


def child(mode: str, url: str, map_file: str, emails: list[str]) -> None:
    """Runs in a fresh process; prints one JSON line."""
    t_start = time.perf_counter()
    # Imports happen once per worker process, not per job: timed apart from the cold search.
    import psycopg  # noqa: F401
    import sqlalchemy.dialects.postgresql.psycopg  # noqa: F401

    from requests.connectors.registry import connector_for
    from requests.engine.finder import find_person
    from requests.engine.mapfile import load_store_map

    t_imported = time.perf_counter()
    rss_imported = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    resident_imported = _resident_mb()
    text = Path(map_file).read_text()
    records = [0]

    def sink(record) -> None:
        records[0] += 1

    store_map = load_store_map(text)
    with connector_for("postgresql", url, store_map, name="bench") as connector:
        for email in emails:
            records[0] = 0
            t_last = time.perf_counter()
            find_person({"bench": connector}, {"email": email}, sink=sink)
    t_done = time.perf_counter()
    print(
        json.dumps(
            {
                "mode": mode,
                "import_s": t_imported - t_start,
                "run_s": t_done - t_imported,
                "last_s": t_done - t_last,  # the last person alone, on a warm connection
                "records": records[0],
                "rss_imported_mb": rss_imported / 1024,
                "rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "resident_imported_mb": resident_imported,
                "resident_end_mb": _resident_mb(),
            }
        )
    )


def _resident_mb() -> float:
    """The process's resident size now (VmRSS), in MB; 0 where /proc is not there."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def in_child(mode: str, url: str, map_file: str, emails: list[str]) -> dict:
    command = [sys.executable, __file__, "--child", mode, "--url", url, "--map-file", map_file]
    answer = subprocess.run(
        [*command, "--emails", *emails], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return json.loads(answer.stdout.strip().splitlines()[-1])


def machine() -> str:
    import psycopg

    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    with psycopg.connect(DEFAULT_SERVER) as conn:
        server = conn.execute("SHOW server_version").fetchone()[0]
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GB RAM, PostgreSQL {server} on the same "
        f"machine, Python {platform.python_version()}, psycopg {psycopg.__version__} "
        f"(libpq {psycopg.pq.version()})"
    )


def run(args) -> None:
    results = []
    for customers in args.customers:
        log(f"== {customers:,} customers, {customers * args.children:,} orders")
        url, build_s = ensure_database(
            DEFAULT_SERVER, customers, args.children, args.heavy, args.rebuild
        )
        map_yaml, discovery_s = discovered_map(url)
        log(f"  discovery {discovery_s:.2f} s")
        warm_result = warm(url, map_yaml, customers, args.people, args.children)
        log(f"  warm {json.dumps(warm_result)}")
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
            handle.write(map_yaml)
            map_file = handle.name
        try:
            rng = random.Random(SEED + 1)
            cold = [
                in_child("cold", url, map_file, [email_for(rng.randint(1, customers)).lower()])
                for _ in range(5)
            ]
            people = [
                email_for(i).lower()
                for i in random.Random(SEED).sample(range(1, customers + 1), args.people)
            ]
            memory = in_child("people", url, map_file, people)
            # A first person warms the connection, so the heavy one is timed on its own.
            heavy = in_child("heavy", url, map_file, [people[0], "heavy@example.com"])
        finally:
            os.unlink(map_file)
        results.append(
            {
                "customers": customers,
                "orders": customers * args.children,
                "discovery_s": discovery_s,
                "build_s": build_s,
                "warm": warm_result,
                "cold_ms": statistics.median(c["run_s"] for c in cold) * 1000,
                "import_ms": statistics.median(c["import_s"] for c in cold) * 1000,
                "people_rss_mb": memory["rss_peak_mb"],
                "imported_rss_mb": memory["rss_imported_mb"],
                "people_resident": (memory["resident_imported_mb"], memory["resident_end_mb"]),
                "heavy": heavy,
            }
        )
        log(f"  {json.dumps(results[-1])}")
    report(results, args)


def report(results: list[dict], args) -> None:
    print(f"Machine: {machine()}\n")
    print(
        "| customers | orders | warm finder (median / p95) | hand-written SQL (median / p95) "
        "| ratio | cold: load map + connect + find | peak RSS, "
        f"{args.people} people (resident after imports -> at the end) "
        f"| heavy person: {args.heavy:,} orders (time, rate, peak RSS) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        w = r["warm"]
        heavy = r["heavy"]
        rate = heavy["records"] / heavy["last_s"]
        before, after = r["people_resident"]
        print(
            f"| {r['customers']:,} | {r['orders']:,} "
            f"| {w['finder']['median_ms']:.2f} / {w['finder']['p95_ms']:.2f} ms "
            f"| {w['hand']['median_ms']:.2f} / {w['hand']['p95_ms']:.2f} ms "
            f"| {w['ratio']:.2f}x "
            f"| {r['cold_ms']:.0f} ms (+{r['import_ms']:.0f} ms imports) "
            f"| {r['people_rss_mb']:.0f} MB ({before:.1f} -> {after:.1f} MB) "
            f"| {heavy['last_s']:.2f} s, {rate:,.0f} records/s, {heavy['rss_peak_mb']:.0f} MB "
            f"({heavy['resident_imported_mb']:.1f} -> {heavy['resident_end_mb']:.1f} MB) |"
        )
    print()
    for r in results:
        print(
            f"- {r['customers']:,} customers: store built in {r['build_s']:.0f} s; discovery "
            f"of the live schema {r['discovery_s']:.2f} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--children", type=int, default=10, help="orders per customer")
    parser.add_argument("--people", type=int, default=200, help="people searched (warm, memory)")
    parser.add_argument("--heavy", type=int, default=100_000, help="orders of the heavy customer")
    parser.add_argument("--rebuild", action="store_true", help="rebuild existing databases")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--map-file", help=argparse.SUPPRESS)
    parser.add_argument("--emails", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.url, args.map_file, args.emails or [])
    else:
        run(args)


if __name__ == "__main__":
    main()
