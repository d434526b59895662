"""Files: a folder whose paths or file names carry the person's identifiers.

The store's URL names the root folder (`file:///srv/uploads`). The root must lie inside one of
the folders in the `allowed_roots` option (the caller passes them: the portal's
PORTAL_FILES_ROOTS); without that option no root is allowed. The root is resolved (links, `..`)
before it is compared, on every use, so neither `file:///srv/uploads/../../etc` nor a link from
inside an allowed folder to /etc is ever read. A collection's `location` is a path
pattern relative to the root, with placeholders naming the collection's fields and `*` or `?` as
wildcards within one path segment:

    collections:
      uploads:
        location: "{customer_id}/"           # a folder per person: every file below it
        fields:
          customer_id: {references: {store: shop, collection: customers, field: id}}
      avatars:
        location: "avatars/{email}.png"
        fields: {email: {identity: email}}
        options: {ignore_case: true}         # every field in any case (emails and names are
                                             # found in any case anyway, unless `match: exact`)
      exports:
        location: "exports/{customer_id}-*.csv"

`find()` yields one dict per file, never reading a file into memory:

    {"path": "12/invoice.pdf", "size": 1024, "modified": "2024-05-01T10:00:00+00:00",
     "customer_id": "12"}

plus "sha256" when the collection's or the store's options say `checksum: true` (read in chunks).

Safety: a value is only ever one path segment. Values that are empty, `.` or `..`, or hold a path
separator or NUL are skipped, so no value can leave the root or reach another person's folder.
Glob characters in values match only themselves. A value holding the character next to its
placeholder, where a wildcard shares the segment, is skipped (with `{customer_id}-*.csv`, the value
`12-3` would match customer 12's files). Symbolic links are never followed or reported: a link can
lead outside the root, and erasing a link would not erase the data it points to.

Messages never name the root or a file: staff and API callers see them, and a path shows where
the portal's data live (file names may also be personal data).

Local file systems have no timeouts; a hung network mount blocks the worker until the OS gives up.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit

from requests.connectors.base import PatternConnector
from requests.engine.store import (
    CheckResult,
    PermanentStoreError,
    StoreError,
    TransientStoreError,
)
from requests.engine.storemap import Collection

# Bytes read at a time for checksums: large enough for few system calls, small enough that memory
# stays flat whatever the file size.
READ_CHUNK = 1024 * 1024

_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_UNSAFE_IN_VALUE = {"/", "\\", "\x00", os.sep, *([os.altsep] if os.altsep else [])}
# Errors that will not go away by retrying: someone must fix the folder or the map.
_PERMANENT_ERRNOS = {errno.ENOENT, errno.ENOTDIR, errno.EACCES, errno.EPERM, errno.ELOOP}


class RootNotAllowed(PermanentStoreError):
    """The store's root is not inside a folder the portal allows for files stores."""


def safe_value(value: str) -> bool:
    """Whether a value can stand for exactly one path segment inside the root."""
    return value not in ("", ".", "..") and not any(ch in value for ch in _UNSAFE_IN_VALUE)


@dataclass(frozen=True)
class _Segment:
    """One segment of a path pattern: alternating literal text and placeholder names."""

    parts: list[str]

    @property
    def placeholders(self) -> list[str]:
        return self.parts[1::2]

    @property
    def literal(self) -> str | None:
        """The segment's name when it has no placeholder and no wildcard."""
        if len(self.parts) == 1 and not _has_wildcard(self.parts[0]):
            return self.parts[0]
        return None

    def names(self, field: str, values: Sequence[str]) -> list[str] | None:
        """The exact names to look up when the segment is only literals and `field`."""
        if self.placeholders != [field] or any(_has_wildcard(p) for p in self.parts[::2]):
            return None
        return [f"{self.parts[0]}{v}{self.parts[2]}" for v in values]

    def delimiters(self, field: str) -> str:
        """Characters a value of `field` must not hold: the ones next to it, when a wildcard or
        another placeholder in the segment could otherwise stretch over them."""
        if field not in self.placeholders:
            return ""
        index = self.parts.index(field)
        before, after = self.parts[:index], self.parts[index + 1 :]
        out = ""
        if before[-1] and (len(before) > 1 or _has_wildcard(before[0])):
            out += before[-1][-1]
        if after[0] and (len(after) > 1 or _has_wildcard(after[0])):
            out += after[0][0]
        return out

    def regex(self, field: str | None, values: Iterable[str], ignore_case: bool) -> re.Pattern:
        out = []
        for i, part in enumerate(self.parts):
            if i % 2 == 0:
                out.append(_glob_to_regex(part))
            elif part == field:
                alternatives = sorted({re.escape(v) for v in values}, key=len, reverse=True)
                out.append(f"(?P<{part}>{'|'.join(alternatives)})")
            else:
                out.append(f"(?P<{part}>.+?)")
        return re.compile("".join(out), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


class PathPattern:
    """A collection's path pattern, checked once: relative, no `..`, placeholders separated."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.folder = pattern.endswith("/")
        raw = pattern.strip("/").split("/") if pattern.strip("/") else []
        if pattern.startswith("/") or not raw or any(s in ("", ".", "..") for s in raw):
            raise PermanentStoreError(
                f"path pattern {pattern!r} must be relative to the root, without '..' or '//'"
            )
        self.segments = [_Segment(_PLACEHOLDER.split(s)) for s in raw]
        names = [name for segment in self.segments for name in segment.placeholders]
        if not names:
            raise PermanentStoreError(f"path pattern {pattern!r} has no {{field}} placeholder")
        if len(set(names)) != len(names):
            raise PermanentStoreError(f"path pattern {pattern!r} repeats a placeholder")
        for segment in self.segments:
            parts = segment.parts
            for i in range(1, len(parts), 2):
                # `{id}*` would find customer 123's files for customer 12.
                if (i > 1 and not parts[i - 1]) or parts[i - 1][-1:] in ("*", "?"):
                    self._adjacent(parts[i])
                if parts[i + 1][:1] in ("*", "?"):
                    self._adjacent(parts[i])
        self.placeholders = names

    def _adjacent(self, name: str) -> None:
        raise PermanentStoreError(
            f"path pattern {self.pattern!r}: put a separator between {{{name}}} "
            "and the wildcard or placeholder next to it"
        )

    def literal_prefix(self) -> str:
        """The folders before the first segment that varies (`avatars` for avatars/{email}.png)."""
        prefix = []
        for segment in self.segments:
            if segment.literal is None:
                break
            prefix.append(segment.literal)
        return "/".join(prefix)

    def personal_depth(self) -> int:
        """How many leading segments hold no placeholder: folders up to there are shared."""
        for depth, segment in enumerate(self.segments):
            if segment.placeholders:
                return depth
        return len(self.segments)

    def matches(self, relative: str, ignore_case: bool) -> bool:
        """Whether a file's relative path is one this pattern finds (for erase and open)."""
        parts = relative.split("/")
        count = len(self.segments)
        if len(parts) < count or (self.folder and len(parts) == count):
            return False
        return all(
            seg.regex(None, (), ignore_case).fullmatch(part)
            for seg, part in zip(self.segments, parts, strict=False)
        )


def _has_wildcard(literal: str) -> bool:
    return "*" in literal or "?" in literal


def _glob_to_regex(literal: str) -> str:
    return "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in literal)


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat()


class FilesConnector(PatternConnector):
    kind = "files"
    concurrent_finds = True  # nothing is held between directory reads
    reads_local_files = True
    can_scan_values = True

    def __init__(self, url, store_map, **kwargs) -> None:
        super().__init__(url, store_map, **kwargs)
        parts = urlsplit(url)
        if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
            raise PermanentStoreError("a files store needs a file:///absolute/folder URL")
        path = unquote(parts.path)
        if not os.path.isabs(path) or "\x00" in path:
            raise PermanentStoreError("a files store needs an absolute folder in its URL")
        self.root = Path(path)
        # Resolved once: the allowed folders are the operator's, not the store's.
        self._allowed = [
            Path(os.path.realpath(folder)) for folder in self.options.get("allowed_roots") or ()
        ]

    def root_allowed(self) -> bool:
        """Whether the root, with its links and `..` resolved as far as they exist, lies inside
        an allowed folder. Checked before anything else, so nothing is learnt of other folders
        (not even whether they exist)."""
        return self._inside_allowed(Path(os.path.realpath(self.root)))

    def _inside_allowed(self, real: Path) -> bool:
        return any(real == folder or folder in real.parents for folder in self._allowed)

    def _refuse_unless_allowed(self, real: Path | None = None) -> None:
        if not (self.root_allowed() if real is None else self._inside_allowed(real)):
            raise RootNotAllowed(
                f"files store {self.name}: the folder is not inside a folder the portal allows "
                "for files stores"
            )

    # -- helpers ------------------------------------------------------------------------------

    def _error(self, exc: OSError, doing: str) -> StoreError:
        """A store error naming the failure, never the file (its name may be personal data)."""
        reason = os.strerror(exc.errno) if exc.errno else type(exc).__name__
        message = f"files store {self.name}: {doing} failed: {reason}"
        if exc.errno in _PERMANENT_ERRNOS:
            return PermanentStoreError(message)
        return TransientStoreError(message)

    def _checksum(self, collection: Collection) -> bool:
        return bool(collection.options.get("checksum", self.options.get("checksum", False)))

    def _real_root(self) -> Path:
        """The root with its links resolved, refused unless inside an allowed folder."""
        self._refuse_unless_allowed()
        try:
            real = self.root.resolve(strict=True)
        except OSError as exc:
            raise self._error(exc, "opening the root folder") from None
        # Again on the resolved path: a link could have changed since the first look.
        self._refuse_unless_allowed(real)
        if not real.is_dir():
            raise PermanentStoreError(f"files store {self.name}: the root is not a folder")
        return real

    def _inside(self, collection: Collection, relative: str) -> Path:
        """The absolute path of a file the collection holds, refusing anything else."""
        pattern = PathPattern(collection.physical_name)
        parts = relative.split("/") if isinstance(relative, str) else []
        if (
            not parts
            or relative.startswith("/")
            or not all(safe_value(part) for part in parts)
            or not pattern.matches(relative, self._ignore_case(collection))
        ):
            raise PermanentStoreError(
                f"collection {collection.name}: refusing a path outside its pattern"
            )
        root = self._real_root()
        path = root.joinpath(*parts)
        # A link anywhere on the way could lead outside the root or into someone else's folder.
        if os.path.realpath(path) != str(path):
            raise PermanentStoreError(
                f"collection {collection.name}: refusing a path that goes through a link"
            )
        return path

    # -- the interface ------------------------------------------------------------------------

    def scan_values(
        self, collection: Collection, field_name: str, *, batch: int
    ) -> Iterator[list[Any]]:
        pattern = PathPattern(collection.physical_name)
        if field_name not in pattern.placeholders:
            return
        index = next(i for i, seg in enumerate(pattern.segments) if field_name in seg.placeholders)
        segment = pattern.segments[index].regex(None, (), False)
        root = self._real_root()
        prefix = pattern.literal_prefix()
        values: list[str] = []
        last = None  # a person's folder holds many files: each value is sent once in a row
        for folder, _, names in os.walk(root / prefix if prefix else root, followlinks=False):
            relative_folder = Path(folder).relative_to(root).as_posix()
            for name in sorted(names):
                relative = name if relative_folder == "." else f"{relative_folder}/{name}"
                if os.path.islink(os.path.join(folder, name)) or not pattern.matches(
                    relative, False
                ):
                    continue
                parsed = segment.fullmatch(relative.split("/")[index])
                if parsed is None or parsed.group(field_name) == last:
                    continue
                last = parsed.group(field_name)
                values.append(last)
                if len(values) >= batch:
                    yield values
                    values = []
        if values:
            yield values

    def refuse_if_not_allowed(self) -> None:
        """Raise RootNotAllowed when the root lies outside the allowed folders."""
        self._refuse_unless_allowed()

    def check(self) -> CheckResult:
        """The root's state, naming no path (a root outside the allowed folders fails)."""
        try:
            root = self._real_root()
        except StoreError as exc:
            return CheckResult(False, str(exc))
        if not os.access(root, os.R_OK | os.X_OK):
            return CheckResult(False, "the root folder is not readable by the portal")
        problems, patterns = self._map_patterns(PathPattern)
        for name, pattern in patterns.items():
            prefix = pattern.literal_prefix()
            if prefix and not (root / prefix).is_dir():
                problems.append(f"collection {name}: folder {prefix}/ does not exist")
        if problems:
            return CheckResult(False, "the root folder has problems", problems)
        warnings = [] if os.access(root, os.W_OK) else ["the root is read-only: erasure will fail"]
        return CheckResult(True, "the root folder is readable", [], warnings)

    def _find(
        self, collection: Collection, field_name: str, values: Sequence[Any], ignore_case: bool
    ) -> Iterator[dict[str, Any]]:
        pattern = PathPattern(collection.physical_name)
        if field_name not in pattern.placeholders:
            raise PermanentStoreError(
                f"collection {collection.name}: {field_name} is not a placeholder of its path"
            )
        segment_of_field = next(s for s in pattern.segments if field_name in s.placeholders)
        delimiters = segment_of_field.delimiters(field_name)
        wanted = sorted(
            {
                v
                for v in (str(v) for v in values if v is not None)
                if safe_value(v) and not any(ch in v for ch in delimiters)
            }
        )
        if not wanted:
            return
        root = self._real_root()
        checksum = self._checksum(collection)
        try:
            for relative, captured, st in self._walk(
                root, pattern, field_name, wanted, ignore_case
            ):
                record = {
                    **captured,
                    "path": relative,
                    "size": st.st_size,
                    "modified": _iso(st.st_mtime),
                }
                if checksum:
                    record["sha256"] = self._sha256(root / relative)
                yield record
        except OSError as exc:
            raise self._error(exc, "reading the folder") from None

    def _walk(self, root: Path, pattern: PathPattern, field: str, values, ignore_case):
        """(relative path, placeholder values, stat) of every file the pattern finds."""
        frontier: list[tuple[list[str], dict[str, str]]] = [([], {})]
        last = len(pattern.segments) - 1
        for depth, segment in enumerate(pattern.segments):
            # Exact names are looked up directly; only a segment that varies lists its folder.
            names: list[str] | None
            if segment.literal is not None:
                names = [segment.literal]
            else:
                names = None if ignore_case else segment.names(field, values)
            regex = segment.regex(field, values, ignore_case)
            next_frontier = []
            for parts, captured in frontier:
                folder = root.joinpath(*parts)
                for name, entry_stat in self._candidates(folder, names):
                    found = regex.fullmatch(name)
                    if found is None:
                        continue
                    here = {**captured, **found.groupdict()}
                    is_dir = stat.S_ISDIR(entry_stat.st_mode)
                    if depth < last or (is_dir and depth == last):
                        if is_dir:
                            next_frontier.append(([*parts, name], here))
                    elif stat.S_ISREG(entry_stat.st_mode) and not pattern.folder:
                        yield "/".join([*parts, name]), here, entry_stat
            frontier = next_frontier
        # What the last segment matched as folders: every file below them belongs to the match.
        for parts, captured in frontier:
            for relative, entry_stat in self._files_below(root, parts):
                yield relative, captured, entry_stat

    def _candidates(self, folder: Path, names: list[str] | None):
        """(name, lstat) of entries in a folder: the given names only, or every entry."""
        if names is not None:
            for name in names:
                try:
                    yield name, os.lstat(folder / name)
                except (FileNotFoundError, NotADirectoryError):
                    continue
            return
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    try:
                        yield entry.name, entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue  # removed while we looked
        except (FileNotFoundError, NotADirectoryError):
            return

    def _files_below(self, root: Path, parts: list[str]):
        stack = [parts]
        while stack:
            current = stack.pop()
            for name, entry_stat in self._candidates(root.joinpath(*current), None):
                if stat.S_ISDIR(entry_stat.st_mode):
                    stack.append([*current, name])
                elif stat.S_ISREG(entry_stat.st_mode):
                    yield "/".join([*current, name]), entry_stat

    def _sha256(self, path: Path) -> str:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            while chunk := handle.read(READ_CHUNK):
                digest.update(chunk)
        return digest.hexdigest()

    def open_file(self, collection: Collection, relative: str) -> BinaryIO:
        """A file of the collection, opened for reading in chunks; the caller closes it."""
        path = self._inside(collection, relative)
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError as exc:
            raise self._error(exc, "opening a file") from None
        return os.fdopen(fd, "rb")

    def erase(self, collection: Collection, paths: Iterable[Any]) -> int:
        """Delete files of the collection and the person's folders they leave empty; returns how
        many files were deleted. Paths outside the collection's pattern are refused."""
        pattern = PathPattern(collection.physical_name)
        shared = pattern.personal_depth()
        root = self._real_root()
        deleted = 0
        for relative in paths:
            if isinstance(relative, tuple | list):
                (relative,) = relative  # a record key of one part, as the finder reports it
            path = self._inside(collection, relative)
            try:
                os.unlink(path)
                deleted += 1
            except FileNotFoundError:
                continue  # already erased: a retried erasure is harmless
            except OSError as exc:
                raise self._error(exc, "deleting a file") from None
            self._prune(root, relative.split("/")[:-1], shared)
        return deleted

    def delete_keys(self, collection: Collection, keys: Sequence[tuple]) -> int:
        """The erasure primitive (requests.engine.store): `erase` by record key."""
        return self.erase(collection, keys)

    def _prune(self, root: Path, folders: list[str], shared: int) -> None:
        # Folders up to `shared` deep (such as `avatars/`) are the store's own, never removed.
        while len(folders) > shared:
            try:
                os.rmdir(root.joinpath(*folders))
            except OSError:
                return  # not empty (or already gone): nothing more to tidy
            folders = folders[:-1]
