"""Staff API: the queue, one request, and the decisions on it. Token or session auth, staff only."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from requests import permissions, selectors
from requests.api.serializers import (
    AskInformationSerializer,
    ConfirmIdentitySerializer,
    ExtendSerializer,
    RejectSerializer,
    StaffRequestDetailSerializer,
    StaffRequestListSerializer,
)
from requests.models import DataRequest
from requests.services import identifiers, lifecycle
from requests.services.audit import actor_for_user


def _get_request(reference: str) -> DataRequest:
    return get_object_or_404(DataRequest.objects.all(), reference=reference)


class StaffRequestListView(ListAPIView):
    serializer_class = StaffRequestListSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "status", OpenApiTypes.STR, enum=sorted(selectors.VALID_STATUSES), required=False
            )
        ],
        summary="The queue of requests, soonest due first",
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        status = self.request.query_params.get("status") or None
        if status is not None and status not in selectors.VALID_STATUSES:
            raise ValidationError(
                {
                    "status": [
                        f"Unknown status; use one of {', '.join(sorted(selectors.VALID_STATUSES))}."
                    ]
                }
            )
        return selectors.staff_queue(status=status)


class StaffRequestDetailView(APIView):
    @extend_schema(responses=StaffRequestDetailSerializer, summary="One request with its timeline")
    def get(self, request, reference: str):
        return Response(StaffRequestDetailSerializer(_get_request(reference)).data)


class RequestPreviewView(APIView):
    @extend_schema(
        responses=OpenApiTypes.OBJECT,
        summary="What the request would find or erase in each store",
        description=(
            "Counts per store and collection with a small sample of records, and for erasures "
            "what erasure does in each collection. A store that fails is listed under `errors`."
        ),
    )
    def get(self, request, reference: str):
        from requests.services.preview import request_preview

        return Response(request_preview(request=_get_request(reference)))


class StaffRequestActionView(APIView):
    """Base for decisions: validate, call one service, answer with the request."""

    access_write = staticmethod(permissions.access_decide_request)
    serializer_class = None

    def perform(self, data_request: DataRequest, actor: str, data: dict) -> DataRequest:
        raise NotImplementedError

    def post(self, request, reference: str):
        data_request = _get_request(reference)
        data: dict = {}
        if self.serializer_class is not None:
            serializer = self.serializer_class(data=request.data)
            serializer.is_valid(raise_exception=True)
            data = serializer.validated_data
        updated = self.perform(data_request, actor_for_user(request.user), data)
        return Response(StaffRequestDetailSerializer(updated).data)


@extend_schema(request=None, responses=StaffRequestDetailSerializer, summary="Approve")
class ApproveView(StaffRequestActionView):
    def perform(self, data_request, actor, data):
        return lifecycle.request_approve(request=data_request, actor=actor)


@extend_schema(
    request=RejectSerializer, responses=StaffRequestDetailSerializer, summary="Reject with a reason"
)
class RejectView(StaffRequestActionView):
    serializer_class = RejectSerializer

    def perform(self, data_request, actor, data):
        return lifecycle.request_reject(
            request=data_request, actor=actor, reason=data["reason"], message=data["message"]
        )


@extend_schema(
    request=ExtendSerializer, responses=StaffRequestDetailSerializer, summary="Extend the deadline"
)
class ExtendView(StaffRequestActionView):
    serializer_class = ExtendSerializer

    def perform(self, data_request, actor, data):
        return lifecycle.request_extend(
            request=data_request, actor=actor, months=data["months"], reason=data["reason"]
        )


@extend_schema(
    request=AskInformationSerializer,
    responses=StaffRequestDetailSerializer,
    summary="Ask the person for more information",
)
class AskInformationView(StaffRequestActionView):
    serializer_class = AskInformationSerializer

    def perform(self, data_request, actor, data):
        return lifecycle.request_ask_information(
            request=data_request, actor=actor, message=data["message"]
        )


@extend_schema(
    request=None,
    responses=StaffRequestDetailSerializer,
    summary="Record that the asked-for information arrived",
)
class InformationReceivedView(StaffRequestActionView):
    def perform(self, data_request, actor, data):
        return lifecycle.request_information_received(request=data_request, actor=actor)


@extend_schema(
    request=ConfirmIdentitySerializer,
    responses=StaffRequestDetailSerializer,
    summary="Confirm identifiers the person proved to staff",
    description=(
        "Records that staff saw proof of the named identifiers (say which in the note). From then "
        "on the stores are searched by them, except a name, which is never a search key on its "
        "own. Allowed while the request is in_review or awaiting_information."
    ),
)
class ConfirmIdentityView(StaffRequestActionView):
    serializer_class = ConfirmIdentitySerializer

    def perform(self, data_request, actor, data):
        return identifiers.request_confirm_identity(
            request=data_request, actor=actor, types=data["types"], note=data["note"]
        )
