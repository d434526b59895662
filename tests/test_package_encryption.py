"""Access packages encrypted at rest (PORTAL_PACKAGE_ENCRYPTION): written in chunks, read back as a
stream, refused whole when tampered with, and downloaded as the very ZIP that was built."""

import hashlib
import io
import json
import os
import zipfile

import pytest
from cryptography.fernet import Fernet

from requests.demo import demo_store_seed
from requests.filecrypt import MAGIC, DecryptingReader, EncryptedFileError, encrypt_file
from requests.models import AccessPackage
from tests.access_fixtures import approve, file_and_verify


def _encrypted(tmp_path, data: bytes, chunk: int = 1000):
    source = tmp_path / "plain.bin"
    source.write_bytes(data)
    target = tmp_path / "plain.bin.enc"
    encrypt_file(source, target, chunk=chunk)
    return target


def _read_all(path, size: int = -1) -> bytes:
    with DecryptingReader(path.open("rb")) as reader:
        if size < 0:
            return reader.read()
        return b"".join(iter(lambda: reader.read(size), b""))


def test_a_file_of_several_chunks_reads_back_the_same_in_small_or_whole_reads(tmp_path):
    data = os.urandom(3500) + b"ada@example.com" + os.urandom(10)
    target = _encrypted(tmp_path, data)
    raw = target.read_bytes()
    assert raw.startswith(MAGIC)
    assert b"ada@example.com" not in raw
    assert _read_all(target) == data
    assert _read_all(target, size=7) == data
    assert target.stat().st_mode & 0o777 == 0o600


def test_an_empty_file_reads_back_empty(tmp_path):
    assert _read_all(_encrypted(tmp_path, b"")) == b""


def _records(raw: bytes) -> list[bytes]:
    body, records = raw[len(MAGIC) :], []
    while body:
        size = int.from_bytes(body[:4], "big")
        records.append(body[: 4 + size])
        body = body[4 + size :]
    return records


@pytest.mark.parametrize("tamper", ["swap", "truncate", "append", "flip", "magic"])
def test_a_tampered_file_is_refused(tmp_path, tamper):
    target = _encrypted(tmp_path, os.urandom(2500))
    raw = target.read_bytes()
    records = _records(raw)
    assert len(records) == 3
    if tamper == "swap":
        raw = MAGIC + records[1] + records[0] + records[2]
    elif tamper == "truncate":
        raw = MAGIC + records[0] + records[1]
    elif tamper == "append":
        raw = raw + records[2]
    elif tamper == "flip":
        raw = raw[:-5] + bytes([raw[-5] ^ 1]) + raw[-4:]
    else:
        raw = b"PK\x03\x04" + raw[4:]
    target.write_bytes(raw)
    with pytest.raises(EncryptedFileError):
        _read_all(target)


def test_files_stay_readable_after_a_key_rotation_and_not_without_their_key(settings, tmp_path):
    old_key = settings.PORTAL_ENCRYPTION_KEYS[0]
    target = _encrypted(tmp_path, b"some personal data")
    settings.PORTAL_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), old_key]
    assert _read_all(target) == b"some personal data"
    settings.PORTAL_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(EncryptedFileError):
        DecryptingReader(target.open("rb"))


@pytest.mark.django_db
def test_an_encrypted_package_is_stored_unreadable_and_downloads_as_the_built_zip(
    settings, staff_api, public_api, file_request, django_capture_on_commit_callbacks
):
    settings.PORTAL_PACKAGE_ENCRYPTION = True
    demo_store_seed()
    reference = file_and_verify(public_api, file_request, email="ada@demo.example")
    assert approve(staff_api, django_capture_on_commit_callbacks, reference)["status"] == (
        "completed"
    )
    package = AccessPackage.objects.get(request__reference=reference)
    stored = settings.DATA_DIR / package.path
    assert stored.name.endswith(".zip.enc")
    raw = stored.read_bytes()
    assert b"ada@demo.example" not in raw and b"PK\x03\x04" not in raw
    assert [p.name for p in stored.parent.iterdir()] == [stored.name], "no plaintext copy left"

    response = staff_api.get(f"/api/v1/staff/requests/{reference}/package/")
    assert response.status_code == 200
    content = b"".join(response.streaming_content)
    assert int(response["Content-Length"]) == len(content) == package.size
    assert hashlib.sha256(content).hexdigest() == package.sha256
    data = json.loads(zipfile.ZipFile(io.BytesIO(content)).read("data.json"))
    assert "ada@demo.example" in json.dumps(data)


@pytest.mark.django_db
def test_without_the_setting_the_package_is_the_plain_zip(
    settings, staff_api, public_api, file_request, django_capture_on_commit_callbacks
):
    settings.PORTAL_PACKAGE_ENCRYPTION = False
    demo_store_seed()
    reference = file_and_verify(public_api, file_request, email="ada@demo.example")
    approve(staff_api, django_capture_on_commit_callbacks, reference)
    package = AccessPackage.objects.get(request__reference=reference)
    assert zipfile.is_zipfile(settings.DATA_DIR / package.path)
