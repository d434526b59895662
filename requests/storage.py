"""Where the portal keeps files it writes for later reading: access packages and their parts.

They go through Django's storage API, under the named storage `packages` (settings.STORAGES):

- by default the local file system under PORTAL_DATA_DIR (`PortalFileSystemStorage`): files
  0600, folders 0700, a file replaced by renaming a finished one over it, never half-written;
- with PORTAL_S3_BUCKET, an S3-compatible bucket through django-storages (`PortalS3Storage`), so
  web and workers on different machines share every package and part.

Packages can be gigabytes, so nothing here holds a file whole: a file is written to the local
scratch folder first (`scratch_dir`), then moved (local) or uploaded in parts (S3); reading opens a
stream that is read a chunk at a time, never a copy spooled in memory.
"""

from __future__ import annotations

import errno
import io
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import IO, BinaryIO

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage, storages
from storages.backends.s3 import S3Storage

PACKAGES = "packages"
# What a storage raises when it cannot be used: the disk's errors, or the bucket's.
STORAGE_ERRORS: tuple[type[Exception], ...] = (OSError, BotoCoreError, ClientError)
# Bytes read from a stored file at a time.
READ_CHUNK = 1024 * 1024


def package_storage() -> Storage:
    return storages[PACKAGES]


def scratch_dir() -> Path:
    """A new private folder on this machine's disk for files being built; the caller removes it.

    Under PORTAL_DATA_DIR, so that on the local storage a finished file is moved into place by a
    rename on the same file system rather than copied."""
    root = Path(settings.DATA_DIR) / "scratch"
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=root))  # made 0700


def scratch_remove_stale(*, older_than: float) -> int:
    """Remove scratch folders last changed more than `older_than` seconds ago: left by a worker
    that was killed while building (they hold personal data). Returns how many were removed."""
    root = Path(settings.DATA_DIR) / "scratch"
    if not root.is_dir():
        return 0
    removed = 0
    limit = time.time() - older_than
    for folder in root.iterdir():
        try:
            if folder.is_dir() and folder.stat().st_mtime < limit:
                shutil.rmtree(folder)
                removed += 1
        except FileNotFoundError:  # another process removed it meanwhile
            continue
    return removed


class PortalFileSystemStorage(FileSystemStorage):
    """The local storage: PORTAL_DATA_DIR unless a location is given, files 0600, folders 0700.

    The folder follows settings.DATA_DIR as it is now (not as it was when the storage was first
    used), so a process whose data folder is moved, as tests do, writes to the new one."""

    def __init__(self, location: str | None = None, **kwargs) -> None:
        kwargs.setdefault("file_permissions_mode", 0o600)
        kwargs.setdefault("directory_permissions_mode", 0o700)
        kwargs.setdefault("allow_overwrite", True)
        super().__init__(location=location, **kwargs)

    @property
    def base_location(self) -> str:  # type: ignore[override]
        return str(self._location or settings.DATA_DIR)

    @property
    def location(self) -> str:  # type: ignore[override]
        return os.path.abspath(self.base_location)

    def put_file(self, name: str, source: Path) -> None:
        """Move the finished local file `source` to `name`, replacing what was there at once."""
        target = Path(self.path(name))
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            os.replace(source, target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:  # the scratch folder is on another file system
                raise
            staged = target.with_name(f".{target.name}.incoming")
            shutil.copyfile(source, staged)
            os.replace(staged, target)
            source.unlink()
        target.chmod(0o600)

    def open_stream(self, name: str) -> BinaryIO:
        return open(self.path(name), "rb")

    def delete_tree(self, prefix: str) -> None:
        shutil.rmtree(self.path(prefix), ignore_errors=True)

    def names_under(self, prefix: str) -> list[str]:
        folder = Path(self.path(prefix))
        if not folder.is_dir():
            return []
        found = (path for path in folder.rglob("*") if path.is_file())
        return sorted(f"{prefix}/{path.relative_to(folder).as_posix()}" for path in found)


class _BodyReader(io.RawIOBase):
    """A botocore response body as a raw stream, so io.BufferedReader can give lines and exact
    reads over it while it still comes off the network a chunk at a time."""

    def __init__(self, body) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._body.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


class PortalS3Storage(S3Storage):
    """An S3-compatible bucket (PORTAL_S3_BUCKET): objects replaced whole, never public."""

    def __init__(self, **settings_) -> None:
        settings_.setdefault("file_overwrite", True)
        settings_.setdefault("default_acl", None)
        # Anything read through django-storages' own File rolls over to disk past this size,
        # rather than being held in memory whole (its default).
        settings_.setdefault("max_memory_size", 8 * 1024 * 1024)
        super().__init__(**settings_)

    def key(self, name: str) -> str:
        prefix = (self.location or "").strip("/")
        name = name.lstrip("/")
        return f"{prefix}/{name}" if prefix else name

    def put_file(self, name: str, source: Path) -> None:
        """Upload the finished local file `source` (in parts if large) and remove it."""
        with source.open("rb") as handle:
            self.bucket.Object(self.key(name)).upload_fileobj(handle, Config=self.transfer_config)
        source.unlink()

    def open_stream(self, name: str) -> BinaryIO:
        client = self.connection.meta.client
        try:
            response = client.get_object(Bucket=self.bucket_name, Key=self.key(name))
        except client.exceptions.NoSuchKey:
            raise FileNotFoundError(name) from None
        return io.BufferedReader(_BodyReader(response["Body"]), READ_CHUNK)  # type: ignore[return-value]

    def delete_tree(self, prefix: str) -> None:
        self.bucket.objects.filter(Prefix=self.key(prefix).rstrip("/") + "/").delete()

    def names_under(self, prefix: str) -> list[str]:
        folder = self.key(prefix).rstrip("/") + "/"
        return sorted(
            prefix.rstrip("/") + "/" + item.key[len(folder) :]
            for item in self.bucket.objects.filter(Prefix=folder)
        )


# --- what the services use: the storage's fast paths, or its plain API for any other backend ----


def put_file(name: str, source: Path) -> None:
    """Store the finished local file `source` as `name`, replacing any earlier one; `source` is
    gone afterwards."""
    storage = package_storage()
    if isinstance(storage, PortalFileSystemStorage | PortalS3Storage):
        storage.put_file(name, source)
        return
    if storage.exists(name):
        storage.delete(name)
    with source.open("rb") as handle:
        storage.save(name, File(handle, name=source.name))
    source.unlink()


def open_stream(name: str) -> IO[bytes]:
    """A binary stream of the stored file, read as it is consumed; FileNotFoundError if none."""
    storage = package_storage()
    if isinstance(storage, PortalFileSystemStorage | PortalS3Storage):
        return storage.open_stream(name)
    if not storage.exists(name):
        raise FileNotFoundError(name)
    return storage.open(name, "rb")


def size(name: str) -> int:
    return package_storage().size(name)


def exists(name: str) -> bool:
    return package_storage().exists(name)


def names_under(prefix: str) -> list[str]:
    """Every stored file's name under the folder `prefix`."""
    storage = package_storage()
    if isinstance(storage, PortalFileSystemStorage | PortalS3Storage):
        return storage.names_under(prefix)
    folders, files = storage.listdir(prefix)
    names = [f"{prefix}/{name}" for name in files]
    for folder in folders:
        names.extend(names_under(f"{prefix}/{folder}"))
    return sorted(names)


def delete_tree(prefix: str) -> None:
    """Delete every stored file under the folder `prefix`; nothing there is not an error."""
    storage = package_storage()
    if isinstance(storage, PortalFileSystemStorage | PortalS3Storage):
        storage.delete_tree(prefix)
        return
    for name in names_under(prefix):
        storage.delete(name)
