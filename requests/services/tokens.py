"""Staff API tokens: created with their key shown once, stored only as a digest."""

from __future__ import annotations

import hashlib
import secrets

from django.db import transaction

from requests.models import ApiToken
from requests.services.audit import audit_record

# 32 random bytes, URL-safe: 43 characters, usable as is in an Authorization header.
KEY_BYTES = 32


def token_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@transaction.atomic
def token_create(*, user, actor: str, replace: bool = False) -> str:
    """Make a new API token for `user` and return its key, which is never stored nor shown again.

    With `replace`, the user's other tokens stop working."""
    if replace:
        ApiToken.objects.filter(user=user).delete()
    key = secrets.token_urlsafe(KEY_BYTES)
    token = ApiToken.objects.create(user=user, digest=token_digest(key))
    audit_record(
        action="api_token.created",
        actor=actor,
        details={"token": token.pk, "user": user.pk, "replaced_others": replace},
    )
    return key


def token_user(key: str):
    """The active user a key belongs to, or None."""
    token = (
        ApiToken.objects.select_related("user")
        .filter(digest=token_digest(key), user__is_active=True)
        .first()
    )
    return token.user if token is not None else None
