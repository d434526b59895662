"""Staff API for erasures and the jobs behind any request: the certificate, retry, staff tasks."""

from __future__ import annotations

import base64
import hashlib
from functools import cache

from csp.decorators import csp_update
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.utils.decorators import method_decorator
from django.utils.html import escape
from django.utils.safestring import mark_safe
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from requests import permissions
from requests.api.serializers import StaffRequestDetailSerializer, staff_request_detail
from requests.models import DataRequest
from requests.services.audit import actor_for_user
from requests.services.erasure import recipients
from requests.services.erasure.certificate import erasure_certificate
from requests.services.job_staff import request_retry_failed_jobs


def _get_request(reference: str) -> DataRequest:
    return get_object_or_404(DataRequest.objects.all(), reference=reference)


@cache
def certificate_style() -> tuple[str, str]:
    """The certificate's stylesheet and its CSP source: the page is one self-contained file (kept
    or printed as a record), so its style is inline, allowed by its hash rather than a nonce so
    that the same certificate always renders to the same bytes."""
    css = render_to_string("erasure/certificate.css")
    digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    return css, f"'sha256-{digest}'"


class CertificateHTMLRenderer(BaseRenderer):
    """The certificate as a readable page; errors as a short page with their message."""

    media_type = "text/html"
    format = "html"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        response = (renderer_context or {}).get("response")
        is_error = response is not None and response.status_code >= 400
        # Anything but a certificate (an error, or OPTIONS' description of the view) is a short
        # page: the certificate's template needs a certificate's fields.
        if is_error or not isinstance(data, dict) or "sweep" not in data:
            error = data.get("error") if isinstance(data, dict) else None
            message = error.get("message", "") if isinstance(error, dict) else ""
            if not is_error and isinstance(data, dict):
                message = str(data.get("description") or data.get("name") or "")
            return (
                '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
                f"<title>Erasure certificate</title></head><body><p>{escape(message)}</p>"
                "</body></html>"
            )
        style = mark_safe(certificate_style()[0])  # noqa: S308 (the project's own file)
        return render_to_string("erasure/certificate.html", {"c": data, "style": style})


class CertificateView(APIView):
    renderer_classes = [JSONRenderer, CertificateHTMLRenderer]

    @extend_schema(
        summary="The erasure certificate: what was erased, held and kept, and the sweep's result",
        description=(
            "JSON by default; a readable page with `?format=html` or `Accept: text/html`. It holds "
            "no personal data. 404 until the erasure is completed and verified."
        ),
        parameters=[
            OpenApiParameter("format", OpenApiTypes.STR, enum=["json", "html"], required=False)
        ],
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="The certificate"),
            404: OpenApiResponse(description="Not an erasure, or not completed yet"),
        },
    )
    @method_decorator(csp_update({"style-src": [certificate_style()[1]]}))
    def get(self, request, reference: str):
        return Response(erasure_certificate(request=_get_request(reference)))


@extend_schema(
    request=None,
    responses=StaffRequestDetailSerializer,
    summary="Retry a request that needs attention: its failed jobs run again",
)
class RetryView(APIView):
    access_write = staticmethod(permissions.access_decide_request)

    def post(self, request, reference: str):
        updated = request_retry_failed_jobs(
            request=_get_request(reference), actor=actor_for_user(request.user)
        )
        return Response(staff_request_detail(updated))


class StaffTaskListView(APIView):
    @extend_schema(
        summary="Open tasks: manual stores to handle by hand and recipients still erasing",
        description=(
            "Each with its request, store, instructions, due date and whether it is overdue. "
            "Manual tasks are confirmed with `POST .../jobs/<store>/confirm/`."
        ),
        parameters=[
            OpenApiParameter("overdue", OpenApiTypes.BOOL, required=False),
            OpenApiParameter("limit", OpenApiTypes.INT, required=False),
            OpenApiParameter("offset", OpenApiTypes.INT, required=False),
        ],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request):
        raw = request.query_params.get("overdue")
        overdue = None
        if raw not in (None, ""):
            if raw.lower() not in ("true", "false", "1", "0"):
                raise ValidationError({"overdue": ["Use true or false."]})
            overdue = raw.lower() in ("true", "1")
        limit = _whole(
            request, "limit", recipients.STAFF_TASKS_PAGE, most=recipients.STAFF_TASKS_MAX_PAGE
        )
        offset = _whole(request, "offset", 0)
        count, tasks = recipients.staff_tasks(overdue=overdue, limit=limit, offset=offset)
        return Response({"count": count, "limit": limit, "offset": offset, "results": tasks})


def _whole(request, name: str, default: int, *, most: int | None = None) -> int:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    if not raw.isdigit() or (most is not None and not 1 <= int(raw) <= most):
        bounds = f"from 1 to {most}" if most is not None else "0 or more"
        raise ValidationError({name: [f"Use a whole number {bounds}."]})
    return int(raw)
