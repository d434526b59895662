"""Rejecting the requests ticked in the queue, with one legal reason (obvious spam)."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from requests import permissions
from requests.forms import RejectForm
from requests.services.audit import actor_for_user
from requests.services.bulk import requests_reject_many
from requests.services.errors import ServiceError
from requests.views.console import staff_only


def _back(request):
    """Back to the queue as it was (its filters), never to another site."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect("staff-queue")


@staff_only(permissions.access_decide_request)
@require_POST
def bulk_reject(request):
    form = RejectForm(request.POST, prefix="bulk")
    references = request.POST.getlist("reference")
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return _back(request)
    try:
        result = requests_reject_many(
            references=references,
            reason=form.cleaned_data["reason"],
            message=form.cleaned_data["message"],
            actor=actor_for_user(request.user),
        )
    except ServiceError as exc:
        messages.error(request, exc.message)
        return _back(request)
    if result.rejected:
        count = len(result.rejected)
        messages.success(
            request,
            ngettext(
                "%(count)d request rejected; the person is told.",
                "%(count)d requests rejected; each person is told.",
                count,
            )
            % {"count": count},
        )
    if result.refused:
        count = len(result.refused)
        messages.warning(
            request,
            ngettext(
                "%(count)d request could not be rejected in its state.",
                "%(count)d requests could not be rejected in their state.",
                count,
            )
            % {"count": count},
        )
    return _back(request)
