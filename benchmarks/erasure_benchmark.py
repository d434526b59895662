"""Erasure benchmark: the engine's store work to erase one person, in a PostgreSQL store of N
customers with 10N orders, next to hand-written SQL deleting the same rows.

    .venv/bin/python benchmarks/erasure_benchmark.py --customers 1000000

It builds (once, with the finder benchmark's generator; reused by later runs unless --rebuild)
a database `dsr_erase_bench_<N>` on the server of BENCH_POSTGRES_URL (default
postgresql://postgres@127.0.0.1:5432/postgres): `customer` (N rows, an index on lower(email)) and
`orders` (10 per customer, spread through the table, indexed on customer_id, with a foreign key
to customer). Erasure consumes people: each run picks people not erased before, and the database
is rebuilt once a tenth of its customers are gone. The map is the one discovery drafts.

It reports:
- warm, per person (1 customer and 10 orders): `erase_person` (the finder, the plan, the
  reference checks and the deletes in one transaction) on an open connector, next to
  hand-written SQL over the same psycopg connection (`BEGIN; SELECT id FROM customer WHERE
  lower(email) = %s; DELETE FROM orders WHERE customer_id = ANY(%s); DELETE FROM customer WHERE
  id = ANY(%s); COMMIT`), a different person each time, interleaved person by person, median and
  95th percentile over --people people each;
- heavy: one person with --heavy orders (made fresh before each repetition), `erase_person`
  next to the same hand-written SQL, median of --repeat repetitions, with the statements the
  engine sent.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from finder_benchmark import DEFAULT_SERVER, build, database_url, email_for, log, machine  # noqa: E402

SEED = 20260202
HASH_KEY = b"benchmark-hash-key"
# Past this share of customers erased, the store no longer looks like the one described.
MAX_ERASED_SHARE = 0.1


def ensure_database(server: str, customers: int, rebuild: bool) -> tuple[str, float]:
    import psycopg

    name = f"dsr_erase_bench_{customers}"
    url = database_url(server, name)
    with psycopg.connect(server, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists and not rebuild:
            try:
                with psycopg.connect(url) as conn:
                    built = conn.execute("SELECT build_seconds FROM bench_meta").fetchone()[0]
                    left = conn.execute("SELECT count(*) FROM customer").fetchone()[0]
                if left >= customers * (1 - MAX_ERASED_SHARE):
                    log(f"{name}: reusing ({customers - left + 1:,} customers erased so far)")
                    return url, built
            except psycopg.Error:
                pass
        if exists:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    return url, build(url, customers, 10, 0)


def pick_people(url: str, customers: int, count: int, rng: random.Random) -> list[int]:
    """Customers still in the store (earlier runs erased some), in random order."""
    import psycopg

    with psycopg.connect(url) as conn:
        wanted = rng.sample(range(1, customers + 1), count * 2)
        found = {
            row[0] for row in conn.execute("SELECT id FROM customer WHERE id = ANY(%s)", (wanted,))
        }
    people = [i for i in wanted if i in found][:count]
    assert len(people) == count, "too few customers left: run with --rebuild"
    return people


def hand_written(raw, email: str) -> int:
    """What a DBA would type: find the person, delete the children, then the person."""
    with raw.transaction(), raw.cursor() as cur:
        cur.execute("SELECT id FROM customer WHERE lower(email) = %s", (email,))
        ids = [row[0] for row in cur.fetchall()]
        cur.execute("DELETE FROM orders WHERE customer_id = ANY(%s)", (ids,))
        deleted = cur.rowcount
        cur.execute("DELETE FROM customer WHERE id = ANY(%s)", (ids,))
        return deleted + cur.rowcount


def stats(values: list[float]) -> dict:
    ordered = sorted(values)
    return {
        "median_ms": statistics.median(ordered) * 1000,
        "p95_ms": ordered[max(0, math.ceil(len(ordered) * 0.95) - 1)] * 1000,
    }


def make_heavy(url: str, orders: int) -> str:
    """A new customer with `orders` orders; returns their email."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        customer = conn.execute("SELECT max(id) + 1 FROM customer").fetchone()[0]
        first = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM orders").fetchone()[0]
        email = f"heavy{customer}@example.com"
        conn.execute(
            "INSERT INTO customer VALUES (%s, %s, 'Heavy', 'Buyer', '+442000000000', now())",
            (customer, email),
        )
        conn.execute(
            "INSERT INTO orders SELECT %s + g, %s, now(), 9.99, 'paid', 'Heavy House' "
            "FROM generate_series(0, %s - 1) g",
            (first, customer, orders),
        )
        conn.execute("ANALYZE orders")
    return email


def count_statements(connector) -> list[int]:
    """A counter of the statements the connector sends to PostgreSQL (the finder's and the
    erasure's, through psycopg's cursors; SQLAlchemy's own go through the same cursors)."""
    import psycopg
    import sqlalchemy as sa

    counter = [0]

    class Counting(psycopg.Cursor):
        def execute(self, *args, **kwargs):
            counter[0] += 1
            return super().execute(*args, **kwargs)

        def stream(self, *args, **kwargs):
            counter[0] += 1
            return super().stream(*args, **kwargs)

    sa.event.listen(
        connector.engine, "connect", lambda raw, _: setattr(raw, "cursor_factory", Counting)
    )
    return counter


def measure(url: str, customers: int, people: int, heavy: int, repeat: int) -> dict:
    from requests.connectors.registry import connector_for
    from requests.engine.discovery import discover
    from requests.engine.erasure import erase_person
    from requests.engine.storemap import StoreMap

    with connector_for("postgresql", url, StoreMap()) as scout:
        store_map = discover(scout)
    connector = connector_for("postgresql", url, store_map, name="bench")
    statements = count_statements(connector)

    def engine(email: str) -> int:
        result = erase_person(
            {"bench": connector}, {"email": email}, store="bench", hash_key=HASH_KEY
        )
        return result.count("deleted")

    def hand(email: str) -> int:
        with connector.driver_connection() as raw:
            return hand_written(raw, email)

    rng = random.Random(SEED + customers + int(time.time()))
    chosen = [email_for(i).lower() for i in pick_people(url, customers, 2 * (people + 20), rng)]
    warmup, chosen = chosen[:40], chosen[40:]
    for index in range(0, 40, 2):  # caches, prepared statements, the connection
        engine(warmup[index])
        hand(warmup[index + 1])
    times: dict[str, list[float]] = {"engine": [], "hand": []}
    for index in range(people):
        pair = [("engine", engine, chosen[2 * index]), ("hand", hand, chosen[2 * index + 1])]
        if index % 2:
            pair.reverse()
        for label, function, email in pair:
            t0 = time.perf_counter()
            deleted = function(email)
            times[label].append(time.perf_counter() - t0)
            assert deleted == 11, (label, deleted)
    warm = {label: stats(values) for label, values in times.items()}
    warm["ratio"] = warm["engine"]["median_ms"] / warm["hand"]["median_ms"]

    heavy_times: dict[str, list[float]] = {"engine": [], "hand": []}
    heavy_statements = []
    for index in range(repeat):
        order = ["engine", "hand"] if index % 2 == 0 else ["hand", "engine"]
        for label in order:
            email = make_heavy(url, heavy)
            before = statements[0]
            t0 = time.perf_counter()
            deleted = engine(email) if label == "engine" else hand(email)
            heavy_times[label].append(time.perf_counter() - t0)
            if label == "engine":
                heavy_statements.append(statements[0] - before)
            assert deleted == heavy + 1, (label, deleted)
    connector.close()
    return {
        "warm": warm,
        "heavy": {
            "engine_s": statistics.median(heavy_times["engine"]),
            "hand_s": statistics.median(heavy_times["hand"]),
            "engine_all_s": heavy_times["engine"],
            "statements": statistics.median(heavy_statements),
        },
    }


def report(results: list[dict], args) -> None:
    print(f"Machine: {machine()}\n")
    print(
        "| customers | orders | engine, one person (median / p95) | hand-written SQL (median / "
        f"p95) | ratio | one person with {args.heavy:,} orders: engine (hand-written) "
        "| statements sent (heavy person) |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        w, h = r["warm"], r["heavy"]
        print(
            f"| {r['customers']:,} | {r['customers'] * 10:,} "
            f"| {w['engine']['median_ms']:.2f} / {w['engine']['p95_ms']:.2f} ms "
            f"| {w['hand']['median_ms']:.2f} / {w['hand']['p95_ms']:.2f} ms "
            f"| {w['ratio']:.2f}x "
            f"| {h['engine_s'] * 1000:.0f} ms ({h['hand_s'] * 1000:.0f} ms) "
            f"| {h['statements']:.0f} |"
        )
    print()
    for r in results:
        print(f"- {r['customers']:,} customers: store built in {r['build_s']:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--people", type=int, default=200, help="people erased by each path")
    parser.add_argument("--heavy", type=int, default=10_000, help="orders of the heavy person")
    parser.add_argument("--repeat", type=int, default=5, help="heavy persons per path")
    parser.add_argument("--rebuild", action="store_true", help="rebuild existing databases")
    args = parser.parse_args()
    results = []
    for customers in args.customers:
        log(f"== {customers:,} customers, {customers * 10:,} orders")
        url, build_s = ensure_database(DEFAULT_SERVER, customers, args.rebuild)
        result = measure(url, customers, args.people, args.heavy, args.repeat)
        result.update(customers=customers, build_s=build_s)
        log(f"  {json.dumps(result)}")
        results.append(result)
    report(results, args)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
