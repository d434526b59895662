"""The local package storage (PORTAL_DATA_DIR): private files, whole replacement, and no scratch
files left behind by a worker that died while building."""

from __future__ import annotations

import os
import stat

import pytest

from requests import storage
from requests.services import packages


@pytest.fixture
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"
    settings.DATA_DIR.mkdir(mode=0o700)
    return settings.DATA_DIR


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_stored_file_is_private_and_replaces_the_earlier_one_whole(data_dir):
    for content in (b"first", b"second"):
        scratch = storage.scratch_dir()
        (scratch / "part").write_bytes(content)
        storage.put_file("packages/R1/parts/shop.jsonl", scratch / "part")
        assert not (scratch / "part").exists()
    stored = data_dir / "packages" / "R1" / "parts" / "shop.jsonl"
    assert stored.read_bytes() == b"second"
    assert _mode(stored) == 0o600
    assert {_mode(folder) for folder in (stored.parent, stored.parent.parent)} == {0o700}
    with storage.open_stream("packages/R1/parts/shop.jsonl") as stream:
        assert stream.read() == b"second"
    assert storage.names_under("packages/R1") == ["packages/R1/parts/shop.jsonl"]
    storage.delete_tree("packages/R1")
    assert storage.names_under("packages/R1") == []
    with pytest.raises(FileNotFoundError):
        storage.open_stream("packages/R1/parts/shop.jsonl")


@pytest.mark.django_db
def test_the_expiry_sweep_removes_scratch_folders_a_killed_worker_left_but_not_live_ones(
    data_dir, settings
):
    stale, live = storage.scratch_dir(), storage.scratch_dir()
    (stale / "shop.jsonl").write_text('{"email": "ada@example.com"}\n')
    (live / "shop.jsonl").write_text('{"email": "bob@example.com"}\n')
    old = stale.stat().st_mtime - settings.CELERY_TASK_TIME_LIMIT - 60
    os.utime(stale, (old, old))
    assert _mode(stale) == 0o700

    packages.packages_delete_expired()
    assert not stale.exists()
    assert (live / "shop.jsonl").exists()
