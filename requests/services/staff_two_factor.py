"""Staff two-factor sign-in: enrolling an authenticator, checking a code, recovery codes, reset.

A staff member's second factor is a django-otp TOTP device (an authenticator app) plus a static
device holding single-use recovery codes. Each step is an audit event under the staff member's
name; no secret, code or recovery code ever reaches the audit trail or a log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _
from django_otp import user_has_device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from requests.services.audit import actor_for_user, audit_record
from requests.services.errors import ServiceError

RECOVERY_CODE_COUNT = 10
AUTHENTICATOR_NAME = "authenticator"
RECOVERY_NAME = "recovery codes"
TOTP_CODE = re.compile(r"^\d{6}$")


def two_factor_mode() -> str:
    return settings.PORTAL_STAFF_2FA


def second_factor_needed(user) -> bool:
    """Whether this signed-in user must pass a second factor before any console or admin page.

    `required`: everyone (who has no authenticator enrols one first); `optional`: who enrolled
    one, so that their password alone never opens the console."""
    mode = two_factor_mode()
    if mode == "off" or not user.is_authenticated:
        return False
    if mode == "required":
        return True
    return user_has_device(user, confirmed=True)


def has_second_factor(user) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def users_with_second_factor(user_ids) -> set[int]:
    return set(
        TOTPDevice.objects.filter(user_id__in=list(user_ids), confirmed=True).values_list(
            "user_id", flat=True
        )
    )


@transaction.atomic
def two_factor_enrolment_start(*, user) -> TOTPDevice:
    """The unconfirmed authenticator being set up: one per user, kept until it is confirmed so a
    reload shows the same secret. Refused once the user has a confirmed one (only a DPO's reset
    removes it), so a password alone can never swap in a new authenticator."""
    if has_second_factor(user):
        raise ServiceError(_("Two-factor sign-in is already set up for this account."))
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=AUTHENTICATOR_NAME, confirmed=False)
    return device


@transaction.atomic
def two_factor_enrolment_confirm(*, user, code: str) -> tuple[TOTPDevice, list[str]]:
    """Confirm the new authenticator with a code from it; returns it and the recovery codes,
    which exist in clear only in this answer."""
    device = (
        TOTPDevice.objects.select_for_update()
        .filter(user=user, confirmed=False)
        .order_by("pk")
        .first()
    )
    if device is None or has_second_factor(user):
        raise ServiceError(_("Start again: open the set-up page for a new secret."), field="code")
    code = normalise_code(code)
    if not TOTP_CODE.match(code) or not device.verify_token(code):
        raise ServiceError(
            _("That code does not match. Enter the 6-digit code your app shows now."),
            field="code",
        )
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    codes = _recovery_codes_replace(user)
    audit_record(
        action="staff.second_factor_enrolled",
        actor=actor_for_user(user),
        details={"username": user.get_username(), "recovery_codes": len(codes)},
    )
    return device, codes


def _recovery_codes_replace(user) -> list[str]:
    StaticDevice.objects.filter(user=user).delete()
    static = StaticDevice.objects.create(user=user, name=RECOVERY_NAME, confirmed=True)
    codes = []
    while len(codes) < RECOVERY_CODE_COUNT:
        token = StaticToken.random_token()
        if token not in codes:
            codes.append(token)
    StaticToken.objects.bulk_create(StaticToken(device=static, token=token) for token in codes)
    return codes


def normalise_code(code: str) -> str:
    # Apps show "123 456"; recovery codes are printed in lower case and may be typed in upper.
    return re.sub(r"[\s-]", "", code or "").lower()


@dataclass(frozen=True)
class CodeCheck:
    device: object | None  # the device that matched, for django_otp.login
    throttled: bool = False  # a wrong code came too soon after the last: not even checked
    failures: int = 0


@transaction.atomic
def second_factor_check(*, user, code: str) -> CodeCheck:
    """Check a code from the authenticator or a recovery code (used up when it matches).

    Wrong codes are throttled per device by django-otp (1, 2, 4... seconds between tries); each
    refusal and each success is audited under the staff member's name, without the code."""
    code = normalise_code(code)
    is_totp = bool(TOTP_CODE.match(code))
    model = TOTPDevice if is_totp else StaticDevice
    device = (
        model.objects.select_for_update().filter(user=user, confirmed=True).order_by("pk").first()
    )
    actor = actor_for_user(user)
    method = "authenticator" if is_totp else "recovery_code"
    if device is None:
        return _refused(user, actor, method, failures=0)
    allowed, _why = device.verify_is_allowed()
    if not allowed:
        return CodeCheck(device=None, throttled=True, failures=device.throttling_failure_count)
    if not device.verify_token(code):
        return _refused(user, actor, method, failures=device.throttling_failure_count)
    if is_totp:
        audit_record(
            action="staff.second_factor_verified",
            actor=actor,
            details={"username": user.get_username(), "method": method},
        )
    else:
        audit_record(
            action="staff.recovery_code_used",
            actor=actor,
            details={"username": user.get_username(), "remaining": device.token_set.count()},
        )
    return CodeCheck(device=device)


def _refused(user, actor: str, method: str, *, failures: int) -> CodeCheck:
    audit_record(
        action="staff.second_factor_refused",
        actor=actor,
        details={"username": user.get_username(), "method": method, "failures": failures},
    )
    return CodeCheck(device=None, failures=failures)


@transaction.atomic
def two_factor_reset(*, user, actor_user) -> None:
    """A DPO removes another staff member's authenticator and recovery codes (a lost phone):
    they enrol again at their next sign-in. Nobody resets their own."""
    if user.pk == actor_user.pk:
        raise ServiceError(_("You cannot reset your own two-factor sign-in."))
    removed = TOTPDevice.objects.filter(user=user).delete()[0]
    removed += StaticDevice.objects.filter(user=user).delete()[0]
    if not removed:
        raise ServiceError(_("This account has no two-factor sign-in to reset."))
    audit_record(
        action="staff.second_factor_reset",
        actor=actor_for_user(actor_user),
        details={"username": user.get_username()},
    )
