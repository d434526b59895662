"""The long run of the ownership property test (tests/engine/test_ownership_properties.py).

    .venv/bin/python benchmarks/ownership_properties.py --sqlite 500 --postgresql 100

Draws that many random schemas with overlapping people per engine, connects each with discovery,
and checks access and erasure against the brute-force oracle (the four invariants of issue 9).
It prints the examples run, the time taken and, on a failure, the smallest failing schema
Hypothesis found; `make test` runs the same property with a bounded number of examples. The
results of the last run are in docs/benchmarks.md. PostgreSQL: TEST_POSTGRES_URL (see
tests/servers.py), default the local server.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sqlite", type=int, default=500, help="examples on SQLite")
    parser.add_argument("--postgresql", type=int, default=100, help="examples on PostgreSQL")
    args = parser.parse_args()

    from hypothesis import HealthCheck, given, settings

    from tests.engine import test_ownership_properties as prop

    failed = False
    for engine, examples, run in (
        ("sqlite", args.sqlite, prop.check_sqlite),
        ("postgresql", args.postgresql, prop.check_postgresql),
    ):
        if not examples:
            continue

        property_holds = settings(
            max_examples=examples,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
            database=None,
        )(given(schema=prop.schemas())(run))

        started = time.monotonic()
        try:
            property_holds()
        except Exception as exc:  # the failing example is printed by Hypothesis
            failed = True
            print(f"{engine}: FAILED after {time.monotonic() - started:.0f} s: {exc!r}")
            continue
        print(f"{engine}: {examples} examples passed in {time.monotonic() - started:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
