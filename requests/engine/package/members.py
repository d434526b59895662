"""ZIP members: one being written (with its size and SHA-256), and unique, safe member names."""

from __future__ import annotations

import hashlib
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass

from requests.engine.package.parts import PartSummary

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]+")


@dataclass
class Member:
    name: str
    size: int
    sha256: str


class MemberWriter:
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


class MemberNames:
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


def take_csv_names(parts: Sequence[PartSummary], names: MemberNames) -> dict[tuple[str, str], str]:
    """Takes the CSV members' names from `names`: the build and the report name them alike."""
    return {
        (part.store, collection.name): names.take(part.store, f"{collection.name}.csv")
        for part in parts
        for collection in part.collections
    }


def csv_member_names(parts: Sequence[PartSummary]) -> dict[tuple[str, str], str]:
    """The CSV member of each (store, collection), as `write_package` will name it."""
    return take_csv_names(parts, MemberNames())
