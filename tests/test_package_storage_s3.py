"""Access packages in an S3-compatible bucket (PORTAL_S3_BUCKET), against a real S3 server.

The tests start moto in server mode on a free local port and the portal talks HTTP to it through
django-storages and boto3, as it would to any bucket: parts and packages are written there, read
back as streams, downloaded through the API from a machine that never saw them on disk, and
deleted at expiry.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
import tracemalloc
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from django.utils import timezone

from requests import storage
from requests.engine.package import verify_package
from requests.models import AccessPackage, Job
from requests.services import access, packages, processing
from tests.access_fixtures import approve, data_json, file_and_verify, open_zip
from tests.processes import free_port
from tests.servers import IN_CI
from tests.test_access_multistore import SHOP_MAP, SHOP_SQL, UPLOADS_MAP

pytestmark = pytest.mark.django_db

MOTO_SERVER = Path(sys.executable).parent / "moto_server"


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory):
    """A moto S3 server of this test module's own, on a free port of the loopback address."""
    if not MOTO_SERVER.exists():
        message = "moto_server is not installed (pip install 'moto[server]'); it is the S3 server"
        if IN_CI:
            pytest.fail(f"{message} (CI=true: tests may not skip)")
        pytest.skip(message)
    port = free_port()
    folder = tmp_path_factory.mktemp("moto")
    # Run outside the repository: moto imports the PyPI `requests` library, which the portal's
    # own `requests` app would shadow from the repository's folder.
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "DJANGO_SETTINGS_MODULE"}}
    log = (folder / "moto.log").open("w")
    process = subprocess.Popen(
        [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)],
        cwd=folder,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise AssertionError(
                    f"moto_server did not start:\n{(folder / 'moto.log').read_text()[-2000:]}"
                ) from None
            time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


@pytest.fixture
def bucket(s3_endpoint, settings, tmp_path):
    """A fresh bucket, made the portal's package storage; yields a boto3 Bucket to look into."""
    import boto3

    name = f"packages-{uuid.uuid4().hex[:12]}"
    options = {
        "bucket_name": name,
        "location": "portal",
        "endpoint_url": s3_endpoint,
        "region_name": "us-east-1",
        "access_key": "test-key",
        "secret_key": "test-secret",
        "addressing_style": "path",
    }
    resource = boto3.resource(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="test-key",
        aws_secret_access_key="test-secret",
    )
    resource.create_bucket(Bucket=name)
    settings.DATA_DIR = tmp_path / "web"
    settings.DATA_DIR.mkdir(mode=0o700)
    settings.STORAGES = {
        **settings.STORAGES,
        "packages": {"BACKEND": "requests.storage.PortalS3Storage", "OPTIONS": options},
    }
    assert isinstance(storage.package_storage(), storage.PortalS3Storage)
    return resource.Bucket(name)


def _keys(bucket) -> list[str]:
    return sorted(item.key for item in bucket.objects.all())


@pytest.fixture
def stores(postgres_database, tmp_path, staff_api):
    """A shop in PostgreSQL and an uploads folder of files keyed by the shop's customer id."""
    engine = sa.create_engine(postgres_database)
    with engine.begin() as conn:
        for statement in SHOP_SQL:
            conn.execute(sa.text(statement))
    engine.dispose()
    uploads = tmp_path / "uploads"
    for relative, content in [
        ("12/passport.png", b"ada's passport"),
        ("12/letters/complaint.pdf", b"ada's letter"),
        ("123/id.png", b"bob's id"),
    ]:
        (uploads / relative).parent.mkdir(parents=True, exist_ok=True)
        (uploads / relative).write_bytes(content)
    for name, kind, url, map_yaml in [
        ("shop", "postgresql", postgres_database, SHOP_MAP),
        ("uploads", "files", uploads.as_uri(), UPLOADS_MAP),
    ]:
        response = staff_api.post(
            "/api/v1/staff/stores/",
            {"name": name, "kind": kind, "url": url, "map": map_yaml},
            format="json",
        )
        assert response.status_code == 201, response.content


def _download(staff_api, reference: str) -> bytes:
    response = staff_api.get(f"/api/v1/staff/requests/{reference}/package/")
    assert response.status_code == 200, response.content
    assert response.streaming, "the package is streamed, not built in memory"
    content = b"".join(response.streaming_content)
    assert int(response["Content-Length"]) == len(content)
    return content


def test_a_package_is_built_into_the_bucket_and_downloads_through_the_api_on_another_machine(
    bucket, stores, public_api, file_request, staff_api, django_capture_on_commit_callbacks,
    settings, tmp_path,
):  # fmt: skip
    reference = file_and_verify(public_api, file_request, email="ada@example.com")
    assert approve(staff_api, django_capture_on_commit_callbacks, reference)["status"] == (
        "completed"
    )
    package = AccessPackage.objects.get(request__reference=reference)
    # Only the package is left in the bucket: the parts (and the uploads' files beside them)
    # were stored there by the jobs, read by the finaliser, then removed.
    assert _keys(bucket) == [f"portal/packages/{reference}/package.zip"]
    assert package.path == f"packages/{reference}/package.zip"
    assert not (tmp_path / "web" / "packages").exists(), "nothing was kept on the local disk"
    assert not any((tmp_path / "web" / "scratch").iterdir()), "the scratch files were removed"

    # A web server on another machine: its own empty data folder, the same bucket.
    settings.DATA_DIR = tmp_path / "another-machine"
    content = _download(staff_api, reference)
    assert len(content) == package.size
    assert hashlib.sha256(content).hexdigest() == package.sha256
    zipped = tmp_path / "downloaded.zip"
    zipped.write_bytes(content)
    assert verify_package(zipped) == []
    archive = open_zip(content)
    data = data_json(archive)
    assert [o["id"] for o in data["stores"]["shop"]["orders"]] == [1001, 1002]
    assert archive.read("uploads/files/files/12/passport.png") == b"ada's passport"
    assert archive.read("uploads/files/files/12/letters/complaint.pdf") == b"ada's letter"
    assert b"bob's id" not in content


def test_an_encrypted_package_is_stored_unreadable_in_the_bucket_and_downloads_as_built(
    bucket, stores, public_api, file_request, staff_api, django_capture_on_commit_callbacks,
    settings,
):  # fmt: skip
    settings.PORTAL_PACKAGE_ENCRYPTION = True
    reference = file_and_verify(public_api, file_request, email="ada@example.com")
    approve(staff_api, django_capture_on_commit_callbacks, reference)
    package = AccessPackage.objects.get(request__reference=reference)
    assert _keys(bucket) == [f"portal/packages/{reference}/package.zip.enc"]
    raw = bucket.Object(f"portal/packages/{reference}/package.zip.enc").get()["Body"].read()
    assert b"ada@example.com".lower() not in raw.lower() and b"PK\x03\x04" not in raw
    content = _download(staff_api, reference)
    assert hashlib.sha256(content).hexdigest() == package.sha256
    assert "Ada@Example.com" in open_zip(content).read("data.json").decode()


def test_the_expiry_sweep_deletes_the_package_from_the_bucket_and_the_download_is_gone(
    bucket, stores, public_api, file_request, staff_api, django_capture_on_commit_callbacks,
):  # fmt: skip
    reference = file_and_verify(public_api, file_request, email="ada@example.com")
    approve(staff_api, django_capture_on_commit_callbacks, reference)
    other = f"portal/packages/{reference}-other/package.zip"
    bucket.put_object(Key=other, Body=b"another request's package, not expired")
    AccessPackage.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    assert packages.packages_delete_expired() == 1
    assert _keys(bucket) == [other], "only the expired request's objects are deleted"
    assert AccessPackage.objects.get().deleted_at is not None
    response = staff_api.get(f"/api/v1/staff/requests/{reference}/package/")
    assert (response.status_code, response.json()["error"]["code"]) == (404, "expired")
    assert packages.packages_delete_expired() == 0


def test_a_package_whose_object_is_missing_answers_expired_not_a_server_error(
    bucket, stores, public_api, file_request, staff_api, django_capture_on_commit_callbacks,
):  # fmt: skip
    reference = file_and_verify(public_api, file_request, email="ada@example.com")
    approve(staff_api, django_capture_on_commit_callbacks, reference)
    bucket.objects.all().delete()
    response = staff_api.get(f"/api/v1/staff/requests/{reference}/package/")
    assert (response.status_code, response.json()["error"]["code"]) == (404, "expired")


def test_a_rerun_job_replaces_its_part_and_drops_its_earlier_files_in_the_bucket(
    bucket, stores, public_api, file_request, staff_api, django_capture_on_commit_callbacks,
    monkeypatch,
):  # fmt: skip
    # Keep the parts: the package is not built, so the parts stay for the test to look at.
    monkeypatch.setitem(processing.FINALISERS, "access", lambda request: {})
    reference = file_and_verify(public_api, file_request, email="ada@example.com")
    approve(staff_api, django_capture_on_commit_callbacks, reference)
    job = Job.objects.get(request__reference=reference, store__name="uploads")
    first = [k for k in _keys(bucket) if "/uploads.files-" in k]
    assert len(first) == 2

    access.access_execute(job)
    second = [k for k in _keys(bucket) if "/uploads.files-" in k]
    assert len(second) == 2 and not set(first) & set(second)
    assert f"portal/{access.part_name(reference, 'uploads')}" in _keys(bucket)


def test_reading_a_large_object_streams_it_in_chunks_without_holding_it_in_memory(bucket, tmp_path):
    size = 24 * 1024 * 1024
    source = tmp_path / "large.bin"
    with source.open("wb") as out:
        for _ in range(size // (1024 * 1024)):
            out.write(os.urandom(1024 * 1024))
    expected = hashlib.sha256(source.read_bytes()).hexdigest()
    storage.put_file("packages/large/package.zip", source)
    assert not source.exists()
    assert bucket.Object("portal/packages/large/package.zip").content_length == size

    digest = hashlib.sha256()
    tracemalloc.start()
    try:
        with storage.open_stream("packages/large/package.zip") as stream:
            while chunk := stream.read(64 * 1024):
                digest.update(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert digest.hexdigest() == expected
    assert peak < 6 * 1024 * 1024, f"reading held {peak} bytes at once"
    with pytest.raises(FileNotFoundError):
        storage.open_stream("packages/large/missing.zip")
    storage.delete_tree("packages/large")
    assert _keys(bucket) == []


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_site_worker_and_a_central_worker_on_separate_disks_share_the_package_through_the_bucket(
    bucket, s3_endpoint, public_api, file_request, staff_api, django_capture_on_commit_callbacks,
    settings, tmp_path,
):  # fmt: skip
    """Two machines: a worker at the store's site that listens only to the store's queue, and a
    central one for everything else, each with its own data folder. The part goes from the
    site's disk to the bucket, the central worker builds the package from it, and the web
    (this process, a third folder) streams it to staff."""
    from django.conf import settings as live

    from requests.demo import demo_store_seed
    from requests.models import ConnectedStore, DataRequest
    from tests.processes import celery_worker, portal_env
    from tests.servers import redis_url
    from tests.test_celery_worker import sending_over

    demo_store_seed()
    reference = file_and_verify(public_api, file_request, email="ada@demo.example")
    database = live.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        db_url = f"sqlite:///{database['NAME']}"
    else:
        db_url = (
            f"postgresql://{database['USER']}@{database['HOST']}:{database['PORT']}/"
            f"{database['NAME']}"
        )
    options = live.STORAGES["packages"]["OPTIONS"]
    with sending_over(redis_url(), {"visibility_timeout": 3600}) as (broker, central_queue):
        site_queue = f"{central_queue}-site"
        ConnectedStore.objects.update(queue=site_queue)

        def machine(name: str) -> dict[str, str]:
            return portal_env(
                DATABASE_URL=db_url,
                CELERY_BROKER_URL=broker,
                PORTAL_QUEUE=central_queue,
                SECRET_KEY=live.SECRET_KEY,
                PORTAL_ENCRYPTION_KEYS=",".join(live.PORTAL_ENCRYPTION_KEYS),
                PORTAL_DATA_DIR=str(tmp_path / name),
                PORTAL_S3_BUCKET=options["bucket_name"],
                PORTAL_S3_PREFIX=options["location"],
                PORTAL_S3_ENDPOINT_URL=s3_endpoint,
                PORTAL_S3_REGION="us-east-1",
                PORTAL_S3_ACCESS_KEY_ID="test-key",
                PORTAL_S3_SECRET_ACCESS_KEY="test-secret",
                PORTAL_S3_ADDRESSING_STYLE="path",
            )

        site_log, central_log = tmp_path / "site.log", tmp_path / "central.log"
        with (
            celery_worker(machine("site"), site_log, "--pool", "solo", "-Q", site_queue),
            celery_worker(machine("central"), central_log, "--pool", "solo", "-Q", central_queue),
        ):
            response = staff_api.post(f"/api/v1/staff/requests/{reference}/approve/")
            assert response.status_code == 200, response.content
            deadline = time.monotonic() + 120
            while DataRequest.objects.get(reference=reference).status != "completed":
                assert time.monotonic() < deadline, (
                    f"not completed:\n{site_log.read_text()[-2000:]}\n"
                    f"{central_log.read_text()[-2000:]}"
                )
                time.sleep(0.1)

    assert "requests.tasks.job_run[" in site_log.read_text()
    assert "requests.tasks.job_run[" not in central_log.read_text()
    assert "requests.tasks.request_process[" in central_log.read_text()
    assert not list((tmp_path / "site").rglob("*.jsonl")), "the part left the site's disk"
    assert not (tmp_path / "central" / "packages").exists()
    package = AccessPackage.objects.get(request__reference=reference)
    assert _keys(bucket) == [f"portal/{package.path}"]
    content = _download(staff_api, reference)
    assert hashlib.sha256(content).hexdigest() == package.sha256
    assert "ada@demo.example" in open_zip(content).read("data.json").decode()


def test_a_bucket_that_cannot_be_written_retries_the_job_later_naming_no_host_or_bucket(
    bucket, public_api, file_request, staff_api, django_capture_on_commit_callbacks, settings,
):  # fmt: skip
    from requests.demo import demo_store_seed

    demo_store_seed()
    reference = file_and_verify(public_api, file_request, email="ada@demo.example")
    missing = f"{bucket.name}-missing"
    options = {**settings.STORAGES["packages"]["OPTIONS"], "bucket_name": missing}
    settings.STORAGES = {
        **settings.STORAGES,
        "packages": {"BACKEND": "requests.storage.PortalS3Storage", "OPTIONS": options},
    }
    detail = approve(staff_api, django_capture_on_commit_callbacks, reference)
    assert detail["status"] == "processing"
    job = Job.objects.get(request__reference=reference)
    assert job.state == "queued" and job.attempts == 1
    assert job.error == "the package storage could not be used (NoSuchBucket)"
    assert not AccessPackage.objects.exists()
