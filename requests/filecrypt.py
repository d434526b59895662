"""Files encrypted at rest in chunks, with the portal's Fernet keys (PORTAL_ENCRYPTION_KEYS).

Access packages may be gigabytes, so a file is encrypted and read back in chunks of CHUNK bytes,
never whole. The layout: MAGIC, then for each chunk a 4-byte big-endian length and the raw Fernet
token (AES-128-CBC + HMAC-SHA256, under the first key; any configured key decrypts, so keys can
rotate). Each chunk's plaintext starts with its index and whether it is the last, so chunks that
were reordered, dropped or cut off are refused rather than read as a different file.
"""

from __future__ import annotations

import base64
import os
import struct
import tempfile
from pathlib import Path
from typing import BinaryIO

from cryptography.fernet import InvalidToken

from requests.crypto import fernet

MAGIC = b"DSRPORTAL-ENC1\n"
# Encrypted files are named so: whether a file must be decrypted is seen from its name.
ENCRYPTED_SUFFIX = ".enc"
CHUNK = 1024 * 1024
_HEADER = struct.Struct(">QB")  # chunk index, last-chunk flag
_LENGTH = struct.Struct(">I")


class EncryptedFileError(ValueError):
    """The file is not a whole encrypted file of ours, or no configured key opens it."""


def encrypt_file(source: Path, target: Path, *, chunk: int = CHUNK) -> None:
    """Write `source` encrypted to `target` (created 0600, complete or not at all)."""
    cipher = fernet()
    fd, staged = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as out, source.open("rb") as plain:
            out.write(MAGIC)
            index = 0
            current = plain.read(chunk)
            while True:
                following = plain.read(chunk)
                last = not following
                token = cipher.encrypt(_HEADER.pack(index, last) + current)
                raw = base64.urlsafe_b64decode(token)
                out.write(_LENGTH.pack(len(raw)) + raw)
                if last:
                    break
                index, current = index + 1, following
            out.flush()
            os.fsync(out.fileno())
        os.replace(staged, target)
    except BaseException:
        Path(staged).unlink(missing_ok=True)
        raise


class DecryptingReader:
    """A read-only binary stream of an encrypted file's plaintext, decrypted chunk by chunk."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._cipher = fernet()
        # The current chunk's plaintext and how much of it was read: slicing from an offset keeps
        # small reads (FileResponse reads 8 KiB at a time) from copying the rest of the chunk.
        self._buffer = b""
        self._offset = 0
        self._next_index = 0
        self._done = False
        try:
            if raw.read(len(MAGIC)) != MAGIC:
                raise EncryptedFileError("not an encrypted portal file")
            # The first chunk now, so a missing key is found when the file is opened, not after
            # a download has started.
            self._next_chunk()
        except BaseException:
            raw.close()
            raise

    def _next_chunk(self) -> None:
        length = self._raw.read(_LENGTH.size)
        if len(length) != _LENGTH.size:
            raise EncryptedFileError("the encrypted file is cut short")
        (size,) = _LENGTH.unpack(length)
        raw = self._raw.read(size)
        if len(raw) != size:
            raise EncryptedFileError("the encrypted file is cut short")
        try:
            plain = self._cipher.decrypt(base64.urlsafe_b64encode(raw))
        except InvalidToken:
            raise EncryptedFileError(
                "a chunk cannot be decrypted with the configured keys"
            ) from None
        index, last = _HEADER.unpack_from(plain)
        if index != self._next_index:
            raise EncryptedFileError("the encrypted file's chunks are out of order")
        self._next_index += 1
        self._done = bool(last)
        self._buffer = self._buffer[self._offset :] + plain[_HEADER.size :]
        self._offset = 0
        if self._done and self._raw.read(1):
            raise EncryptedFileError("the encrypted file has data after its last chunk")

    def read(self, size: int = -1) -> bytes:
        while not self._done and (size < 0 or len(self._buffer) - self._offset < size):
            self._next_chunk()
        end = len(self._buffer) if size < 0 else self._offset + size
        data = self._buffer[self._offset : end]
        self._offset += len(data)
        return data

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> DecryptingReader:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
