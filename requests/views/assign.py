"""Assigning a request to a DPO or reviewer from its page (a plain form, no script)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from requests import permissions, selectors
from requests.services.assignment import request_assign
from requests.services.audit import actor_for_user
from requests.services.errors import ServiceError
from requests.views.console import staff_only


class AssignForm(forms.Form):
    assignee = forms.ModelChoiceField(
        label=_("Assigned to"),
        queryset=selectors.staff_deciders(),
        required=False,
        empty_label=_("Nobody"),
        error_messages={"invalid_choice": _("Choose one of the people given.")},
    )


def assign_form(data_request) -> AssignForm:
    return AssignForm(prefix="assign", initial={"assignee": data_request.assigned_to_id})


@staff_only(permissions.access_decide_request)
@require_POST
def assign(request, reference):
    data_request = selectors.request_by_reference(reference)
    if data_request is None:
        raise Http404
    data = request.POST.copy()
    if "me" in data:
        data["assign-assignee"] = str(request.user.pk)
    form = AssignForm(data, prefix="assign")
    if not form.is_valid():
        messages.error(request, _("Choose one of the people given."))
        return redirect("staff-request", reference)
    try:
        updated = request_assign(
            request=data_request,
            assignee=form.cleaned_data["assignee"],
            actor=actor_for_user(request.user),
        )
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        if updated.assigned_to_id is None:
            messages.success(request, _("The request is assigned to nobody."))
        else:
            messages.success(
                request,
                _("The request is assigned to %(name)s.")
                % {"name": updated.assigned_to.get_username()},
            )
    return redirect("staff-request", reference)
