"""One JSON error shape for every API error.

    {"error": {"code": "wrong_code", "message": "That code is not right...", "field": "code",
               "attempts_left": 3}}

`code` is stable and meant for programs, `message` is for people, `field` names the input at
fault (dotted for nested input, `identity.phone`) or is null. When several inputs are wrong,
`fields` maps each one to its messages. Services' extra facts (`attempts_left`) sit beside them.
Nothing here ever repeats what the person sent: messages come from the code, not the input.
"""

from __future__ import annotations

import logging
import sys

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import (
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.http import Http404, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from requests.identity import IdentityError
from requests.services.errors import ServiceError, ServiceUnavailable
from requests.views import unavailable

log = logging.getLogger(__name__)


def error_body(code: str, message: str, field: str | None = None, **extra) -> dict:
    return {"error": {"code": code, "message": message, "field": field, **extra}}


def _flatten(detail, path: tuple = ()) -> list[tuple[str | None, exceptions.ErrorDetail]]:
    """Every message in a DRF validation detail, with the dotted path of the input at fault."""
    if isinstance(detail, dict):
        found = []
        for key, value in detail.items():
            inner = path if key in ("non_field_errors", "detail") else (*path, str(key))
            found.extend(_flatten(value, inner))
        return found
    if isinstance(detail, list):
        found = []
        for item in detail:
            found.extend(_flatten(item, path))
        return found
    if not isinstance(detail, exceptions.ErrorDetail):
        detail = exceptions.ErrorDetail(str(detail), code="invalid")
    return [(".".join(path) or None, detail)]


def _validation_body(exc: exceptions.ValidationError) -> dict:
    errors = _flatten(exc.detail) or [(None, exceptions.ErrorDetail("Invalid input.", "invalid"))]
    field, first = errors[0]
    extra = {}
    if len(errors) > 1:
        fields: dict[str, list[str]] = {}
        for path, message in errors:
            fields.setdefault(path or "", []).append(str(message))
        extra["fields"] = fields
    return error_body(first.code or "invalid", str(first), field, **extra)


def _api_exception_response(exc: exceptions.APIException) -> Response:
    if isinstance(exc, exceptions.ValidationError):
        body = _validation_body(exc)
    else:
        detail = exc.detail
        if isinstance(detail, (list, dict)):
            _, first = _flatten(detail)[0]
            message, code = str(first), first.code
        else:
            message, code = str(detail), getattr(detail, "code", None)
        body = error_body(code or exc.default_code, message)
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))
    return Response(body, status=exc.status_code, headers=headers)


def _too_big_message() -> str:
    return (
        "The request body is larger than this endpoint accepts "
        f"({settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes)."
    )


def exception_handler(exc, context):
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    if isinstance(exc, IdentityError):
        field = "identity" if exc.field == "identity" else f"identity.{exc.field}"
        return Response(error_body("invalid", exc.message, field), status=400)
    if isinstance(exc, unavailable.DATABASE_UNAVAILABLE):
        log.warning("database unavailable (%s); answered 503", type(exc).__name__)
        exc = ServiceUnavailable(unavailable.MESSAGE, retry_after=unavailable.RETRY_AFTER_SECONDS)
    if isinstance(exc, ServiceError):
        body = error_body(exc.code, exc.message, exc.field, **exc.extra)
        response = Response(body, status=exc.status_code)
        retry_after = getattr(exc, "retry_after", None)
        if retry_after:
            response["Retry-After"] = str(retry_after)
        set_rollback()
        return response
    if isinstance(exc, exceptions.APIException):
        set_rollback()
        return _api_exception_response(exc)
    if isinstance(exc, RequestDataTooBig):
        return Response(
            error_body("too_large", _too_big_message()),
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, (TooManyFieldsSent, TooManyFilesSent)):
        return Response(
            error_body(
                "too_many_fields",
                f"The request has more than {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS} fields.",
            ),
            status=400,
        )
    if isinstance(exc, SuspiciousOperation):
        return Response(error_body("bad_request", "The request could not be read."), status=400)
    # A bug, not bad input: log it (the traceback, never the request body) and answer JSON
    # so API clients get the same shape as for every other error.
    log.error("unexpected error in the API", exc_info=exc)
    return Response(
        error_body("server_error", "Something went wrong on our side; it was logged."),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


def _is_api(request) -> bool:
    return request.path_info.startswith("/api/")


def page_not_found(request, exception=None):
    """Unknown addresses under /api/ answer the API's error shape; others the 404 page."""
    if _is_api(request):
        return JsonResponse(error_body("not_found", "Not found."), status=404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    # A lost database outside any view (a middleware loading the session, say) reaches only this
    # handler; it is the same 503 with Retry-After as in a view, not a 500.
    if isinstance(sys.exc_info()[1], unavailable.DATABASE_UNAVAILABLE):
        log.warning("database unavailable outside a view; answered 503")
        return unavailable.unavailable_response(request)
    if _is_api(request):
        return JsonResponse(
            error_body("server_error", "Something went wrong on our side; it was logged."),
            status=500,
        )
    return defaults.server_error(request)


def bad_request(request, exception=None):
    if _is_api(request):
        return JsonResponse(error_body("bad_request", "The request could not be read."), status=400)
    return defaults.bad_request(request, exception)
