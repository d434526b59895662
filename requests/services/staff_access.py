"""Staff sign-in protection: a lockout after repeated wrong passwords is put on the audit trail.

django-axes counts the failures and refuses the sign-in; this records the lockout without the
password or the username in clear (a keyed hash, and the staff user's id when it exists).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from requests.crypto import keyed_hash
from requests.models import AuditEvent
from requests.services.audit import SYSTEM, audit_record


def login_username_hash(username: str) -> str:
    return keyed_hash((username or "").strip().lower(), purpose="staff-login")


@transaction.atomic
def staff_lockout_record(*, username: str) -> AuditEvent | None:
    """Audit a lockout once per cool-off, however many refused tries follow it."""
    username_hash = login_username_hash(username)
    since = timezone.now() - settings.AXES_COOLOFF_TIME
    already = AuditEvent.objects.filter(
        action="staff.login_locked_out",
        created_at__gte=since,
        details__username_hash=username_hash,
    ).exists()
    if already:
        return None
    user_model = get_user_model()
    user_id = (
        user_model.objects.filter(**{user_model.USERNAME_FIELD: username})
        .values_list("pk", flat=True)
        .first()
    )
    return audit_record(
        action="staff.login_locked_out",
        actor=SYSTEM,
        details={
            "username_hash": username_hash,
            "user_id": user_id,
            "failure_limit": settings.AXES_FAILURE_LIMIT,
            "cooloff_seconds": int(settings.AXES_COOLOFF_TIME.total_seconds()),
        },
    )
