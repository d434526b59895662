"""The staff console: the queue of requests and the page where staff decide on one.

Every decision goes through `requests.services.lifecycle`, which checks the transition and writes
the audit event; these views only validate the form and report the outcome.
"""

from __future__ import annotations

import re

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from requests import clock, permissions, selectors
from requests.forms import AskInformationForm, ExtendForm, RejectForm
from requests.services import lifecycle
from requests.services.audit import actor_for_user
from requests.services.errors import ServiceError
from requests.states import Status, can_transition
from requests.views.assign import assign_form
from requests.views.console import require, staff_only, staff_page

MAIL_PAGE_SIZE = 20

# action name -> (form class or None, service, message on success)
ACTIONS = {
    "approve": (None, lifecycle.request_approve, _("Request approved; processing has started.")),
    "reject": (RejectForm, lifecycle.request_reject, _("Request rejected; the person is told.")),
    "extend": (ExtendForm, lifecycle.request_extend, _("Deadline extended; the person is told.")),
    "ask_information": (
        AskInformationForm,
        lifecycle.request_ask_information,
        _("Information asked for; the person is told."),
    ),
    "information_received": (
        None,
        lifecycle.request_information_received,
        _("Information received; the request is back in review."),
    ),
}

# 2026-11-29 or 2026-11-29T01:18:00+00:00, as the audit trail keeps dates.
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$")

IDENTITY_LABELS = {
    "email": _("Email address"),
    "phone": _("Phone number"),
    "name": _("Name"),
    "account_id": _("Account identifier"),
}


# Any staff role may open a page built with this; actions inside check their own rule.
staff_required = staff_only(permissions.access_staff_console)


def _page(request, template: str, context: dict, *, status: int = 200):
    return staff_page(request, template, context, status=status)


def _date_text(value: str) -> str | None:
    """An ISO date or date-time kept in an audit detail, in the console's one date format."""
    if not ISO_DATE.match(value):
        return None
    moment = parse_datetime(value) if "T" in value else None
    if moment is not None:
        if timezone.is_aware(moment):
            moment = timezone.localtime(moment)
        return date_format(moment, "DATETIME_FORMAT")
    day = parse_date(value)
    return date_format(day, "DATE_FORMAT") if day else None


def _detail_text(value) -> str:
    """Audit details are JSON; show lists and maps as text rather than Python reprs, and dates
    as every other date in the console."""
    if isinstance(value, list):
        return ", ".join(_detail_text(item) for item in value)
    if isinstance(value, dict):
        return ", ".join(f"{key}: {_detail_text(item)}" for key, item in value.items())
    if isinstance(value, str):
        return _date_text(value) or value
    return "\N{EN DASH}" if value is None else str(value)


def _timeline(data_request) -> list[tuple]:
    return [
        (event, [(key, _detail_text(value)) for key, value in (event.details or {}).items()])
        for event in selectors.request_timeline(request=data_request)
    ]


def _available_actions(data_request) -> dict[str, bool]:
    current = data_request.status
    return {
        "approve": can_transition(current, Status.PROCESSING),
        "reject": can_transition(current, Status.REJECTED),
        "extend": (
            not data_request.is_closed
            and data_request.clock_started_on is not None
            and data_request.extension_months < clock.MAX_EXTENSION_MONTHS
        ),
        "ask_information": can_transition(current, Status.AWAITING_INFORMATION),
        "information_received": current == Status.AWAITING_INFORMATION,
    }


@never_cache
@staff_only(permissions.access_view_requests)
@require_http_methods(["GET", "HEAD", "POST"])
def request_detail(request, reference):
    data_request = selectors.request_by_reference(reference)
    if data_request is None:
        raise Http404
    forms = {
        "reject": RejectForm(prefix="reject"),
        "extend": ExtendForm(prefix="extend"),
        "ask_information": AskInformationForm(prefix="ask"),
    }
    status = 200
    if request.method == "POST":
        require(permissions.access_decide_request, request.user)
        action = request.POST.get("action", "")
        if action not in ACTIONS:
            messages.error(request, _("Unknown action."))
            return redirect("staff-request", reference)
        form_class, service, done = ACTIONS[action]
        form = form_class(request.POST, prefix=forms[action].prefix) if form_class else None
        if form is None or form.is_valid():
            try:
                service(
                    request=data_request,
                    actor=actor_for_user(request.user),
                    **(form.cleaned_data if form else {}),
                )
            except ServiceError as exc:
                messages.error(request, exc.message)
            else:
                messages.success(request, done)
            return redirect("staff-request", reference)
        # Invalid input: show the form again with what was typed, next to its errors.
        forms[action] = form
        status = 400
    return _page(
        request,
        "staff/request_detail.html",
        {
            "data_request": data_request,
            "identity": [
                (IDENTITY_LABELS.get(key, key), value)
                for key, value in (data_request.identity or {}).items()
            ],
            "timeline": _timeline(data_request),
            # Staff who may not decide see the request without the decision forms.
            "actions": (
                _available_actions(data_request)
                if permissions.access_decide_request(request.user)
                else {}
            ),
            "forms": forms,
            "assign_form": assign_form(data_request),
            "days_left": clock.days_left(data_request.due_on, today=clock.today()),
        },
        status=status,
    )


@never_cache
@staff_only(permissions.access_read_demo_mail)
@require_http_methods(["GET", "HEAD"])
def mail(request):
    """The demo's outbox (no EMAIL_HOST): what people were sent, for staff eyes only."""
    page = Paginator(selectors.demo_mail(), MAIL_PAGE_SIZE).get_page(request.GET.get("page"))
    return _page(request, "staff/mail.html", {"page": page})
