"""Delivering access packages: single-use download codes, downloads, and deletion at expiry.

The person downloads their package from their private status page with a fresh code emailed to
their verified address: only a keyed hash of it is stored, it works once, for
PORTAL_DOWNLOAD_CODE_TTL_MINUTES, and stops after PORTAL_DOWNLOAD_CODE_MAX_ATTEMPTS wrong tries;
a new one can be asked for once per PORTAL_RESEND_INTERVAL_SECONDS. Staff download it through the
API. Every download is an audit event (who, and how; never what the package holds). After
PORTAL_PACKAGE_TTL_DAYS a scheduled task deletes the file.

The file is read from the package storage (`requests.storage`: PORTAL_DATA_DIR or an S3 bucket)
as a stream, and decrypted on the way when it was stored encrypted.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import IO

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from requests import storage
from requests.emails import send_to_subject
from requests.filecrypt import ENCRYPTED_SUFFIX, DecryptingReader, EncryptedFileError
from requests.models import AccessPackage, DataRequest, DownloadCode
from requests.queueing import enqueue
from requests.services.access import package_prefix
from requests.services.audit import SUBJECT, SYSTEM, audit_record
from requests.services.errors import NotFound, RateLimited, ServiceError, VerificationFailed
from requests.services.verification import CODE_DIGITS
from requests.states import Kind

log = logging.getLogger(__name__)

# Expired packages are deleted this many at a time, each in its own short transaction.
EXPIRY_BATCH = 100


class PackageGone(NotFound):
    """The package existed but its download period is over (its file is or will be deleted)."""

    code = "expired"


def _hash_code(code: str) -> str:
    return hmac.new(
        settings.SECRET_KEY.encode(), f"download:{code}".encode(), hashlib.sha256
    ).hexdigest()


def download_filename(package: AccessPackage) -> str:
    return f"personal-data-{timezone.localdate(package.created_at).isoformat()}.zip"


def _available_package(request: DataRequest, *, lock: bool = False) -> AccessPackage:
    """The request's package if it can still be downloaded; a clear error otherwise."""
    if request.kind != Kind.ACCESS:
        raise NotFound(
            "This is an erasure request: it has no access package.", code="not_access_request"
        )
    packages = AccessPackage.objects.select_for_update() if lock else AccessPackage.objects
    package = packages.filter(request=request).first()
    if package is None:
        raise NotFound(
            f"The package is not ready: the request is {request.status}.", code="not_ready"
        )
    if package.is_expired:
        raise PackageGone(
            f"The package expired on {package.expires_at:%Y-%m-%d %H:%M} UTC and its file was "
            "deleted (or is about to be).",
        )
    return package


def _open(package: AccessPackage) -> IO[bytes] | DecryptingReader:
    try:
        stream = storage.open_stream(package.path)
        if package.path.endswith(ENCRYPTED_SUFFIX):  # built with PORTAL_PACKAGE_ENCRYPTION
            return DecryptingReader(stream)
        return stream
    except FileNotFoundError:
        raise PackageGone("The package's file is no longer there.") from None
    except EncryptedFileError as exc:
        log.error("package %s cannot be read: %s", package.pk, exc)
        raise PackageGone("The package's file can no longer be read.") from None


@dataclass
class OpenedPackage:
    file: IO[bytes] | DecryptingReader
    filename: str
    size: int


def _downloaded(package: AccessPackage, *, actor: str, via: str) -> OpenedPackage:
    handle = _open(package)
    AccessPackage.objects.filter(pk=package.pk).update(downloads=F("downloads") + 1)
    audit_record(
        action="package.downloaded",
        actor=actor,
        request=package.request,
        details={"via": via, "sha256": package.sha256},
    )
    return OpenedPackage(file=handle, filename=download_filename(package), size=package.size)


# --- codes -------------------------------------------------------------------------------------


def _locked_request(reference: str) -> DataRequest:
    request = DataRequest.objects.select_for_update().filter(reference=reference).first()
    if request is None:
        raise NotFound("No request has this reference.")
    return request


@transaction.atomic
def package_request_code(*, reference: str) -> DownloadCode:
    """Owe the person a fresh download code, sent to their verified email address on commit."""
    request = _locked_request(reference)
    package = _available_package(request, lock=True)
    if not request.email:
        raise ServiceError("There is no email address to send a code to.", code="no_email")
    # A cap on codes caps the guesses a package can ever take: codes x attempts per code.
    cap = settings.PORTAL_DOWNLOAD_CODES_PER_PACKAGE
    if package.codes.count() >= cap:
        raise RateLimited(
            f"This package has had the most download codes one package may have ({cap}). "
            "Contact us to receive your data another way.",
            code="code_cap_reached",
            extra={"limit": "download_codes_per_package"},
        )
    latest = package.codes.first()
    now = timezone.now()
    if latest is not None:
        wait = latest.created_at + settings.PORTAL_RESEND_INTERVAL - now
        if wait.total_seconds() > 0:
            seconds = int(wait.total_seconds()) + 1
            raise RateLimited(
                f"A code was sent a moment ago. Try again in {seconds} seconds.",
                retry_after=seconds,
                extra={"limit": "download_code_interval", "retry_after": seconds},
            )
    code = DownloadCode.objects.create(package=package, created_at=now)
    audit_record(
        action="package.code_requested",
        actor=SUBJECT,
        request=request,
        details={"code": code.pk},
    )
    enqueue("package_code_send", code.pk)
    return code


@dataclass(frozen=True)
class IssuedDownloadCode:
    request_id: int
    code: str
    expires_at: datetime


def package_claim_code_send(*, code_id: int) -> IssuedDownloadCode | None:
    """Claim a pending code and mint it; None if already claimed, replaced or the package is gone.

    The claim is a conditional UPDATE, so a task delivered twice sends at most one code."""
    claimed = DownloadCode.objects.filter(
        pk=code_id, send_pending=True, package__deleted_at__isnull=True
    ).update(send_pending=False)
    if claimed != 1:
        return None
    row = DownloadCode.objects.select_related("package").get(pk=code_id)
    if DownloadCode.objects.filter(package_id=row.package_id, pk__gt=row.pk).exists():
        return None  # the person asked again since: only the newest code is sent
    code = "".join(secrets.choice("0123456789") for _ in range(CODE_DIGITS))
    now = timezone.now()
    expires_at = now + settings.PORTAL_DOWNLOAD_CODE_TTL
    DownloadCode.objects.filter(pk=code_id).update(
        code_hash=_hash_code(code), sent_at=now, expires_at=expires_at, failed_attempts=0
    )
    return IssuedDownloadCode(request_id=row.package.request_id, code=code, expires_at=expires_at)


def package_release_code_send(*, code_id: int) -> None:
    """Sending failed: owe the code again so a retry mints and sends a new one."""
    DownloadCode.objects.filter(pk=code_id, used_at__isnull=True).update(
        send_pending=True, code_hash=""
    )


def _refusal(code: DownloadCode | None, max_attempts: int) -> VerificationFailed | None:
    if code is None or not code.code_hash or code.expires_at is None:
        return VerificationFailed(
            "Ask for a download code first; we email it to you.", field="code", code="no_code"
        )
    if code.used_at is not None:
        return VerificationFailed(
            "This code was already used. Ask for a new code.", field="code", code="used"
        )
    if code.failed_attempts >= max_attempts:
        return VerificationFailed(
            "Too many wrong codes. Ask for a new code.", field="code", code="locked"
        )
    if timezone.now() > code.expires_at:
        return VerificationFailed(
            "This code has expired. Ask for a new code.", field="code", code="code_expired"
        )
    return None


def package_open_for_subject(*, reference: str, code: str) -> OpenedPackage:
    """Check the person's code and open their package; the code is used up by the download.

    A wrong code counts an attempt (recorded even though the call fails); the last allowed wrong
    attempt disables the code."""
    code = "".join((code or "").split())
    if not code.isdigit() or len(code) != CODE_DIGITS:
        raise VerificationFailed(
            f"Enter the {CODE_DIGITS}-digit code from the email.", field="code", code="invalid"
        )
    max_attempts = settings.PORTAL_DOWNLOAD_CODE_MAX_ATTEMPTS
    with transaction.atomic():
        request = _locked_request(reference)
        package = _available_package(request, lock=True)
        latest = DownloadCode.objects.select_for_update().filter(package=package).first()
        refusal = _refusal(latest, max_attempts)
        if refusal is not None:
            raise refusal
        assert latest is not None
        if hmac.compare_digest(latest.code_hash, _hash_code(code)):
            opened = _downloaded(package, actor=SUBJECT, via="code")
            DownloadCode.objects.filter(pk=latest.pk).update(used_at=timezone.now())
            return opened
        latest.failed_attempts += 1
        latest.save(update_fields=["failed_attempts"])
        audit_record(
            action="package.download_refused",
            actor=SUBJECT,
            request=request,
            details={"code": latest.pk, "attempts": latest.failed_attempts},
        )
    remaining = max_attempts - latest.failed_attempts
    if remaining <= 0:
        raise VerificationFailed(
            "Too many wrong codes. Ask for a new code.", field="code", code="locked"
        )
    raise VerificationFailed(
        f"That code is not right. {remaining} attempt(s) left.", field="code", code="wrong_code"
    )


@transaction.atomic
def package_open_for_staff(*, request: DataRequest, actor: str) -> OpenedPackage:
    package = _available_package(request)
    return _downloaded(package, actor=actor, via="staff")


def send_download_code(request: DataRequest, issued: IssuedDownloadCode) -> None:
    send_to_subject(
        request,
        template="download_code",
        context={
            "code": issued.code,
            "ttl_minutes": int(settings.PORTAL_DOWNLOAD_CODE_TTL.total_seconds() // 60),
        },
    )


# --- expiry ------------------------------------------------------------------------------------


def package_delete(*, package: AccessPackage, reason: str = "expired") -> bool:
    """Delete a package's files (its folder, with any parts left) and record it. Idempotent.

    The row is marked deleted only once the storage confirms, so a storage that is down leaves
    the package for the next sweep."""
    with transaction.atomic():
        locked = (
            AccessPackage.objects.select_for_update()
            .select_related("request")
            .filter(pk=package.pk, deleted_at__isnull=True)
            .first()
        )
        if locked is None:
            return False
        storage.delete_tree(package_prefix(locked.request.reference))
        locked.deleted_at = timezone.now()
        locked.save(update_fields=["deleted_at"])
        DownloadCode.objects.filter(package=locked).update(code_hash="", send_pending=False)
        audit_record(
            action="package.deleted",
            actor=SYSTEM,
            request=locked.request,
            details={"reason": reason, "downloads": locked.downloads},
        )
    return True


def packages_delete_expired() -> int:
    """Delete every package past its expiry; safe to run from several schedulers at once.

    Also removes this machine's scratch folders that a killed worker left behind: no task
    builds for longer than its hard time limit."""
    storage.scratch_remove_stale(older_than=settings.CELERY_TASK_TIME_LIMIT)
    deleted = 0
    while True:
        batch = list(
            AccessPackage.objects.filter(
                deleted_at__isnull=True, expires_at__lte=timezone.now()
            ).order_by("pk")[:EXPIRY_BATCH]
        )
        if not batch:
            return deleted
        for package in batch:
            if package_delete(package=package):
                deleted += 1
