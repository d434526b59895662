"""Getting started: `make run` itself, in subprocesses on a free port and a temporary data folder.

Once the portal answers it prints the addresses, the demo login and where the demo's mail is, as
one block apart from the logs; SIGTERM stops the web server, the worker and beat cleanly and
quickly; and `manage.py` run afterwards without PORTAL_DATA_DIR opens the same data folder, or
refuses, naming the variable, rather than quietly making a second one with new keys.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.processes import ROOT, free_port, portal_env

# Bounds on a busy machine (two cores shared by many processes); the portal usually starts in
# about 15 s and stops in under 10 s.
START_BOUND = 240.0
STOP_BOUND = 25.0
ERROR_LINE = re.compile(
    r"ERROR|CRITICAL|Traceback|WorkerLostError|exited with 'signal|make: \*\*\*"
)


class MakeRun:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.data_dir = tmp / "data"
        self.run_file = tmp / "portal-run.env"
        self.lines: list[str] = []
        self.banner_seen = threading.Event()
        env = portal_env(
            PORTAL_DATA_DIR=str(self.data_dir),
            PORTAL_PORT=str(self.port),
            PORTAL_RUN_FILE=str(self.run_file),
            PORTAL_WEB_WORKERS="1",
            PORTAL_WORKER_CONCURRENCY="2",
        )
        # The environment is already installed: `-o` keeps make from reinstalling it.
        self.process = subprocess.Popen(
            ["make", "--no-print-directory", "-o", ".venv/bin/.installed", "run"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if line.startswith("Stop it with Ctrl-C."):
                self.banner_seen.set()

    def output(self) -> str:
        return "\n".join(self.lines)

    def stop(self) -> float:
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_BOUND * 2)
        finally:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.reader.join(timeout=5)
        return time.monotonic() - started


@pytest.fixture(scope="module")
def make_run(tmp_path_factory):
    """One `make run` for the module: started, announced, then stopped with SIGTERM."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    run = MakeRun(tmp_path_factory.mktemp("make-run"))
    try:
        announced = run.banner_seen.wait(START_BOUND)
        assert announced, f"make run printed no banner in {START_BOUND:.0f} s:\n{run.output()}"
        # The worker and beat are up too before the stop is asked for.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
            "celery@" in run.output() and "beat: Starting" in run.output()
        ):
            time.sleep(0.2)
        run.stop_seconds = run.stop()
    finally:
        if run.process.poll() is None:
            os.killpg(run.process.pid, signal.SIGKILL)
            run.process.wait()
    return run


def _banner(run: MakeRun) -> list[str]:
    lines = run.lines
    start = lines.index("The portal is running.")
    end = lines.index("Stop it with Ctrl-C.")
    return lines[start : end + 1]


def test_make_run_prints_the_addresses_login_and_mail_after_start_up(make_run):
    base = f"http://127.0.0.1:{make_run.port}"
    banner = "\n".join(_banner(make_run))

    assert f"public page:   {base}/" in banner
    assert f"staff console: {base}/staff/" in banner
    assert f"API schema:    {base}/api/schema/" in banner
    assert f"{base}/staff/mail/" in banner
    assert "user 'dpo'" in banner


def test_the_banner_comes_after_start_up_as_a_block_apart_from_the_logs(make_run):
    lines = make_run.lines
    start = lines.index("The portal is running.")
    # The web server answered before the banner, and no process's line splits the block.
    assert any(" web " in line and "Listening at" in line for line in lines[:start])
    assert all(" | " not in line for line in _banner(make_run))
    assert set(lines[start - 1]) == {"="} and set(
        lines[lines.index("Stop it with Ctrl-C.") + 1]
    ) == {"="}


def test_the_demo_password_is_not_printed_when_the_output_is_not_a_terminal(make_run):
    password = (make_run.data_dir / "demo-staff-password").read_text().strip()

    assert password not in make_run.output()
    assert f"password in {make_run.data_dir / 'demo-staff-password'}" in make_run.output()


def test_sigterm_stops_make_run_quickly_and_without_errors(make_run):
    after_stop = make_run.lines[
        make_run.lines.index(next(line for line in make_run.lines if line.endswith("| stopping"))) :
    ]

    assert make_run.stop_seconds < STOP_BOUND, make_run.output()
    assert not [line for line in make_run.output().splitlines() if ERROR_LINE.search(line)]
    assert any("Warm shutdown" in line for line in after_stop)
    assert after_stop[-1].endswith("| stopped")
    for name in ("web", "worker", "beat"):
        assert any(line.endswith(f"| {name} stopped (code 0)") for line in after_stop), name
    assert not [line for line in after_stop if "did not stop" in line]


def test_no_process_of_make_run_is_left_running(make_run):
    found = subprocess.run(
        ["pgrep", "-f", str(make_run.data_dir)], capture_output=True, text=True, check=False
    )
    assert found.stdout.strip() == ""


def _manage(*args: str, run_file: Path, data_dir: str | None = None):
    env = portal_env(PORTAL_RUN_FILE=str(run_file))
    env.pop("PORTAL_DATA_DIR", None)
    if data_dir:
        env["PORTAL_DATA_DIR"] = data_dir
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_manage_py_without_the_variable_opens_the_folder_make_run_used(make_run):
    password = (make_run.data_dir / "demo-staff-password").read_text().strip()

    shown = _manage("seed_demo", "--show-password", run_file=make_run.run_file)

    assert shown.returncode == 0, shown.stderr
    assert f"password {password!r}" in shown.stdout  # the same login, so the same database
    assert f"PORTAL_DATA_DIR={make_run.data_dir}" in make_run.run_file.read_text()


def test_manage_py_refuses_naming_the_variable_when_that_folder_is_gone(tmp_path):
    gone = tmp_path / "was-here"
    run_file = tmp_path / "portal-run.env"
    run_file.write_text(f"PORTAL_DATA_DIR={gone}\n")

    result = _manage("check", run_file=run_file)

    assert result.returncode == 2
    assert "PORTAL_DATA_DIR" in result.stderr and str(gone) in result.stderr
    assert "Traceback" not in result.stderr
    assert not gone.exists()


def test_the_variable_still_wins_over_the_folder_make_run_recorded(tmp_path):
    run_file = tmp_path / "portal-run.env"
    run_file.write_text(f"PORTAL_DATA_DIR={tmp_path / 'was-here'}\n")
    chosen = tmp_path / "chosen"

    result = _manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.DATA_DIR)",
        run_file=run_file,
        data_dir=str(chosen),
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == str(chosen)
