"""What every staff console page shares: who may open it, and how it is rendered."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render

from requests import permissions


def staff_only(rule: Callable = permissions.access_staff_console):
    """Anonymous visitors go to the login page; signed-in users the rule refuses get 403.

    `rule` is one of the `access_*` functions of `requests.permissions`."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(request, *args, **kwargs):
            if not rule(request.user):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def require(rule: Callable, user) -> None:
    """Refuse one action inside a page that the user may otherwise open."""
    if not rule(user):
        raise PermissionDenied


def staff_page(request, template: str, context: dict, *, status: int = 200):
    context = {"organisation": settings.PORTAL_ORGANISATION_NAME, **context}
    return render(request, template, context, status=status)
