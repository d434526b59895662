"""What every staff console page shares: who may open it, and how it is rendered."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.utils import translation

from requests import permissions, selectors


def staff_only(rule: Callable = permissions.access_staff_console):
    """Anonymous visitors go to the login page; signed-in users the rule refuses get 403.

    `rule` is one of the `access_*` functions of `requests.permissions`."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(request, *args, **kwargs):
            if not rule(request.user):
                raise PermissionDenied
            activate_staff_language(request)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def activate_staff_language(request) -> None:
    """A staff member's chosen language wins over the browser's on console pages, as a
    request's language does on the person's pages; none chosen: the browser's (or the cookie's)."""
    language = selectors.staff_language(request.user)
    if language:
        translation.activate(language)
        request.LANGUAGE_CODE = language


def require(rule: Callable, user) -> None:
    """Refuse one action inside a page that the user may otherwise open."""
    if not rule(user):
        raise PermissionDenied


def staff_page(request, template: str, context: dict, *, status: int = 200):
    context = {"organisation": settings.PORTAL_ORGANISATION_NAME, **context}
    return render(request, template, context, status=status)
