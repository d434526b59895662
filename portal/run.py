"""`make run`'s process manager: the web server, the Celery worker and Celery beat of the Procfile.

Each process's lines are printed prefixed with its name, and:

- once the web server answers, it prints the addresses, the demo login and where the demo's mail
  is, as one block apart from the logs (by running `manage.py seed_demo`, which shows the demo
  password only on a terminal, and only when it first creates the login);
- it records the data folder it uses (`portal.env.run_file_write`), so that a later `manage.py`
  command without PORTAL_DATA_DIR opens the same database and keys;
- on SIGTERM or SIGINT it asks each process's main process to stop, and only that process.
  Signalling a process's whole group instead would also kill the Celery worker's pool children
  under it: the worker would then log each child as lost, and its warm shutdown would hang until
  it was killed. Asked alone, the worker stops its children itself and exits cleanly.

Run with `python -m portal.run` from the project folder, with the environment `make run` sets.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
PROCFILE = BASE_DIR / "Procfile"
# How long the web server may take to answer its health check after starting.
START_TIMEOUT = 120.0
# How long each process may take to stop when asked before it is killed.
STOP_TIMEOUT = 30.0

_print_lock = threading.Lock()


def procfile(path: Path = PROCFILE) -> list[tuple[str, str]]:
    entries = []
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, command = line.split(":", 1)
            entries.append((name.strip(), command.strip()))
    return entries


def _say(name: str, text: str) -> None:
    stamp = datetime.now().strftime("%H:%M:%S")
    with _print_lock:
        sys.stdout.write(f"{stamp} {name:<8} | {text}\n")
        sys.stdout.flush()


class Process:
    def __init__(self, name: str, command: str) -> None:
        self.name = name
        # `exec` so that the pid is the program's own, the one that must get the signal; the
        # shell only expands the Procfile's ${VARIABLE:-default}s.
        self.popen = subprocess.Popen(  # noqa: S603 (the project's own Procfile)
            ["/bin/sh", "-c", f"exec {command}"],
            cwd=BASE_DIR,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.pump = threading.Thread(target=self._pump, daemon=True)
        self.pump.start()

    def _pump(self) -> None:
        assert self.popen.stdout is not None
        for raw in self.popen.stdout:
            _say(self.name, raw.decode("utf-8", "replace").rstrip("\n"))

    def running(self) -> bool:
        return self.popen.poll() is None

    def ask_to_stop(self) -> None:
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.popen.pid, signal.SIGTERM)

    def kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (our own address)
            return response.status == 200
    except OSError:
        return False


def _banner() -> None:
    """The addresses and the demo login, printed once the portal answers, apart from the logs."""
    rule = "=" * 72
    with _print_lock:
        sys.stdout.write(f"\n{rule}\nThe portal is running.\n")
        sys.stdout.flush()
        # The command's own stdout is the terminal's, so it can tell whether to show the password.
        subprocess.run(
            [sys.executable, "manage.py", "seed_demo"], cwd=BASE_DIR, check=False, timeout=120
        )
        sys.stdout.write(f"Stop it with Ctrl-C.\n{rule}\n\n")
        sys.stdout.flush()


def main() -> int:
    from portal.env import run_file_write

    data_dir = Path(os.environ.get("PORTAL_DATA_DIR") or BASE_DIR / "var").resolve()
    os.environ["PORTAL_DATA_DIR"] = str(data_dir)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    run_file_write(BASE_DIR, data_dir)

    stopping = threading.Event()

    def _stop(signum, frame) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)

    processes = [Process(name, command) for name, command in procfile()]
    host = os.environ.get("PORTAL_BIND") or "127.0.0.1"
    port = os.environ.get("PORTAL_PORT") or "8000"
    # A server listening on every address is asked on the loopback one.
    local = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
    health = f"http://{local}:{port}/healthz"

    exit_code = 0
    announced = False
    started = time.monotonic()
    while not stopping.is_set():
        ended = [p for p in processes if not p.running()]
        if ended:
            for process in ended:
                _say("system", f"{process.name} exited (code {process.popen.returncode})")
            exit_code = 1
            break
        if not announced:
            if _healthy(health):
                _banner()
                announced = True
            elif time.monotonic() - started > START_TIMEOUT:
                _say("system", f"the web server did not answer {health} in time")
                exit_code = 1
                break
        stopping.wait(0.5)

    _say("system", "stopping")
    for process in processes:
        process.ask_to_stop()
    deadline = time.monotonic() + STOP_TIMEOUT
    for process in processes:
        try:
            process.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _say("system", f"{process.name} did not stop in {STOP_TIMEOUT:.0f} s; killing it")
            exit_code = 1
        else:
            _say("system", f"{process.name} stopped (code {process.popen.returncode})")
        # Anything the process left in its group (a gunicorn or pool worker) goes with it.
        process.kill_group()
        process.popen.wait()
        process.pump.join(timeout=2)
    _say("system", "stopped")
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
