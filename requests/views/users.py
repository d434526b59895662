"""Staff accounts for DPOs: who has which role, a new account, another role for an account."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from requests import permissions, selectors
from requests.services import staff_two_factor, staff_users
from requests.services.audit import actor_for_user
from requests.services.errors import ServiceError
from requests.views.console import staff_only, staff_page

ROLE_CHOICES = [(role, permissions.ROLE_LABELS[role]) for role in permissions.ROLES]


class StaffCreateForm(forms.Form):
    username = forms.CharField(
        label=_("Username"),
        max_length=150,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
        error_messages={"required": _("Enter a username.")},
    )
    role = forms.ChoiceField(
        label=_("Role"),
        choices=ROLE_CHOICES,
        error_messages={"invalid_choice": _("Choose one of the roles given.")},
    )


class RoleForm(forms.Form):
    role = forms.ChoiceField(
        label=_("Role"),
        choices=ROLE_CHOICES,
        error_messages={"invalid_choice": _("Choose one of the roles given.")},
    )


class LanguageForm(forms.Form):
    language = forms.ChoiceField(
        label=_("Language"),
        choices=[("", _("The browser's")), *settings.LANGUAGES],
        required=False,
        error_messages={"invalid_choice": _("Choose one of the languages given.")},
    )


def _row(request, user, enrolled: set[int], languages: dict[int, str]) -> dict:
    role = permissions.user_role(user)
    return {
        "language_form": LanguageForm(
            prefix=f"language-{user.pk}", initial={"language": languages.get(user.pk, "")}
        ),
        "second_factor": user.pk in enrolled,
        "user": user,
        "role_label": permissions.ROLE_LABELS.get(role, ""),
        "form": RoleForm(prefix=f"user-{user.pk}", initial={"role": role}),
        "fixed": user.is_superuser or user.pk == request.user.pk or not user.is_active,
    }


def _rows(request) -> list[dict]:
    users = list(selectors.staff_users())
    enrolled = staff_two_factor.users_with_second_factor(user.pk for user in users)
    languages = selectors.staff_languages(user.pk for user in users)
    return [_row(request, user, enrolled, languages) for user in users]


@never_cache
@staff_only(permissions.access_manage_users)
@require_http_methods(["GET", "HEAD", "POST"])
def users(request):
    create_form = StaffCreateForm(prefix="new")
    created = None
    status = 200
    if request.method == "POST" and request.POST.get("action") == "create":
        create_form = StaffCreateForm(request.POST, prefix="new")
        if create_form.is_valid():
            try:
                user, password = staff_users.staff_user_create(
                    **create_form.cleaned_data, actor=actor_for_user(request.user)
                )
            except ServiceError as exc:
                create_form.add_error(exc.field, exc.message)
            else:
                # Shown once, in this answer only: never stored in a message cookie or log.
                created = {"username": user.get_username(), "password": password}
                create_form = StaffCreateForm(prefix="new")
        if created is None:
            status = 400
    elif request.method == "POST" and request.POST.get("action") == "reset_two_factor":
        return _reset_two_factor(request)
    elif request.method == "POST" and request.POST.get("action") == "set_language":
        return _set_language(request)
    elif request.method == "POST":
        return _set_role(request)
    return staff_page(
        request,
        "staff/users.html",
        {
            "rows": _rows(request),
            "create_form": create_form,
            "created": created,
            "two_factor": staff_two_factor.two_factor_mode(),
            "roles": [
                (permissions.ROLE_LABELS[role], permissions.ROLE_DESCRIPTIONS[role])
                for role in permissions.ROLES
            ],
        },
        status=status,
    )


def _posted_staff_user(request):
    raw = request.POST.get("user", "")
    user = (
        get_user_model().objects.filter(pk=int(raw)).first()
        if raw.isdigit() and len(raw) < 19
        else None
    )
    if user is None or not user.is_staff:
        raise Http404
    return user


def _reset_two_factor(request):
    """A lost phone: the account's authenticator and recovery codes go; its owner sets up a new
    one at their next sign-in."""
    user = _posted_staff_user(request)
    try:
        staff_two_factor.two_factor_reset(user=user, actor_user=request.user)
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            _("Two-factor sign-in of %(username)s was reset.") % {"username": user.get_username()},
        )
    return redirect("staff-users")


def _set_role(request):
    user = _posted_staff_user(request)
    form = RoleForm(request.POST, prefix=f"user-{user.pk}")
    if not form.is_valid():
        messages.error(request, _("Choose one of the roles given."))
        return redirect("staff-users")
    try:
        staff_users.staff_user_set_role(
            user=user, role=form.cleaned_data["role"], actor_user=request.user
        )
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            _("%(username)s is now %(role)s.")
            % {
                "username": user.get_username(),
                "role": permissions.ROLE_LABELS[form.cleaned_data["role"]],
            },
        )
    return redirect("staff-users")


def _set_language(request):
    user = _posted_staff_user(request)
    form = LanguageForm(request.POST, prefix=f"language-{user.pk}")
    if not form.is_valid():
        messages.error(request, _("Choose one of the languages given."))
        return redirect("staff-users")
    staff_users.staff_user_set_language(
        user=user, language=form.cleaned_data["language"], actor_user=request.user
    )
    messages.success(
        request,
        _("The console language of %(username)s was saved.") % {"username": user.get_username()},
    )
    return redirect("staff-users")


@never_cache
@staff_only(permissions.access_staff_console)
@require_POST
def own_language(request):
    """The console's language switcher for a signed-in staff member: their choice is kept on
    their profile (audited), so every console page and their mail follow it on any browser."""
    form = LanguageForm({"language": request.POST.get("language", "")})
    if not form.is_valid():
        messages.error(request, _("Choose one of the languages given."))
        return redirect("staff-queue")
    language = form.cleaned_data["language"]
    staff_users.staff_user_set_language(
        user=request.user, language=language, actor_user=request.user
    )
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        next_url = reverse("staff-queue")
    response = HttpResponseRedirect(next_url)
    if language:
        # The sign-in page, before anyone is known, follows the same choice.
        response.set_cookie(
            settings.LANGUAGE_COOKIE_NAME,
            language,
            max_age=settings.LANGUAGE_COOKIE_AGE,
            samesite=settings.LANGUAGE_COOKIE_SAMESITE,
            secure=settings.LANGUAGE_COOKIE_SECURE,
            httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
        )
    return response
