"""Staff API: the queue, one request, and the decisions on it. Token or session auth, staff only."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from requests import clock, permissions, selectors
from requests import queue as queue_selectors
from requests.api.serializers import (
    AskInformationSerializer,
    ConfirmIdentitySerializer,
    ExtendSerializer,
    RejectSerializer,
    StaffRequestDetailSerializer,
    StaffRequestListSerializer,
    staff_request_detail,
)
from requests.models import DataRequest
from requests.services import identifiers, lifecycle, reveal
from requests.services.audit import actor_for_user
from requests.states import Kind, Status


def _get_request(reference: str) -> DataRequest:
    return get_object_or_404(DataRequest.objects.all(), reference=reference)


class QueueQuerySerializer(serializers.Serializer):
    """The queue's filters, as the console's queue page has them (requests/queue.py)."""

    status = serializers.ChoiceField(
        choices=[queue_selectors.ALL, queue_selectors.OPEN, *sorted(selectors.VALID_STATUSES)],
        required=False,
        help_text="A state, `open` (every state not closed) or `all` (the default).",
        error_messages={
            "invalid_choice": "Unknown status; use one of "
            + ", ".join([queue_selectors.ALL, queue_selectors.OPEN, *sorted(Status.values)])
            + "."
        },
    )
    kind = serializers.ChoiceField(
        choices=Kind.values,
        required=False,
        error_messages={"invalid_choice": f"Unknown kind; use {' or '.join(Kind.values)}."},
    )
    due = serializers.ChoiceField(
        choices=[queue_selectors.OVERDUE, queue_selectors.DUE_THIS_WEEK],
        required=False,
        help_text="`overdue`, or `week`: due from today to this Sunday. Open requests only.",
    )
    flagged = serializers.BooleanField(
        required=False, default=False, help_text="Only requests flagged as possibly excessive."
    )
    mine = serializers.BooleanField(
        required=False, default=False, help_text="Only requests assigned to the caller."
    )
    q = serializers.CharField(
        required=False,
        max_length=254,
        help_text=(
            "A reference, or an email address compared as its keyed hash; searches every state "
            "unless `status` is given."
        ),
    )
    sort = serializers.ChoiceField(
        choices=list(queue_selectors.SORTS), required=False, default=queue_selectors.DEFAULT_SORT
    )


class StaffRequestListView(ListAPIView):
    serializer_class = StaffRequestListSerializer

    @extend_schema(parameters=[QueueQuerySerializer], summary="The queue of requests, filtered")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        query = QueueQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        filters = queue_selectors.QueueFilters(
            status=data.get("status", queue_selectors.ALL),
            kind=data.get("kind", ""),
            due=data.get("due", ""),
            flagged=data["flagged"],
            mine=data["mine"],
            q=data.get("q", ""),
            sort=data["sort"],
        )
        try:
            return queue_selectors.queue_requests(
                filters, today=clock.today(), user=self.request.user
            )
        except queue_selectors.SearchError as exc:
            raise ValidationError({"q": [exc.args[0]]}) from None


class DetailQuerySerializer(serializers.Serializer):
    reveal = serializers.BooleanField(
        required=False,
        default=False,
        help_text=(
            "`true` returns the identity in clear and records the reveal on the audit trail, as "
            "the request page's reveal does (DPOs and reviewers only: others get 403)."
        ),
    )


class StaffRequestDetailView(APIView):
    @extend_schema(
        parameters=[DetailQuerySerializer],
        responses=StaffRequestDetailSerializer,
        summary="One request with its timeline",
        description=(
            "`identity` is masked (`a***@example.com`), as on the request page, unless "
            "`?reveal=true` is given by staff who may reveal identities; each such reveal is an "
            "audit event under the caller's name."
        ),
    )
    def get(self, request, reference: str):
        query = DetailQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data_request = _get_request(reference)
        revealed = None
        if query.validated_data["reveal"]:
            if not permissions.access_reveal_identity(request.user):
                raise PermissionDenied("Only DPOs and reviewers may reveal an identity.")
            revealed = reveal.identity_reveal(
                request=data_request, actor=actor_for_user(request.user)
            )
        return Response(staff_request_detail(data_request, revealed=revealed))


class RequestPreviewView(APIView):
    @extend_schema(
        responses=OpenApiTypes.OBJECT,
        summary="What the request would find or erase in each store",
        description=(
            "Counts per store and collection with a small sample of records (empty for staff who "
            "may not reveal identities: auditors), and for erasures what erasure does in each "
            "collection. A store that fails is listed under `errors`."
        ),
    )
    def get(self, request, reference: str):
        from requests.services.preview import request_preview

        preview = request_preview(request=_get_request(reference))
        if not permissions.access_reveal_identity(request.user):
            # Samples are the person's records: auditors get the counts, as on the request page.
            for store in preview.get("stores", {}).values():
                for entry in store.get("collections", {}).values():
                    entry["sample"] = []
        return Response(preview)


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
        return Response(staff_request_detail(updated))


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
