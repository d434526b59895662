"""The person's download of their access package, from their private status page.

The page is reached with the status link's token; the file itself needs a fresh single-use code,
emailed to the verified address when the person asks for one (`requests.services.packages`).
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.contrib import messages
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from requests import selectors
from requests.forms import VerifyCodeForm
from requests.models import AccessPackage, DataRequest, DownloadCode
from requests.services import packages
from requests.services.errors import RateLimited, ServiceError
from requests.views.public import rate_limited, use_request_language


def _authorised_request(reference: str, token: str) -> DataRequest:
    data_request = selectors.request_by_reference(reference)
    # Bytes, because compare_digest refuses non-ASCII text and a URL may carry any.
    if data_request is None or not hmac.compare_digest(
        token.encode(), data_request.status_token().encode()
    ):
        raise Http404
    return data_request


def download_path(data_request: DataRequest) -> str:
    return reverse("request-download", args=[data_request.reference, data_request.status_token()])


def _message(exc: ServiceError, package: AccessPackage | None) -> str:
    """The services speak English to the API; people on the pages read their own language."""
    if exc.code == "code_cap_reached":
        return _(
            "We have sent as many download codes for this copy as we can. Please contact us "
            "and we will send you your data another way."
        )
    if isinstance(exc, RateLimited):
        return ngettext(
            "We sent a code a moment ago. Please wait %(seconds)d second before asking for "
            "another.",
            "We sent a code a moment ago. Please wait %(seconds)d seconds before asking for "
            "another.",
            exc.retry_after or 1,
        ) % {"seconds": exc.retry_after or 1}
    if exc.code == "wrong_code" and package is not None:
        latest = DownloadCode.objects.filter(package=package).first()
        attempts = latest.failed_attempts if latest else 0
        remaining = max(0, settings.PORTAL_DOWNLOAD_CODE_MAX_ATTEMPTS - attempts)
        return ngettext(
            "That code is not right. You have %(remaining)d attempt left.",
            "That code is not right. You have %(remaining)d attempts left.",
            remaining,
        ) % {"remaining": remaining}
    return {
        "invalid": _("Enter the 6-digit code from the email."),
        "no_code": _("Ask for a download code first: we email it to you."),
        "used": _("This code was already used. Ask for a new code to download again."),
        "locked": _("Too many wrong codes were entered. Ask for a new code."),
        "code_expired": _("This code has expired. Ask for a new code."),
        "expired": _("Your copy is no longer available: the download period is over."),
        "not_ready": _("Your copy is not ready yet."),
    }.get(exc.code, _("We could not do this. Please try again."))


def _file_response(opened: packages.OpenedPackage) -> FileResponse:
    response = FileResponse(
        opened.file, as_attachment=True, filename=opened.filename, content_type="application/zip"
    )
    response["Cache-Control"] = "no-store"
    # An encrypted package is read through a stream that cannot tell its plaintext size.
    response["Content-Length"] = str(opened.size)
    return response


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def download(request, reference, token):
    data_request = _authorised_request(reference, token)
    use_request_language(request, data_request)
    package = AccessPackage.objects.filter(request=data_request).first()
    if package is None:
        raise Http404
    if request.method == "POST" and "send_code" in request.POST:
        limited = rate_limited(request, "verify_per_address", reference=reference)
        if limited:
            messages.error(request, limited[0])
            return redirect(download_path(data_request))
        try:
            packages.package_request_code(reference=reference)
        except ServiceError as exc:
            messages.error(request, _message(exc, package))
        else:
            minutes = int(settings.PORTAL_DOWNLOAD_CODE_TTL.total_seconds() // 60)
            messages.success(
                request,
                ngettext(
                    "We are emailing you a download code. It works once, for %(minutes)d minute.",
                    "We are emailing you a download code. It works once, for %(minutes)d minutes.",
                    minutes,
                )
                % {"minutes": minutes},
            )
        return redirect(download_path(data_request))
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
                opened = packages.package_open_for_subject(
                    reference=reference, code=form.cleaned_data["code"]
                )
            except ServiceError as exc:
                form.add_error("code", _message(exc, package))
                status = 410 if exc.code == "expired" else 400
            else:
                return _file_response(opened)
        package.refresh_from_db()
    response = render(
        request,
        "package/download.html",
        {
            "organisation": settings.PORTAL_ORGANISATION_NAME,
            "data_request": data_request,
            "package": package,
            "form": form,
            "status_url": reverse("request-status", args=[reference, token]),
            "code_minutes": int(settings.PORTAL_DOWNLOAD_CODE_TTL.total_seconds() // 60),
        },
        status=status,
    )
    if limited and limited[1]:
        response["Retry-After"] = str(limited[1])
    return response
