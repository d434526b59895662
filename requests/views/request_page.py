"""The request page (`/staff/requests/<reference>/`): everything staff need to handle one request.

Every part works without JavaScript: each action is a plain form POSTed to the page with an
`action` field, checked against its `access_*` rule (a refused POST answers 403, whatever the page
showed), validated, handed to one service, and answered with a redirect back to the page. The
identity is masked; the `reveal` action shows it in clear in its own response only, once the
service has put the reveal on the audit trail.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from requests import clock, permissions, selectors
from requests.assurance import identifier_states
from requests.forms import AskInformationForm, ExtendForm
from requests.masking import mask
from requests.models import AccessPackage, DataRequest
from requests.preview_display import candidate_rows, job_rows, preview_stores
from requests.services import access, identifiers, lifecycle, notes, reveal
from requests.services.audit import actor_for_user
from requests.services.errors import ServiceError
from requests.services.job_staff import job_confirm_manual, request_retry_failed_jobs
from requests.services.preview import request_preview
from requests.states import Kind, Status, can_transition
from requests.timeline import identity_type_label, method_label, timeline
from requests.views.assign import assign_form
from requests.views.console import require, staff_only, staff_page
from requests.views.request_page_forms import (
    ConfirmIdentityForm,
    ConfirmJobForm,
    NoteForm,
    RejectWithMessageForm,
)

# The preview searches every connected store, so it runs by itself only where staff decide.
PREVIEW_STATES = frozenset({Status.IN_REVIEW, Status.AWAITING_INFORMATION})


@dataclass(frozen=True)
class Action:
    rule: Callable
    form: type | None
    prefix: str
    perform: Callable  # (http request, data request, cleaned data) -> None
    done: str


def _actor(http) -> str:
    return actor_for_user(http.user)


ACTIONS: dict[str, Action] = {
    "approve": Action(
        permissions.access_decide_request,
        None,
        "",
        lambda http, r, d: lifecycle.request_approve(request=r, actor=_actor(http)),
        _("Request approved; processing has started."),
    ),
    "reject": Action(
        permissions.access_decide_request,
        RejectWithMessageForm,
        "reject",
        lambda http, r, d: lifecycle.request_reject(request=r, actor=_actor(http), **d),
        _("Request rejected; the person is told."),
    ),
    "extend": Action(
        permissions.access_decide_request,
        ExtendForm,
        "extend",
        lambda http, r, d: lifecycle.request_extend(request=r, actor=_actor(http), **d),
        _("Deadline extended; the person is told."),
    ),
    "ask_information": Action(
        permissions.access_decide_request,
        AskInformationForm,
        "ask",
        lambda http, r, d: lifecycle.request_ask_information(request=r, actor=_actor(http), **d),
        _("Information asked for; the person is told."),
    ),
    "information_received": Action(
        permissions.access_decide_request,
        None,
        "",
        lambda http, r, d: lifecycle.request_information_received(request=r, actor=_actor(http)),
        _("Information received; the request is back in review."),
    ),
    "confirm_identity": Action(
        permissions.access_decide_request,
        ConfirmIdentityForm,
        "identity",
        lambda http, r, d: identifiers.request_confirm_identity(
            request=r, actor=_actor(http), types=d["types"], note=d["note"]
        ),
        _("Identity confirmed; the stores are searched by these identifiers from now on."),
    ),
    "retry": Action(
        permissions.access_decide_request,
        None,
        "",
        lambda http, r, d: request_retry_failed_jobs(request=r, actor=_actor(http)),
        _("Retry started: the failed jobs run again."),
    ),
    "confirm_job": Action(
        permissions.access_decide_request,
        ConfirmJobForm,
        "job",
        lambda http, r, d: job_confirm_manual(
            request=r, store_name=d["store"], actor=_actor(http), note=d["note"]
        ),
        _("Task confirmed as done."),
    ),
    "add_note": Action(
        permissions.access_decide_request,
        NoteForm,
        "note",
        lambda http, r, d: notes.note_add(request=r, author=http.user, text=d["text"]),
        _("Note added."),
    ),
}


def _unverified_choices(data_request: DataRequest) -> list[tuple[str, str]]:
    return [
        (state["type"], identity_type_label(state["type"]))
        for state in identifier_states(request=data_request)
        if not state["verified"]
    ]


def _new_form(name: str, data_request: DataRequest, data=None):
    action = ACTIONS[name]
    if name == "confirm_identity":
        return ConfirmIdentityForm(
            data, prefix=action.prefix, choices=_unverified_choices(data_request)
        )
    return action.form(data, prefix=action.prefix)


def _available(data_request: DataRequest) -> dict[str, bool]:
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
        "confirm_identity": current in identifiers.REVIEWABLE,
        "retry": current == Status.NEEDS_ATTENTION,
        "add_note": True,
    }


def _preview(http, data_request: DataRequest) -> dict | None:
    wanted = data_request.status in PREVIEW_STATES or http.GET.get("preview") == "1"
    if not wanted:
        return None
    try:
        preview = request_preview(request=data_request)
    except ServiceError as exc:
        return {"unavailable": exc.message}
    # Samples are people's records: shown to who may see the identity, counts to everyone.
    with_samples = permissions.access_reveal_identity(http.user)
    candidates = preview.get("candidates") or {}
    return {
        "stores": preview_stores(preview, with_samples=with_samples),
        "with_samples": with_samples,
        "complete": preview.get("complete", True),
        "total": preview.get("total", 0),
        "errors": sorted((preview.get("errors") or {}).items()),
        "warnings": preview.get("warnings") or [],
        "erasure_warnings": sorted((preview.get("erasure_warnings") or {}).items()),
        "erasure_notes": sorted((preview.get("erasure_notes") or {}).items()),
        "candidates": candidate_rows(candidates),
        "candidate_total": candidates.get("total", 0),
        "candidate_types": ", ".join(
            identity_type_label(t) for t in candidates.get("identifier_types", [])
        ),
        "mismatches": preview.get("identity_mismatches", 0),
        "manual": preview.get("manual") or [],
    }


def _identity_rows(data_request: DataRequest, revealed: dict | None) -> list[dict]:
    states = {state["type"]: state for state in identifier_states(request=data_request)}
    rows = []
    for identity_type, value in (data_request.identity or {}).items():
        state = states.get(identity_type, {})
        rows.append(
            {
                "type": identity_type,
                "label": identity_type_label(identity_type),
                "value": revealed[identity_type] if revealed else mask(identity_type, value),
                "verified": state.get("verified", False),
                "code_sent": state.get("state") == "code_sent",
                "method": method_label(state["method"]) if state.get("method") else "",
                "verified_at": state.get("verified_at"),
                "verified_by": state.get("verified_by") or "",
                "note": state.get("note") or "",
                "searched": state.get("searched", False),
            }
        )
    return rows


def _history(data_request: DataRequest) -> dict:
    earlier = []
    if data_request.subject_key:
        earlier = list(
            DataRequest.objects.filter(subject_key=data_request.subject_key)
            .exclude(pk=data_request.pk)
            .order_by("-received_at")
        )
    return {"requests": earlier, **access.subject_history(request=data_request)}


def _package(data_request: DataRequest):
    if data_request.kind != Kind.ACCESS:
        return None
    return (
        AccessPackage.objects.filter(request=data_request, deleted_at__isnull=True)
        .order_by("-created_at")
        .first()
    )


def _render(http, data_request, *, forms=None, revealed=None, status=200):
    user = http.user
    may_decide = permissions.access_decide_request(user)
    forms = forms or {}
    for name in ("reject", "extend", "ask_information", "confirm_identity", "add_note"):
        forms.setdefault(name, _new_form(name, data_request))
    jobs = data_request.jobs.select_related("store").order_by("store__name")
    rows = job_rows(jobs)
    for index, row in enumerate(rows):
        # One form per manual task on the page: ids of their own, so each label finds its box.
        row.form = forms.get(("confirm_job", row.store)) or ConfirmJobForm(
            prefix="job", initial={"store": row.store}
        )
        row.form.auto_id = f"id_job{index}_%s"
    return staff_page(
        http,
        "staff/request_detail.html",
        {
            "data_request": data_request,
            "identity": _identity_rows(data_request, revealed),
            "revealed": revealed is not None,
            "history": _history(data_request),
            "timeline": timeline(selectors.request_timeline(request=data_request)),
            "actions": _available(data_request) if may_decide else {},
            "forms": forms,
            # Assignment has its own address and view (requests.views.assign).
            "assign_form": assign_form(data_request),
            "jobs": rows,
            "jobs_done": sum(1 for row in rows if row.state == "done"),
            "preview": _preview(http, data_request),
            "package": _package(data_request)
            if permissions.access_download_package(user)
            else None,
            "notes": data_request.notes.all(),
            "replies": list(selectors.request_subject_replies(request=data_request)),
            "days_left": clock.days_left(data_request.due_on, today=clock.today()),
            "page_url": reverse("staff-request", args=[data_request.reference]),
        },
        status=status,
    )


@never_cache
@staff_only(permissions.access_view_requests)
@require_http_methods(["GET", "HEAD", "POST"])
def request_detail(http, reference):
    data_request = selectors.request_by_reference(reference)
    if data_request is None:
        raise Http404
    if http.method != "POST":
        return _render(http, data_request)
    name = http.POST.get("action", "")
    if name == "reveal":
        require(permissions.access_reveal_identity, http.user)
        try:
            revealed = reveal.identity_reveal(request=data_request, actor=_actor(http))
        except ServiceError as exc:
            messages.error(http, exc.message)
            return redirect("staff-request", reference)
        return _render(http, data_request, revealed=revealed)
    action = ACTIONS.get(name)
    if action is None:
        # Still a write attempt: who may not decide gets 403 before learning what exists.
        require(permissions.access_decide_request, http.user)
        messages.error(http, _("Unknown action."))
        return redirect("staff-request", reference)
    require(action.rule, http.user)
    form = _new_form(name, data_request, http.POST) if action.form else None
    if form is None or form.is_valid():
        try:
            action.perform(http, data_request, form.cleaned_data if form else {})
        except ServiceError as exc:
            messages.error(http, exc.message)
        else:
            messages.success(http, action.done)
        return redirect("staff-request", reference)
    # Invalid input: the page again, the form keeping what was typed next to its errors.
    key = ("confirm_job", form.data.get("job-store", "")) if name == "confirm_job" else name
    return _render(http, data_request, forms={key: form}, status=400)
