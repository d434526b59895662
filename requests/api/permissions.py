"""The staff API's permission class: the `access_*` rules of `requests.permissions`, per view.

A view names its rules with two attributes: `access_read` for GET, HEAD and OPTIONS, and
`access_write` for the other methods. A view that names none is readable by every staff role and
writable only by a DPO, so a new endpoint never opens to reviewers or auditors by accident.
"""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

from requests import permissions


class StaffAccess(BasePermission):
    message = "Your role does not allow this."

    def has_permission(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            rule = getattr(view, "access_read", permissions.access_view_requests)
        else:
            rule = getattr(view, "access_write", permissions.access_manage_portal)
        # The rules are plain functions; stored as class attributes they arrive bound.
        rule = getattr(rule, "__func__", rule)
        return bool(rule(request.user))
