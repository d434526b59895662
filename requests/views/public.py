"""The public pages: file a request, confirm the email address, follow the request.

No account: a request is reached by its reference, and its private status page by a token derived
from it. Nothing here looks up whether the portal holds data about a person, and no page shows the
identity values given (the one read-back, how a phone number was read, is a message shown once to
the browser that filed).
"""

from __future__ import annotations

import hmac
import math

from django.conf import settings
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from requests import progress, selectors
from requests.api import throttling
from requests.forms import FileRequestForm, PhoneCodeForm, SubjectReplyForm, VerifyCodeForm
from requests.identity import phone_read_as
from requests.models import DataRequest, IdentityVerification
from requests.models.request import Source
from requests.services import identifiers, lifecycle, replies, verification
from requests.services.errors import RateLimited, ServiceError
from requests.states import Status, can_transition


def _page(request, template: str, context: dict, *, status: int = 200):
    context = {"organisation": settings.PORTAL_ORGANISATION_NAME, **context}
    return render(request, template, context, status=status)


def _request_or_404(reference: str) -> DataRequest:
    data_request = selectors.request_by_reference(reference)
    if data_request is None:
        raise Http404
    return data_request


def use_request_language(request, data_request: DataRequest) -> None:
    """Answer in the language the request was made in, whatever the browser asks for: the
    person chose it when filing, and the emails they receive are in it too."""
    if data_request.language in dict(settings.LANGUAGES):
        translation.activate(data_request.language)
        request.LANGUAGE_CODE = data_request.language


def limited_message(exc: RateLimited) -> str:
    """A rate limit's answer in the person's language: how long to wait."""
    minutes = max(1, math.ceil((exc.retry_after or 60) / 60))
    if exc.extra.get("limit") == "file_per_identity":
        return ngettext(
            "Many requests were made for these contact details recently. Please try again in "
            "%(minutes)d minute.",
            "Many requests were made for these contact details recently. Please try again in "
            "%(minutes)d minutes.",
            minutes,
        ) % {"minutes": minutes}
    return ngettext(
        "Too many attempts from your connection. Please try again in %(minutes)d minute.",
        "Too many attempts from your connection. Please try again in %(minutes)d minutes.",
        minutes,
    ) % {"minutes": minutes}


def rate_limited(request, limit: str, *, reference: str | None = None, identity=None):
    """The API's limits for a page's form: None if allowed, else (message, Retry-After seconds).

    `limit` is the per-address limit; a reference or identity adds its own limit too.
    """
    try:
        throttling.check_address(request, limit)
        if reference is not None:
            throttling.check_reference(reference)
        if identity is not None:
            throttling.check_identity(identity)
    except RateLimited as exc:
        return limited_message(exc), exc.retry_after
    return None


def _limited_page(request, template: str, context: dict, retry_after: int | None):
    response = _page(request, template, context, status=429)
    if retry_after:
        response["Retry-After"] = str(retry_after)
    return response


def _status_path(data_request: DataRequest) -> str:
    return reverse("request-status", args=[data_request.reference, data_request.status_token()])


def verification_error_message(exc: ServiceError, data_request: DataRequest) -> str:
    """The service speaks English to the API; people on the pages read it in their language."""
    if isinstance(exc, RateLimited):
        if exc.retry_after:
            return ngettext(
                "We sent a code a moment ago. Please wait %(seconds)d second before asking "
                "for another.",
                "We sent a code a moment ago. Please wait %(seconds)d seconds before asking "
                "for another.",
                exc.retry_after,
            ) % {"seconds": exc.retry_after}
        return _(
            "We have sent as many codes for this request as we can. If you still need to "
            "confirm it, please file a new request."
        )
    if exc.code == "wrong_code":
        # Read back after the failed attempt was committed, rather than parsed from English text.
        attempts = (
            IdentityVerification.objects.filter(request=data_request)
            .values_list("failed_attempts", flat=True)
            .first()
            or 0
        )
        remaining = max(0, settings.PORTAL_VERIFICATION_MAX_ATTEMPTS - attempts)
        return ngettext(
            "That code is not right. You have %(remaining)d attempt left.",
            "That code is not right. You have %(remaining)d attempts left.",
            remaining,
        ) % {"remaining": remaining}
    messages_by_code = {
        "locked": _("Too many wrong codes were entered. Ask for a new code, then try again."),
        "expired": _("This code has expired. Ask for a new code."),
        "already_used": _(
            "This request is already confirmed. Follow it with the status link in the email "
            "we sent you."
        ),
        "not_verifiable": _(
            "This request can no longer be confirmed. If you still want to make a request, "
            "please file a new one."
        ),
        "not_sent": _("We have not sent the code yet. Please wait a minute for the email."),
        "invalid_link": _(
            "This link is not valid. Use the link in the newest email we sent you, or type "
            "the code."
        ),
    }
    return messages_by_code.get(exc.code, _("We could not check this. Please try again."))


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def file_request(request):
    form = FileRequestForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        limited = rate_limited(request, "file_per_address", identity=form.cleaned_data["identity"])
        if limited:
            form.add_error(None, limited[0])
            return _limited_page(request, "public/file_request.html", {"form": form}, limited[1])
        try:
            filed = lifecycle.request_file(
                kind=form.cleaned_data["kind"],
                identity=form.cleaned_data["identity"],
                language=translation.get_language(),
                source=Source.PUBLIC,
            )
        except ServiceError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            phone = filed.identity.get("phone")
            if phone:
                # Said once, to the browser that typed it (a message, not the filed page, which
                # anyone holding the reference can open).
                messages.info(
                    request,
                    _("We read your phone number as %(phone)s.") % {"phone": phone_read_as(phone)},
                )
            return redirect("request-filed", filed.reference)
    status = 400 if form.errors else 200
    return _page(request, "public/file_request.html", {"form": form}, status=status)


@never_cache
@require_http_methods(["GET", "HEAD"])
def filed(request, reference):
    # Depends on the reference alone: the page must read the same whether or not anything is
    # held about the person, or it would tell a stranger who is a customer.
    data_request = _request_or_404(reference)
    return _page(
        request, "public/filed.html", {"data_request": data_request, "form": VerifyCodeForm()}
    )


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def verify_code(request, reference):
    data_request = _request_or_404(reference)
    if request.method == "POST" and "resend" in request.POST:
        limited = rate_limited(request, "verify_per_address", reference=reference)
        if limited:
            messages.error(request, limited[0])
        else:
            try:
                verification.request_resend_code(reference=reference)
            except ServiceError as exc:
                messages.error(request, verification_error_message(exc, data_request))
            else:
                messages.success(
                    request,
                    _("We are sending you a new code. Use only the code in the newest email."),
                )
        return redirect("request-verify", reference)
    form = VerifyCodeForm(request.POST if request.method == "POST" else None)
    status = 200
    limited = None
    if request.method == "POST":
        status = 400
        if form.is_valid():
            limited = rate_limited(request, "verify_per_address", reference=reference)
        if limited:
            form.add_error(None, limited[0])
            status = 429
        elif form.is_valid():
            try:
                verified = verification.request_verify_code(
                    reference=reference, code=form.cleaned_data["code"]
                )
            except ServiceError as exc:
                form.add_error("code", verification_error_message(exc, data_request))
            else:
                messages.success(request, _("Thank you: your email address is confirmed."))
                return redirect(_status_path(verified))
    response = _page(
        request,
        "public/verify.html",
        {"data_request": data_request, "form": form, "can_verify": _awaiting(data_request)},
        status=status,
    )
    if limited and limited[1]:
        response["Retry-After"] = str(limited[1])
    return response


def _awaiting(data_request: DataRequest) -> bool:
    return data_request.status == Status.AWAITING_VERIFICATION


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def verify_link(request, reference, token):
    # GET only shows a button: mail scanners fetch links, and a fetch must not confirm anything.
    data_request = _request_or_404(reference)
    error = None
    status = 200
    limited = None
    if request.method == "POST":
        limited = rate_limited(request, "verify_per_address", reference=reference)
        if limited:
            error, status = limited[0], 429
        else:
            try:
                verified = verification.request_verify_link(reference=reference, token=token)
            except ServiceError as exc:
                error = verification_error_message(exc, data_request)
                status = 409 if exc.code == "already_used" else 400
            else:
                messages.success(request, _("Thank you: your email address is confirmed."))
                return redirect(_status_path(verified))
    already_verified = data_request.verified_at is not None
    response = _page(
        request,
        "public/verify_link.html",
        {
            "data_request": data_request,
            "error": error,
            "already_verified": already_verified,
            "can_verify": _awaiting(data_request),
        },
        status=status,
    )
    if limited and limited[1]:
        response["Retry-After"] = str(limited[1])
    return response


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def status(request, reference, token):
    data_request = selectors.request_by_reference(reference)
    # Bytes, because compare_digest refuses non-ASCII text and a URL may carry any.
    if data_request is None or not hmac.compare_digest(
        token.encode(), data_request.status_token().encode()
    ):
        raise Http404
    use_request_language(request, data_request)
    if request.method == "POST" and "withdraw" in request.POST:
        try:
            lifecycle.request_cancel(request=data_request)
        except ServiceError:
            messages.error(request, _("This request can no longer be withdrawn."))
        else:
            messages.success(request, _("Your request is withdrawn. We will not act on it."))
        return redirect(_status_path(data_request))
    if request.method == "POST" and ("phone_send" in request.POST or "phone_code" in request.POST):
        _phone_step(request, data_request)
        return redirect(_status_path(data_request))
    reply_form = SubjectReplyForm()
    status_code = 200
    if request.method == "POST" and "reply" in request.POST:
        reply_form = SubjectReplyForm(request.POST)
        status_code = 400
        if reply_form.is_valid():
            try:
                replies.subject_reply_submit(
                    request=data_request, message=reply_form.cleaned_data["message"]
                )
            except ServiceError as exc:
                if exc.field == "message":
                    reply_form.add_error("message", exc.message)
                else:
                    messages.error(request, exc.message)
                    return redirect(_status_path(data_request))
            else:
                messages.success(
                    request, _("Thank you: we have your reply and continue with your request.")
                )
                return redirect(_status_path(data_request))
    last_reply = selectors.request_subject_replies(request=data_request).last()
    return _page(
        request,
        "public/status.html",
        {
            "data_request": data_request,
            "phone_state": _phone_state(data_request),
            "phone_form": PhoneCodeForm(),
            "reply_form": reply_form,
            "last_reply_at": last_reply.received_at if last_reply else None,
            "steps": progress.subject_steps(data_request),
            "next_step": progress.subject_next_step(data_request),
            "erasure": progress.erasure_outcome(data_request),
            "status_sentence": lifecycle.describe_status_for_subject(data_request),
            "can_withdraw": can_transition(data_request.status, Status.CANCELLED),
            "authority": settings.PORTAL_SUPERVISORY_AUTHORITY,
            "contact_email": settings.PORTAL_CONTACT_EMAIL,
        },
        status=status_code,
    )


def _phone_state(data_request: DataRequest) -> str | None:
    """Where the person stands in confirming their phone; None when there is nothing to do."""
    from requests.models import IdentifierState

    if not (data_request.identity or {}).get("phone"):
        return None
    if data_request.status not in identifiers.REVIEWABLE:
        return None
    row = data_request.identifier_checks.filter(identity_type="phone").first()
    if row is not None and row.state == IdentifierState.VERIFIED:
        return "verified"
    return row.state if row is not None else IdentifierState.UNVERIFIED


def _phone_step(request, data_request: DataRequest) -> None:
    """Send the phone's code or check it, telling the person the outcome on the status page."""
    limited = rate_limited(request, "verify_per_address", reference=data_request.reference)
    if limited is not None:
        messages.error(request, limited[0])
        return
    try:
        if "phone_send" in request.POST:
            identifiers.phone_code_send(reference=data_request.reference)
            messages.success(request, _("We sent a code by text message to your phone."))
            return
        form = PhoneCodeForm(request.POST)
        if not form.is_valid():
            messages.error(request, form.errors["code"][0])
            return
        identifiers.phone_code_check(
            reference=data_request.reference, code=form.cleaned_data["code"]
        )
    except ServiceError as exc:
        messages.error(request, exc.message)
        return
    messages.success(request, _("Your phone number is confirmed."))
