"""The embedded default sends mail quickly: the filesystem broker is polled often and its single
worker takes several tasks at a time, and the SQLite database commits without syncing the disk
several times per write. Measured in `benchmarks/mail_rate_benchmark.py` (docs/benchmarks.md);
here each setting is checked in a fresh process, as `make run` would read it."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

from kombu import Connection

from tests.processes import ROOT
from tests.test_deploy_check import environment

TRANSPORT = "portal.filesystem_broker:Transport"

PROBE = """
import json, django
django.setup()
from django.conf import settings
from django.db import connection
from kombu.transport import resolve_transport
with connection.cursor() as cursor:
    modes = [cursor.execute(f"PRAGMA {name}").fetchone()[0]
             for name in ("journal_mode", "synchronous")] if connection.vendor == "sqlite" else []
print(json.dumps({
    "broker": settings.CELERY_BROKER_URL,
    "transport": resolve_transport("filesystem").__module__,
    "polling_interval": settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("polling_interval"),
    "prefetch": settings.CELERY_WORKER_PREFETCH_MULTIPLIER,
    "sqlite": modes,
}))
"""


def probe(env: dict[str, str]) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_filesystem_broker_is_polled_every_50_ms_and_prefetches_8_per_process(tmp_path):
    seen = probe(environment(tmp_path))
    assert seen["broker"] == "filesystem://"
    assert seen["transport"] == "portal.filesystem_broker"
    assert seen["polling_interval"] == 0.05
    assert seen["prefetch"] == 8


def test_the_embedded_database_writes_ahead_and_syncs_at_checkpoints(tmp_path):
    seen = probe(environment(tmp_path))
    # journal_mode: "wal"; synchronous 1 is NORMAL (2 would be FULL: several syncs a commit).
    assert seen["sqlite"] == ["wal", 1]


def test_the_polling_and_prefetch_follow_their_settings(tmp_path):
    seen = probe(environment(tmp_path, PORTAL_BROKER_POLL_MS="1000", PORTAL_WORKER_PREFETCH="1"))
    assert seen["polling_interval"] == 1.0 and seen["prefetch"] == 1


def test_server_brokers_keep_one_task_per_process_so_long_jobs_never_hold_others(tmp_path):
    seen = probe(environment(tmp_path, CELERY_BROKER_URL="redis://127.0.0.1:6379/9"))
    assert seen["polling_interval"] is None
    assert seen["prefetch"] == 1


def test_every_message_on_the_filesystem_broker_arrives_whole_while_a_worker_polls_fast(tmp_path):
    # kombu's own transport lets a fast poller take a message file before it is written: the
    # consumer reads an empty file, the message is lost and a Celery worker stops consuming.
    options = {
        "data_folder_in": str(tmp_path),
        "data_folder_out": str(tmp_path),
        "control_folder": str(tmp_path),
        "polling_interval": 0.001,
    }
    count = 1000

    def produce():
        with Connection("filesystem://", transport=TRANSPORT, transport_options=options) as conn:
            queue = conn.SimpleQueue("mail")
            for number in range(count):
                queue.put({"n": number, "padding": "x" * 2000})

    producer = threading.Thread(target=produce)
    producer.start()
    received = []
    with Connection("filesystem://", transport=TRANSPORT, transport_options=options) as conn:
        queue = conn.SimpleQueue("mail")
        while len(received) < count:
            message = queue.get(timeout=30)
            received.append(message.payload["n"])
            message.ack()
    producer.join()
    # Each exactly once (messages filed within the same millisecond may swap places).
    assert sorted(received) == list(range(count))
    assert [path.name for path in tmp_path.iterdir() if path.name.endswith(".msg")] == []
    assert [path.name for path in tmp_path.iterdir() if path.name.endswith(".part")] == []
