"""One store's part: `PartWriter` writes it whole or not at all, `read_part` reads its header."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path, PurePath
from typing import IO, Any

from requests.engine.package.disk import CHUNK, Opener, PackageError, fsync_dir, open_local
from requests.engine.package.encoding import encode_record

PART_FORMAT = "dsr-part/1"
PART_SUFFIX = ".jsonl"

# Records moved from a part to the ZIP at a time: large enough that the per-batch work (one JSON
# parse, one write, one checksum update) is spread thin, small enough that a batch of wide
# records stays a few megabytes.
COPY_BATCH = 5000


@dataclass
class CollectionPart:
    name: str
    count: int
    fields: list[str]


@dataclass
class PartFile:
    """A file of the person's, copied beside the part: `path` as the store names it."""

    collection: str
    path: str
    spooled: str  # name inside the part's files folder


@dataclass
class PartSummary:
    store: str
    path: PurePath  # a file on disk, or a name `open_file` opens
    collections: list[CollectionPart] = field(default_factory=list)
    files: list[PartFile] = field(default_factory=list)
    files_dir: str | None = None
    size: int | None = None  # bytes of the part file, when known

    def file_name(self, part_file: PartFile) -> PurePath:
        """Where one of the person's files lies, beside the part."""
        return self.path.parent / (self.files_dir or "") / part_file.spooled

    @property
    def counts(self) -> dict[str, int]:
        return {c.name: c.count for c in self.collections}

    @property
    def records(self) -> int:
        return sum(c.count for c in self.collections)


class _Spool:
    """One collection's records while a part is being written."""

    __slots__ = ("count", "fields", "file", "last_keys", "path")

    def __init__(self, path: Path) -> None:
        self.path = path
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        self.file: IO[str] = path.open("w", encoding="utf-8", newline="\n", buffering=CHUNK // 4)
        self.count = 0
        self.fields: dict[str, None] = {}
        self.last_keys: Any = None


class PartWriter:
    """Writes one store's part. Use as a context manager; nothing appears unless `commit()` runs.

    with PartWriter(parts_dir / "shop.jsonl", store="shop") as part:
        for record in records:
            part.add(record.collection, record.data)
        summary = part.commit()
    """

    def __init__(self, path: Path, *, store: str) -> None:
        self.path = Path(path)
        self.store = store
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._token = uuid.uuid4().hex[:12]
        self._work = self.path.parent / f".{self.path.name}.{self._token}.tmp"
        self._work.mkdir(mode=0o700)
        self._spools: dict[str, _Spool] = {}
        self._files: list[PartFile] = []
        self._done = False

    def __enter__(self) -> PartWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        if not self._done:
            self.abort()

    def _spool(self, collection: str) -> _Spool:
        spool = self._spools[collection] = _Spool(self._work / f"{len(self._spools)}.jsonl")
        return spool

    def add(self, collection: str, data: Mapping[str, Any]) -> None:
        """One record of `collection`. Kept on disk at once: nothing accumulates in memory."""
        spool = self._spools.get(collection) or self._spool(collection)
        spool.file.write(encode_record(data) + "\n")  # one write per record, not two
        spool.count += 1
        keys = data.keys()
        # Rows of one query share their field names: compare as a set, in C, before looking closer.
        if keys != spool.last_keys:
            for name in keys:
                if name not in spool.fields:
                    spool.fields[name] = None
            spool.last_keys = keys

    def add_many(self, collection: str, records: Iterable[Mapping[str, Any]]) -> int:
        added = 0
        for data in records:
            self.add(collection, data)
            added += 1
        return added

    def attach(self, collection: str, path: str, source: IO[bytes]) -> None:
        """Copy one of the person's files (read from `source` in chunks) into the part."""
        folder = self._work / "files"
        folder.mkdir(exist_ok=True, mode=0o700)
        spooled = f"{len(self._files)}"
        os.close(os.open(folder / spooled, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        with (folder / spooled).open("wb") as out:
            shutil.copyfileobj(source, out, CHUNK)
        self._files.append(PartFile(collection=collection, path=path, spooled=spooled))

    @property
    def counts(self) -> dict[str, int]:
        return {name: spool.count for name, spool in self._spools.items()}

    def commit(self) -> PartSummary:
        """Write the part under a temporary name, flush it to disk and rename it into place."""
        if self._done:
            raise PackageError("this part was already committed or abandoned")
        collections = [
            CollectionPart(name=name, count=spool.count, fields=list(spool.fields))
            for name, spool in self._spools.items()
        ]
        files_dir = f"{self.path.stem}.files-{self._token}" if self._files else None
        header = {
            "format": PART_FORMAT,
            "store": self.store,
            "collections": [c.__dict__ for c in collections],
            "files_dir": files_dir,
            "files": [f.__dict__ for f in self._files],
        }
        staged = self._work / "part"
        try:
            os.close(os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            for spool in self._spools.values():
                spool.file.close()
            with staged.open("wb") as out:
                out.write(json.dumps(header, ensure_ascii=False).encode() + b"\n")
                for spool in self._spools.values():
                    with spool.path.open("rb") as source:
                        shutil.copyfileobj(source, out, CHUNK)
                out.flush()
                os.fsync(out.fileno())
            if files_dir:
                for part_file in self._files:
                    with (self._work / "files" / part_file.spooled).open("rb+") as spooled:
                        os.fsync(spooled.fileno())
                (self._work / "files").rename(self.path.parent / files_dir)
            staged.rename(self.path)
            fsync_dir(self.path.parent)
        except OSError as exc:
            self.abort()
            raise PackageError(
                f"the part for {self.store} could not be written ({exc.strerror or exc})"
            ) from None
        self._done = True
        shutil.rmtree(self._work, ignore_errors=True)
        # Files of earlier runs of this store's job: the new part no longer names them.
        for old in self.path.parent.glob(f"{self.path.stem}.files-*"):
            if old.name != files_dir:
                shutil.rmtree(old, ignore_errors=True)
        return PartSummary(
            store=self.store,
            path=self.path,
            collections=collections,
            files=list(self._files),
            files_dir=files_dir,
            size=self.path.stat().st_size,
        )

    def abort(self) -> None:
        """Drop everything written so far; an earlier committed part stays as it was."""
        self._done = True
        for spool in self._spools.values():
            if not spool.file.closed:
                spool.file.close()
        shutil.rmtree(self._work, ignore_errors=True)


def read_part(
    path: PurePath, *, open_file: Opener = open_local, size: int | None = None
) -> PartSummary:
    """The header of a committed part."""
    name = PurePath(path).name
    try:
        with open_file(path) as source:
            header = json.loads(source.readline())
    except FileNotFoundError:
        raise PackageError(f"the part {name} is missing") from None
    except (OSError, ValueError) as exc:
        raise PackageError(f"the part {name} cannot be read ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != PART_FORMAT:
        raise PackageError(f"the part {name} is not a {PART_FORMAT} file")
    if size is None and open_file is open_local:
        size = Path(path).stat().st_size
    return PartSummary(
        store=header["store"],
        path=path,
        collections=[CollectionPart(**c) for c in header["collections"]],
        files=[PartFile(**f) for f in header.get("files") or []],
        files_dir=header.get("files_dir"),
        size=size,
    )


def read_lines(source: IO[bytes], count: int, what: str) -> Iterable[list[bytes]]:
    remaining = count
    while remaining:
        lines = list(islice(source, min(COPY_BATCH, remaining)))
        if not lines or not lines[-1].endswith(b"\n"):
            raise PackageError(f"the part for {what} ends early")
        remaining -= len(lines)
        yield lines
