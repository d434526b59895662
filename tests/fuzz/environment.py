"""The API fuzzer's own virtual environment, outside the project root, from requirements.lock.

Schemathesis depends on the PyPI `requests` library, which the project's app (also named
`requests`) would shadow inside the project; so it lives in a cache folder of its own and runs
with its working directory outside the project. The folder's name carries the lock's digest, so
a changed lock builds a fresh environment. `python tests/fuzz/environment.py` builds it (as
`make test` does) and prints the schemathesis command.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
from pathlib import Path

LOCK = Path(__file__).resolve().with_name("requirements.lock")


def base_python() -> str:
    """The interpreter the project's own environment was made from (not the venv's wrapper)."""
    return getattr(sys, "_base_executable", None) or sys.executable


def environment_dir() -> Path:
    override = os.environ.get("PORTAL_SCHEMATHESIS_VENV")
    if override:
        return Path(override).expanduser().resolve()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()[:12]
    return cache / f"portal-schemathesis-{digest}"


def ensure() -> Path:
    """The schemathesis executable, installing the environment first if it is not there."""
    target = environment_dir()
    executable = target / "bin" / "schemathesis"
    marker = target / ".installed"
    if marker.exists():
        return executable
    target.parent.mkdir(parents=True, exist_ok=True)
    # Several test runs may start at once: one builds, the others wait for it.
    with open(target.parent / f".{target.name}.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        if not marker.exists():
            subprocess.run([base_python(), "-m", "venv", "--clear", str(target)], check=True)
            pip = [str(target / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check"]
            subprocess.run([*pip, "--require-hashes", "-r", str(LOCK)], cwd=target, check=True)
            marker.touch()
    return executable


if __name__ == "__main__":
    print(ensure())
