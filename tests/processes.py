"""Starting the portal's real processes (web, Celery worker) for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def portal_env(**overrides: str) -> dict[str, str]:
    """The environment of a portal process: this one's, minus test-only settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}
        and not key.startswith("PYTEST")
    }
    env["DJANGO_SETTINGS_MODULE"] = "portal.settings"
    env["CELERY_TASK_ALWAYS_EAGER"] = "false"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(overrides)
    return env


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )


@contextmanager
def running(args: list[str], *, env: dict[str, str], log: Path, ready=None, timeout: float = 60):
    """Run a process for the duration of the block; `ready()` is polled until it returns True."""
    with log.open("w") as out:
        process = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        if ready is not None:
            deadline = time.monotonic() + timeout
            while not ready():
                if process.poll() is not None:
                    raise AssertionError(f"{args[0]} exited early:\n{log.read_text()[-3000:]}")
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"{args[0]} not ready in {timeout}s:\n{log.read_text()[-3000:]}"
                    )
                time.sleep(0.2)
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def celery_worker(env: dict[str, str], log: Path, *extra: str):
    args = [
        str(BIN / "celery"), "-A", "portal", "worker", "--loglevel", "INFO",
        "--without-heartbeat", "--without-gossip", "--without-mingle", *extra,
    ]  # fmt: skip
    return running(args, env=env, log=log, ready=lambda: "ready." in log.read_text())


def web_server(env: dict[str, str], log: Path, port: int):
    args = [
        str(BIN / "gunicorn"), "-c", "python:portal.gunicorn_conf", "portal.wsgi:application",
        "--bind", f"127.0.0.1:{port}",
        "--workers", "2", "--access-logfile", "-",
    ]  # fmt: skip

    def answering() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    return running(args, env=env, log=log, ready=answering)
