"""Hooks that fit django-axes (the staff sign-in lockout) to the portal.

The address axes records is the one the rate limits use (PORTAL_TRUSTED_PROXIES), its log lines
name neither the username nor the address, and a lockout answers a readable page with 429 and
Retry-After, and is audited.
"""

from __future__ import annotations

import math

from axes.signals import user_locked_out
from django.conf import settings
from django.dispatch import receiver
from django.shortcuts import render

from requests.api.throttling import UNKNOWN_ADDRESS, client_address
from requests.services.staff_access import login_username_hash, staff_lockout_record


def login_client_ip(request) -> str | None:
    address = client_address(request)
    return None if address == UNKNOWN_ADDRESS else address


def login_client_description(username, ip_address, user_agent, path_info, request) -> str:
    # Axes logs this string; keep personal data (username, address, browser) out of the log.
    return f"staff login {login_username_hash(username or '')[:16]}"


def login_locked_out(request, original_response=None, credentials=None):
    seconds = int(settings.AXES_COOLOFF_TIME.total_seconds())
    response = render(
        request,
        "staff/locked_out.html",
        {"minutes": max(1, math.ceil(seconds / 60))},
        status=429,
    )
    response["Retry-After"] = str(seconds)
    return response


@receiver(user_locked_out, dispatch_uid="portal-audit-staff-lockout")
def _audit_lockout(sender, request=None, username=None, ip_address=None, **kwargs):
    staff_lockout_record(username=username or "")
