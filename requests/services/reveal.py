"""Showing a request's identity in clear to a staff member: every time is on the audit trail."""

from __future__ import annotations

from django.db import transaction

from requests.models import DataRequest
from requests.services.audit import audit_record
from requests.services.errors import ServiceError


@transaction.atomic
def identity_reveal(*, request: DataRequest, actor: str) -> dict[str, str]:
    """The identity as the person gave it, once the reveal is recorded (the types, no value)."""
    identity = dict(request.identity or {})
    if not identity:
        raise ServiceError("This request's identity data were purged.", code="purged")
    audit_record(
        action="request.identity_revealed",
        actor=actor,
        request=request,
        details={"identity_types": sorted(identity)},
    )
    return identity
