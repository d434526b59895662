"""Access packages: the person's records streamed to part files, then to one ZIP (no Django here).

Two steps, so each store's job can run on its own worker and the package is built once at the end:

1. `PartWriter` takes one store's records, in any order, and leaves a part file that appears
   whole or not at all (written under a temporary name, flushed to disk, then renamed over any
   earlier part of the same store). Its first line is a header naming each collection, its record
   count and the union of its field names; then come the records, one JSON document per line,
   grouped by collection in the header's order:

       {"format": "dsr-part/1", "store": "shop", "collections": [
           {"name": "customer", "count": 1, "fields": ["id", "email"]}, ...], "files": [...]}
       {"id": 12, "email": "ada@example.com"}
       ...

   Files a files store holds for the person (`attach`) are copied next to the part, in a folder
   the header names, so a second run never mixes its files with an earlier run's.

2. `write_package` streams the parts into a ZIP (DEFLATE), one member at a time:

   - `data.json`: every record, by store and collection;
   - `<store>/<collection>.csv`: one CSV per collection (UTF-8 with a byte order mark so
     spreadsheets read accents right; the union of the field names as columns; nested values as
     JSON text; text that a spreadsheet would run as a formula is prefixed with `'`);
   - `<store>/<collection>/files/<path>`: the files themselves, when a store holds files;
   - `index.html`: the readable report, rendered by the caller;
   - `manifest.json`: the size and SHA-256 of every other member.

Parts may be read from anywhere (another machine's files through a storage): `read_part` and
`write_package` take an `open_file` that opens a part's or a file's name as a binary stream; by
default it is a path on this machine's disk.

Memory stays flat whatever the number of records: records are only ever held a batch at a time,
and `data.json` is copied from the part files' bytes without decoding them.

Values that JSON has no type for are written as text: dates and times in ISO 8601, decimals
exactly as the store holds them (`"12.50"`), UUIDs as text, and bytes as `{"base64": "..."}`.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import hashlib
import json
import os
import re
import shutil
import uuid
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from itertools import islice
from operator import itemgetter
from pathlib import Path, PurePath
from typing import IO, Any

PART_FORMAT = "dsr-part/1"
PACKAGE_FORMAT = "dsr-access-package/1"
PART_SUFFIX = ".jsonl"

# Records moved from a part to the ZIP at a time: large enough that the per-batch work (one JSON
# parse, one write, one checksum update) is spread thin, small enough that a batch of wide
# records stays a few megabytes.
COPY_BATCH = 5000
# Bytes read or copied at a time for files and spooled records.
CHUNK = 1024 * 1024
# Members are written with ZIP64 extensions once the parts are this large, so no member can
# outgrow the classic 4 GiB limit half-way through (small packages stay readable by old tools).
ZIP64_ABOVE = 1024**3
# Fast DEFLATE: the package is written once and downloaded a few times; level 1 is several times
# faster than the default and the JSON and CSV still shrink several fold.
COMPRESS_LEVEL = 1

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# In a batch of records as this module encodes them (no spaces), a top-level value that is an
# object, a list, true, false or text starting like a formula begins with one of these. Text that
# merely contains one of them only sends its batch down the slower path.
_NOT_PLAIN = re.compile(rb':(?:[tf\[{]|"(?:[=+\-@]|\\[tr]))')
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]+")


# Opens a part's (or a part's file's) name as a binary stream read from the start.
Opener = Callable[[PurePath], IO[bytes]]


def open_local(path: PurePath) -> IO[bytes]:
    return Path(path).open("rb")


class PackageError(Exception):
    """A part or package could not be written or read (disk full, a part missing or damaged)."""


# The types SQL drivers return most, converted without walking the isinstance chain below.
_BY_TYPE: dict[type, Callable[[Any], Any]] = {
    Decimal: str,
    datetime: datetime.isoformat,
    date: date.isoformat,
    time: time.isoformat,
    uuid.UUID: str,
}


def _default(value: Any) -> Any:
    convert = _BY_TYPE.get(value.__class__)
    if convert is not None:
        return convert(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return {"base64": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if isinstance(value, timedelta):
        return value.total_seconds()
    return str(value)


# One encoder for every record: `json.dumps` with options builds a new encoder on each call, and
# even `JSONEncoder.encode` builds its C encoder anew each time; build it once where it exists.
_ENCODER = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), default=_default, check_circular=False
)
_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
if _c_make_encoder is not None:  # pragma: no branch - CPython
    _C_ENCODE = _c_make_encoder(
        None, _default, json.encoder.encode_basestring, None, ":", ",", False, False, True
    )

    def encode_record(value: Any, _encode=_C_ENCODE, _join="".join) -> str:
        """One value as compact JSON text (UTF-8 kept readable, no spaces)."""
        return _join(_encode(value, 0))

else:  # pragma: no cover - other Pythons
    encode_record: Callable[[Any], str] = _ENCODER.encode  # type: ignore[no-redef]


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


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory handles
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
            _fsync_dir(self.path.parent)
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


@dataclass
class Member:
    name: str
    size: int
    sha256: str


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


class _MemberWriter:
    """One ZIP member being written: text is gathered in a list and written in large blocks, and
    the SHA-256 of the member's content is computed on the way."""

    def __init__(self, archive: zipfile.ZipFile, name: str, *, zip64: bool) -> None:
        self.name = name
        self._raw = archive.open(name, "w", force_zip64=zip64)
        self._sha = hashlib.sha256()
        self._chunks: list[str] = []
        self.size = 0
        # csv.writer calls write() once per row: make that a plain list append.
        self.write = self._chunks.append

    def write_bytes(self, data: bytes) -> None:
        self.flush()
        self._sha.update(data)
        self._raw.write(data)
        self.size += len(data)

    def flush(self) -> None:
        if self._chunks:
            data = "".join(self._chunks).encode("utf-8")
            self._chunks.clear()
            self._sha.update(data)
            self._raw.write(data)
            self.size += len(data)

    def close(self) -> Member:
        self.flush()
        self._raw.close()
        return Member(name=self.name, size=self.size, sha256=self._sha.hexdigest())

    def abandon(self) -> None:
        self._chunks.clear()
        self._raw.close()


def safe_member_name(name: str) -> str:
    """A ZIP member name segment that cannot climb out of its folder or upset an unzip tool."""
    cleaned = _UNSAFE_NAME.sub("_", name).strip(" .")
    return cleaned[:120] or "_"


class _MemberNames:
    """Unique member names, compared without case (a package unzipped on macOS or Windows)."""

    def __init__(self) -> None:
        self.used = {"data.json", "index.html", "manifest.json"}

    def take(self, *segments: str) -> str:
        name = "/".join(safe_member_name(s) for s in segments)
        folder, _, last = name.rpartition("/")
        stem, dot, ext = last.rpartition(".") if "." in last else (last, "", "")
        candidate, n = name, 2
        while candidate.lower() in self.used:
            candidate = f"{folder}/{stem}~{n}{dot}{ext}" if folder else f"{stem}~{n}{dot}{ext}"
            n += 1
        self.used.add(candidate.lower())
        return candidate


def _csv_names(parts: Sequence[PartSummary], names: _MemberNames) -> dict[tuple[str, str], str]:
    return {
        (part.store, collection.name): names.take(part.store, f"{collection.name}.csv")
        for part in parts
        for collection in part.collections
    }


def csv_member_names(parts: Sequence[PartSummary]) -> dict[tuple[str, str], str]:
    """The CSV member of each (store, collection), as `write_package` will name it."""
    return _csv_names(parts, _MemberNames())


def _csv_cell(value: Any) -> Any:
    if value is None or value.__class__ in (int, float):
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value.__class__ is str:
        if value.startswith(_FORMULA_START) and not _NUMBER.match(value):
            return "'" + value
        return value
    return encode_record(value)


def _read_lines(source: IO[bytes], count: int, what: str) -> Iterable[list[bytes]]:
    remaining = count
    while remaining:
        lines = list(islice(source, min(COPY_BATCH, remaining)))
        if not lines or not lines[-1].endswith(b"\n"):
            raise PackageError(f"the part for {what} ends early")
        remaining -= len(lines)
        yield lines


def _write_data_json(
    out: _MemberWriter, parts: Sequence[PartSummary], meta: Mapping[str, Any], open_file: Opener
) -> None:
    head = encode_record(dict(meta))
    out.write_bytes(head[:-1].encode() + (b',"stores":{' if meta else b'"stores":{'))
    for s_index, part in enumerate(parts):
        if s_index:
            out.write_bytes(b",")
        out.write_bytes(b"\n" + encode_record(part.store).encode() + b":{")
        with open_file(part.path) as source:
            source.readline()  # the header
            for c_index, collection in enumerate(part.collections):
                prefix = b"," if c_index else b""
                out.write_bytes(prefix + b"\n" + encode_record(collection.name).encode() + b":[")
                first = True
                for lines in _read_lines(source, collection.count, part.store):
                    # A record is one line and JSON text never holds a raw newline, so turning
                    # the newlines into commas joins the records without decoding them.
                    block = b"".join(lines)[:-1].replace(b"\n", b",\n")
                    out.write_bytes((b"\n" if first else b",\n") + block)
                    first = False
                out.write_bytes(b"\n]")
        out.write_bytes(b"}")
    out.write_bytes(b"\n}}\n")


def _write_csv(
    out: _MemberWriter, source: IO[bytes], collection: CollectionPart, store: str
) -> None:
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    fields = collection.fields
    writer.writerow(fields)
    if len(fields) == 1:
        only = fields[0]

        def row(record):
            return (record[only],)
    else:
        row = itemgetter(*fields)
    for lines in _read_lines(source, collection.count, store):
        raw = b"".join(lines)
        try:
            records = json.loads(b"[" + raw[:-1].replace(b"\n", b",") + b"]")
        except ValueError:
            raise PackageError(f"the part for {store} is damaged") from None
        rows = None
        if fields and _NOT_PLAIN.search(raw) is None:
            # Numbers, null and safe text only: the csv module writes them as they are.
            try:
                rows = list(map(row, records))
            except KeyError:  # some records lack a field: fill the gaps below
                rows = None
        if rows is None:
            rows = [[_csv_cell(record.get(name)) for name in fields] for record in records]
        writer.writerows(rows)
        out.flush()


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
        _fsync_dir(path.parent)
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
        self.names = _MemberNames()
        self.csv_names = _csv_names(parts, self.names)
        self.members: list[Member] = []
        self.counts: dict[str, dict[str, int]] = {}
        self.files = 0
        self._open: _MemberWriter | None = None

    def _member(self, archive: zipfile.ZipFile, name: str, *, zip64: bool) -> _MemberWriter:
        self._open = _MemberWriter(archive, name, zip64=zip64)
        return self._open

    def _close(self, writer: _MemberWriter) -> None:
        self.members.append(writer.close())
        self._open = None

    def write(self, archive: zipfile.ZipFile, *, index_html: str, meta: Mapping[str, Any]) -> None:
        writer = self._member(archive, "data.json", zip64=self.zip64)
        _write_data_json(writer, self.parts, meta, self.open_file)
        self._close(writer)
        for part in self.parts:
            self.counts[part.store] = part.counts
            with self.open_file(part.path) as source:
                source.readline()
                for collection in part.collections:
                    name = self.csv_names[(part.store, collection.name)]
                    writer = self._member(archive, name, zip64=self.zip64)
                    _write_csv(writer, source, collection, part.store)
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
