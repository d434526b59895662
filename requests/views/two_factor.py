"""Staff two-factor sign-in (PORTAL_STAFF_2FA): the password step, the code step, enrolment.

The password step is Django's sign-in (django-axes counts wrong passwords); with a second factor
needed, the session it opens is not verified (`request.user.is_verified()` is False) and
`SecondFactorMiddleware` sends it from every console and admin page to the code step, or to
enrolment when the account has no authenticator yet. API tokens are not affected; a session on
the staff API is refused until verified (requests/api/authentication.py).
"""

from __future__ import annotations

import segno
from axes.handlers.proxy import AxesProxyHandler
from django import forms
from django.conf import settings
from django.contrib import auth
from django.contrib.auth import views as auth_views
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, resolve_url
from django.urls import Resolver404, resolve, reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods
from django_otp import login as otp_login

from requests.services import staff_two_factor
from requests.services.errors import ServiceError
from requests.views.console import staff_page
from requests.views.staff_login import login_locked_out

# Pages a half-signed-in session may open: the two steps themselves and signing out.
_OPEN_TO_UNVERIFIED = {"staff-login", "staff-logout", "staff-login-code", "staff-two-factor"}
_GUARDED_PREFIXES = ("/staff/", "/admin/")


class SecondFactorMiddleware:
    """Sends a signed-in session that still owes its second factor from any console or admin
    page to the code step (or to enrolment), keeping where it was going."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if (
            request.path.startswith(_GUARDED_PREFIXES)
            and staff_two_factor.two_factor_mode() != "off"
            and request.user.is_authenticated
            and not request.user.is_verified()
            and _resolve(request.path) not in _OPEN_TO_UNVERIFIED
            and staff_two_factor.second_factor_needed(request.user)
        ):
            return redirect(_step_url(request.user, request.get_full_path()))
        return self.get_response(request)


def _resolve(path: str) -> str | None:
    try:
        return resolve(path).url_name
    except Resolver404:
        return None


def _step_url(user, next_url: str) -> str:
    name = "staff-login-code" if staff_two_factor.has_second_factor(user) else "staff-two-factor"
    return f"{reverse(name)}?{urlencode({'next': next_url})}"


def _next_url(request) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return resolve_url(settings.LOGIN_REDIRECT_URL)


class StaffLoginView(auth_views.LoginView):
    """The password step. Followed, when a second factor is needed, by the code step."""

    template_name = "staff/login.html"
    redirect_authenticated_user = True

    def form_valid(self, form):
        response = super().form_valid(form)
        user = form.get_user()
        if staff_two_factor.second_factor_needed(user):
            return redirect(_step_url(user, self.get_success_url()))
        return response


class CodeForm(forms.Form):
    code = forms.CharField(
        label=_("Code"),
        max_length=32,
        help_text=_(
            "The 6-digit code your authenticator app shows now, or one of your recovery codes."
        ),
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "spellcheck": "false", "autocapitalize": "off"}
        ),
        error_messages={"required": _("Enter the code from your authenticator app.")},
    )


def _unverified_user(request):
    if not request.user.is_authenticated:
        return None
    if request.user.is_verified() or not staff_two_factor.second_factor_needed(request.user):
        return None
    return request.user


def _verified(request, device):
    otp_login(request, device)
    # A new session key once the second factor is passed: one seen before it is worth nothing.
    request.session.cycle_key()


@never_cache
@sensitive_post_parameters("code")
@require_http_methods(["GET", "HEAD", "POST"])
def login_code(request):
    """The code step: a code from the authenticator app, or a recovery code (used once)."""
    user = _unverified_user(request)
    if user is None:
        if request.user.is_authenticated:
            return redirect(_next_url(request))
        return redirect("staff-login")
    if not staff_two_factor.has_second_factor(user):
        return redirect(_step_url(user, _next_url(request)))
    credentials = {"username": user.get_username()}
    if AxesProxyHandler.is_locked(request, credentials):
        auth.logout(request)
        return login_locked_out(request)
    form = CodeForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        check = staff_two_factor.second_factor_check(user=user, code=form.cleaned_data["code"])
        if check.device is not None:
            _verified(request, check.device)
            return redirect(_next_url(request))
        if check.throttled:
            form.add_error("code", _("Too many wrong codes: wait a few seconds and try again."))
            status = 429
        else:
            # A wrong code counts against the account like a wrong password (django-axes).
            user_login_failed.send(sender=__name__, credentials=credentials, request=request)
            if getattr(request, "axes_locked_out", False):
                auth.logout(request)
                request.axes_locked_out = False  # answered here, not again by axes' middleware
                return login_locked_out(request)
            form.add_error("code", _("That code does not match. Check it and try again."))
            status = 400
    elif request.method == "POST":
        status = 400
    return staff_page(
        request,
        "staff/login_code.html",
        {"form": form, "next": _next_url(request)},
        status=status,
    )


def _qr_code(uri: str) -> str:
    # Drawn here as an SVG data URI (img-src allows data:): no script, no inline style.
    return segno.make(uri, error="m").svg_data_uri(scale=4, dark="#000", light="#fff")


def _secret_base32(device) -> str:
    from base64 import b32encode

    secret = b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


@never_cache
@sensitive_post_parameters("code")
@require_http_methods(["GET", "HEAD", "POST"])
def enrol(request):
    """Set up an authenticator: scan or type the secret, confirm it with a code, then read the
    recovery codes, shown only in that answer. Only for an account with no authenticator yet:
    replacing one takes a DPO's reset."""
    if staff_two_factor.two_factor_mode() == "off":
        raise Http404
    if not request.user.is_authenticated:
        return redirect(f"{reverse('staff-login')}?{urlencode({'next': request.path})}")
    if not request.user.is_staff:
        raise PermissionDenied
    if staff_two_factor.has_second_factor(request.user):
        if request.method == "POST" or not request.user.is_verified():
            return redirect(_step_url(request.user, _next_url(request)))
        return staff_page(request, "staff/two_factor.html", {"enrolled": True})
    form = CodeForm(request.POST or None)
    form.fields["code"].help_text = _("The 6-digit code your authenticator app shows now.")
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            device, codes = staff_two_factor.two_factor_enrolment_confirm(
                user=request.user, code=form.cleaned_data["code"]
            )
        except ServiceError as exc:
            form.add_error("code", exc.message)
            status = 400
        else:
            _verified(request, device)
            return staff_page(
                request,
                "staff/two_factor_codes.html",
                {"codes": codes, "next": _next_url(request)},
            )
    elif request.method == "POST":
        status = 400
    device = staff_two_factor.two_factor_enrolment_start(user=request.user)
    return staff_page(
        request,
        "staff/two_factor.html",
        {
            "form": form,
            "secret": _secret_base32(device),
            "uri": device.config_url,
            "qr_code": _qr_code(device.config_url),
            "next": _next_url(request),
            "required": staff_two_factor.two_factor_mode() == "required",
            # Still owing the second factor: the console's links would only lead back here.
            "owed": _unverified_user(request) is not None,
        },
        status=status,
    )
