"""One JSON error shape for the API: field errors keyed by field name, others under `detail`."""

from __future__ import annotations

import logging

from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from requests.identity import IdentityError
from requests.services.errors import ServiceError, ServiceUnavailable
from requests.views import unavailable

log = logging.getLogger(__name__)


def exception_handler(exc, context):
    if isinstance(exc, IdentityError):
        field = "identity" if exc.field == "identity" else exc.field
        body = (
            {"identity": {field: [exc.message]}} if field != "identity" else {field: [exc.message]}
        )
        return Response(body, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, unavailable.DATABASE_UNAVAILABLE):
        log.warning("database unavailable (%s); answered 503", type(exc).__name__)
        exc = ServiceUnavailable(unavailable.MESSAGE, retry_after=unavailable.RETRY_AFTER_SECONDS)
    if isinstance(exc, ServiceError):
        body = {exc.field: [exc.message]} if exc.field else {"detail": exc.message}
        body["code"] = exc.code
        response = Response(body, status=exc.status_code)
        retry_after = getattr(exc, "retry_after", None)
        if retry_after:
            response["Retry-After"] = str(retry_after)
        return response
    response = drf_exception_handler(exc, context)
    if response is None:
        # A bug, not bad input: log it (the traceback, never the request body) and answer JSON
        # so API clients get the same shape as for every other error.
        log.error("unexpected error in the API", exc_info=exc)
        return Response(
            {"detail": "Something went wrong on our side; it was logged.", "code": "server_error"},
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    return response


def raise_field_error(field: str, message: str) -> None:
    raise ValidationError({field: [message]})
