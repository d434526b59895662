"""Staff API for access requests: download the package, confirm a manual store's job."""

from __future__ import annotations

from django.http import FileResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from requests import permissions
from requests.api.serializers import StaffRequestDetailSerializer, staff_request_detail
from requests.models import DataRequest
from requests.services import packages
from requests.services.audit import actor_for_user
from requests.services.job_staff import MAX_NOTE_LENGTH, job_confirm_manual


def _get_request(reference: str) -> DataRequest:
    return get_object_or_404(DataRequest.objects.all(), reference=reference)


class PackageView(APIView):
    access_read = staticmethod(permissions.access_download_package)

    @extend_schema(
        summary="Download the access package (ZIP); every download is audited",
        responses={
            (200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY, description="The ZIP"),
            404: OpenApiResponse(
                description="No package: not ready yet, expired, or not an access request"
            ),
        },
    )
    def get(self, request, reference: str):
        opened = packages.package_open_for_staff(
            request=_get_request(reference), actor=actor_for_user(request.user)
        )
        response = FileResponse(
            opened.file,
            as_attachment=True,
            filename=opened.filename,
            content_type="application/zip",
        )
        response["Cache-Control"] = "no-store"
        # An encrypted package is read through a stream that cannot tell its plaintext size.
        response["Content-Length"] = str(opened.size)
        return response


class ConfirmJobSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=MAX_NOTE_LENGTH)


class ConfirmManualJobView(APIView):
    access_write = staticmethod(permissions.access_decide_request)

    @extend_schema(
        request=ConfirmJobSerializer,
        responses=StaffRequestDetailSerializer,
        summary="Confirm a manual store's job, with a note saying what was done",
    )
    def post(self, request, reference: str, store: str):
        data_request = _get_request(reference)
        serializer = ConfirmJobSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        job_confirm_manual(
            request=data_request,
            store_name=store,
            actor=actor_for_user(request.user),
            note=serializer.validated_data["note"],
        )
        data_request.refresh_from_db()
        return Response(staff_request_detail(data_request))
