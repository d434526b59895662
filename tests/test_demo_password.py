"""`make run`'s seed shows the demo staff password once, on a terminal, and never in a log."""

import os
import pty
import select
import subprocess
import sys
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from tests.processes import ROOT, manage, portal_env


def _seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_seeding_into_a_log_writes_the_password_to_a_private_file_only(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    printed = _seed()
    password_file = tmp_path / "demo-staff-password"
    password = password_file.read_text().strip()
    assert password not in printed
    assert str(password_file) in printed, "the output says where the password is"
    assert password_file.stat().st_mode & 0o777 == 0o600
    assert get_user_model().objects.get(username="dpo").check_password(password)


@pytest.mark.django_db
def test_seeding_again_keeps_the_password_and_shows_it_only_when_asked(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    _seed()
    password = (tmp_path / "demo-staff-password").read_text().strip()
    assert password not in _seed()
    assert f"password {password!r}" in _seed("--show-password")
    assert get_user_model().objects.get(username="dpo").check_password(password)


def _run_on_a_terminal(args: list[str], env: dict[str, str]) -> str:
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        args, cwd=ROOT, env=env, stdin=terminal, stdout=terminal, stderr=terminal
    )
    os.close(terminal)
    output = b""
    try:
        while True:
            ready, _, _ = select.select([controller], [], [], 120)
            if not ready:
                break
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the terminal closed: the command is done
                break
            if not chunk:
                break
            output += chunk
    finally:
        process.wait(timeout=60)
        os.close(controller)
    assert process.returncode == 0, output.decode(errors="replace")
    return output.decode(errors="replace")


@pytest.mark.slow
def test_the_first_seed_on_a_terminal_shows_the_password_once(tmp_path):
    env = portal_env(PORTAL_DATA_DIR=str(tmp_path / "data"))
    manage("migrate", "--no-input", env=env)
    first = _run_on_a_terminal([sys.executable, "manage.py", "seed_demo"], env)
    password = (tmp_path / "data" / "demo-staff-password").read_text().strip()
    assert f"password {password!r}" in first
    second = _run_on_a_terminal([sys.executable, "manage.py", "seed_demo"], env)
    assert password not in second
