"""The ZIP itself: `write_package` builds it from committed parts, `verify_package` checks it."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from requests.engine.package.csv_members import write_csv
from requests.engine.package.data_json import write_data_json
from requests.engine.package.disk import CHUNK, Opener, PackageError, fsync_dir, open_local
from requests.engine.package.members import Member, MemberNames, MemberWriter, take_csv_names
from requests.engine.package.parts import PartSummary

PACKAGE_FORMAT = "dsr-access-package/1"

# Members are written with ZIP64 extensions once the parts are this large, so no member can
# outgrow the classic 4 GiB limit half-way through (small packages stay readable by old tools).
ZIP64_ABOVE = 1024**3
# Fast DEFLATE: the package is written once and downloaded a few times; level 1 is several times
# faster than the default and the JSON and CSV still shrink several fold.
COMPRESS_LEVEL = 1


@dataclass
class PackageResult:
    path: Path
    size: int
    sha256: str
    members: list[Member]
    counts: dict[str, dict[str, int]]
    files: int

    @property
    def records(self) -> int:
        return sum(sum(c.values()) for c in self.counts.values())


def write_package(
    *,
    path: Path,
    parts: Sequence[PartSummary],
    index_html: str,
    meta: Mapping[str, Any] | None = None,
    open_file: Opener = open_local,
) -> PackageResult:
    """Build the ZIP at `path` from committed parts; it appears whole or not at all.

    The parts are read through `open_file`, each one front to back, one at a time."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    staged = path.parent / f".{path.name}.{uuid.uuid4().hex[:12]}.tmp"
    archive = None
    building = _Build(parts, open_file)
    try:
        # Created readable by the portal's user only: it is a copy of someone's personal data.
        os.close(os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        archive = zipfile.ZipFile(
            staged, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL
        )
        building.write(archive, index_html=index_html, meta=meta or {})
        archive.close()
        sha = hashlib.sha256()
        with staged.open("rb+") as written:
            while chunk := written.read(CHUNK):
                sha.update(chunk)
            os.fsync(written.fileno())
        size = staged.stat().st_size
        staged.rename(path)
        fsync_dir(path.parent)
    except BaseException as exc:
        building.discard(archive)
        staged.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise PackageError(
                f"the package could not be written ({exc.strerror or exc})"
            ) from None
        raise
    return PackageResult(
        path=path,
        size=size,
        sha256=sha.hexdigest(),
        members=building.members,
        counts=building.counts,
        files=building.files,
    )


class _Build:
    """The members of one package, written in order; knows which one is open if it fails."""

    def __init__(self, parts: Sequence[PartSummary], open_file: Opener) -> None:
        self.parts = parts
        self.open_file = open_file
        total = sum(p.size or 0 for p in parts)
        self.zip64 = total > ZIP64_ABOVE
        self.names = MemberNames()
        self.csv_names = take_csv_names(parts, self.names)
        self.members: list[Member] = []
        self.counts: dict[str, dict[str, int]] = {}
        self.files = 0
        self._open: MemberWriter | None = None

    def _member(self, archive: zipfile.ZipFile, name: str, *, zip64: bool) -> MemberWriter:
        self._open = MemberWriter(archive, name, zip64=zip64)
        return self._open

    def _close(self, writer: MemberWriter) -> None:
        self.members.append(writer.close())
        self._open = None

    def write(self, archive: zipfile.ZipFile, *, index_html: str, meta: Mapping[str, Any]) -> None:
        writer = self._member(archive, "data.json", zip64=self.zip64)
        write_data_json(writer, self.parts, meta, self.open_file)
        self._close(writer)
        for part in self.parts:
            self.counts[part.store] = part.counts
            with self.open_file(part.path) as source:
                source.readline()
                for collection in part.collections:
                    name = self.csv_names[(part.store, collection.name)]
                    writer = self._member(archive, name, zip64=self.zip64)
                    write_csv(writer, source, collection, part.store)
                    self._close(writer)
            for part_file in part.files:
                segments = [s for s in part_file.path.split("/") if s]
                name = self.names.take(part.store, part_file.collection, "files", *segments)
                writer = self._member(archive, name, zip64=True)
                with self.open_file(part.file_name(part_file)) as source:
                    while chunk := source.read(CHUNK):
                        writer.write_bytes(chunk)
                self._close(writer)
                self.files += 1
        writer = self._member(archive, "index.html", zip64=False)
        writer.write_bytes(index_html.encode("utf-8"))
        self._close(writer)
        manifest = {
            "format": PACKAGE_FORMAT,
            "algorithm": "sha256",
            "files": {m.name: {"size": m.size, "sha256": m.sha256} for m in self.members},
        }
        with archive.open("manifest.json", "w") as out:
            out.write(json.dumps(manifest, ensure_ascii=False, indent=2).encode() + b"\n")

    def discard(self, archive: zipfile.ZipFile | None) -> None:
        """Close what is open after a failure, ignoring further errors: the file is dropped."""
        if self._open is not None:
            with contextlib.suppress(Exception):
                self._open.abandon()
        if archive is not None:
            with contextlib.suppress(Exception):
                archive.close()


def verify_package(path: Path) -> list[str]:
    """What is wrong with a package, checked against its manifest; empty when it is whole."""
    problems = []
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        listed = manifest.get("files", {})
        present = {name for name in archive.namelist() if name != "manifest.json"}
        for name in sorted(present - set(listed)):
            problems.append(f"{name} is not in the manifest")
        for name, expected in listed.items():
            if name not in present:
                problems.append(f"{name} is missing")
                continue
            sha = hashlib.sha256()
            with archive.open(name) as member:
                while chunk := member.read(CHUNK):
                    sha.update(chunk)
            if sha.hexdigest() != expected["sha256"]:
                problems.append(f"{name} does not match its checksum")
    return problems
