"""Staff accounts: creating them and giving them a role, each change audited under the DPO's name.

Roles are groups (see `requests.permissions`); a user holds at most one of them.
"""

from __future__ import annotations

import re
import secrets

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils.translation import gettext as _

from requests import permissions
from requests.services.audit import actor_for_user, audit_record
from requests.services.errors import ServiceError

# Django's own username rule (letters, digits and @.+-_), kept short enough to read in a log line.
USERNAME_PATTERN = re.compile(r"^[\w.@+-]{1,150}$")
# 18 random bytes: a 24-character first password the new user changes.
FIRST_PASSWORD_BYTES = 18


def _set_groups(user, role: str) -> None:
    user.groups.remove(*user.groups.filter(name__in=permissions.ROLES))
    user.groups.add(permissions.role_group(role))
    permissions.forget_role(user)


@transaction.atomic
def staff_user_create(*, username: str, role: str, actor: str) -> tuple[object, str]:
    """A new staff account with a role and a random first password, returned once."""
    username = username.strip()
    if not USERNAME_PATTERN.match(username):
        raise ServiceError(
            _("Use letters, digits and @ . + - _ only, at most 150 characters."), field="username"
        )
    if role not in permissions.ROLES:
        raise ServiceError(_("Choose one of the roles given."), field="role")
    user_model = get_user_model()
    if user_model.objects.filter(username__iexact=username).exists():
        raise ServiceError(_("A staff account with this username exists."), field="username")
    password = secrets.token_urlsafe(FIRST_PASSWORD_BYTES)
    user = user_model.objects.create_user(username=username, password=password, is_staff=True)
    _set_groups(user, role)
    audit_record(action="staff.created", actor=actor, details={"username": username, "role": role})
    return user, password


@transaction.atomic
def staff_user_set_role(*, user, role: str, actor_user) -> None:
    """Give a staff account another role. Superusers are DPOs whatever their groups, and
    nobody changes their own role (the last DPO could lock everyone out)."""
    if role not in permissions.ROLES:
        raise ServiceError(_("Choose one of the roles given."), field="role")
    if user.pk == actor_user.pk:
        raise ServiceError(_("You cannot change your own role."), field="role")
    if user.is_superuser:
        raise ServiceError(
            _("This account is a superuser and always has the DPO role."), field="role"
        )
    previous = permissions.user_role(user)
    if previous == role:
        return
    _set_groups(user, role)
    audit_record(
        action="staff.role_changed",
        actor=actor_for_user(actor_user),
        details={"username": user.get_username(), "role": role, "previous_role": previous},
    )


def _language_codes() -> set[str]:
    from django.conf import settings

    return {code for code, _name in settings.LANGUAGES}


@transaction.atomic
def staff_user_set_language(*, user, language: str, actor_user) -> None:
    """The language of a staff member's console pages and mail ("" for the browser's on pages
    and the portal's default in mail). A DPO sets anyone's; everyone may set their own."""
    from requests.models import StaffProfile

    if language and language not in _language_codes():
        raise ServiceError(_("Choose one of the languages given."), field="language")
    profile, _created = StaffProfile.objects.select_for_update().get_or_create(user=user)
    previous = profile.language
    if previous == language:
        return
    profile.language = language
    profile.save(update_fields=["language"])
    audit_record(
        action="staff.language_changed",
        actor=actor_for_user(actor_user),
        details={
            "username": user.get_username(),
            "language": language,
            "previous_language": previous,
        },
    )
