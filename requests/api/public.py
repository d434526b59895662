"""Public API: file a request and verify it. No account; rate-limited per client address, per
identity and per reference (`requests.api.throttling`)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from requests.api.serializers import (
    FileAnswerSerializer,
    FiledRequestSerializer,
    FileRequestSerializer,
    PhoneVerificationSerializer,
    VerifyPhoneSerializer,
    VerifySerializer,
)
from requests.api.throttling import PublicVerifyThrottle, check_address, check_filing
from requests.identity import phone_read_as
from requests.models.request import Source
from requests.services import identifiers, lifecycle, verification


class PublicAPIView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]


class FileRequestView(PublicAPIView):
    # Limited per client address and per identity (429 documented for every public operation),
    # both counted in post() once the body is read, in one round trip to the cache.
    throttle_classes: list = []

    @extend_schema(
        request=FileRequestSerializer,
        responses={201: FileAnswerSerializer},
        summary="File an access or erasure request",
        description=(
            "Answers the same way whether or not anything is held about the identity. "
            "A verification email with a code is sent to the email given."
        ),
    )
    def post(self, request):
        try:
            serializer = FileRequestSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
        except Exception:
            # A body that cannot be filed counts against the address as any attempt does, and
            # an address over its limit is told so (429) before what is wrong with the body.
            check_address(request, "file_per_address")
            raise
        check_filing(request, serializer.validated_data["identity"])
        filed = lifecycle.request_file(
            kind=serializer.validated_data["kind"],
            identity=serializer.validated_data["identity"],
            language=serializer.validated_data["language"],
            source=Source.API,
        )
        body = {"reference": filed.reference, "status": filed.status}
        if filed.identity.get("phone"):
            body["phone_read_as"] = phone_read_as(filed.identity["phone"])
        # Already the documented shape (FileAnswerSerializer): strings only, nothing to convert.
        return Response(body, status=status.HTTP_201_CREATED)


class VerifyRequestView(PublicAPIView):
    throttle_classes = [PublicVerifyThrottle]

    @extend_schema(
        request=VerifySerializer,
        responses={200: FiledRequestSerializer},
        summary="Verify a request with the emailed code",
    )
    def post(self, request, reference: str):
        serializer = VerifySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        verified = verification.request_verify_code(
            reference=reference, code=serializer.validated_data["code"]
        )
        return Response(FiledRequestSerializer(verified).data)


class ResendCodeView(PublicAPIView):
    throttle_classes = [PublicVerifyThrottle]

    @extend_schema(
        request=None,
        responses={202: FiledRequestSerializer},
        summary="Send a new verification code",
    )
    def post(self, request, reference: str):
        pending = verification.request_resend_code(reference=reference)
        return Response(FiledRequestSerializer(pending).data, status=status.HTTP_202_ACCEPTED)


class VerifyPhoneView(PublicAPIView):
    throttle_classes = [PublicVerifyThrottle]

    @extend_schema(
        request=VerifyPhoneSerializer,
        responses={200: PhoneVerificationSerializer, 202: PhoneVerificationSerializer},
        summary="Verify the request's phone number by a text-message code",
        description=(
            "Once the email is verified: without a code, a code is sent by text message to the "
            "phone given (202); with `code`, it is checked (200). Until the phone is verified, "
            "records held under it are not searched."
        ),
    )
    def post(self, request, reference: str):
        serializer = VerifyPhoneSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        code = serializer.validated_data.get("code")
        if code is None:
            sent = identifiers.phone_code_send(reference=reference)
            body = {"reference": sent.reference, "status": sent.status, "phone": "code_sent"}
            return Response(PhoneVerificationSerializer(body).data, status=status.HTTP_202_ACCEPTED)
        checked = identifiers.phone_code_check(reference=reference, code=code)
        body = {"reference": checked.reference, "status": checked.status, "phone": "verified"}
        return Response(PhoneVerificationSerializer(body).data)
