from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from requests import clock
from requests.identity import INTAKE_TYPES, MAX_LENGTHS
from requests.masking import mask
from requests.models import AuditEvent, DataRequest
from requests.states import Kind, RejectionReason


class IdentitySerializer(serializers.Serializer):
    """Shape only; values are validated and normalised by `requests.identity`."""

    email = serializers.CharField(max_length=MAX_LENGTHS["email"], trim_whitespace=True)
    phone = serializers.CharField(max_length=MAX_LENGTHS["phone"], required=False, allow_blank=True)
    name = serializers.CharField(max_length=MAX_LENGTHS["name"], required=False, allow_blank=True)
    account_id = serializers.CharField(
        max_length=MAX_LENGTHS["account_id"], required=False, allow_blank=True
    )

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(INTAKE_TYPES))
            if unknown:
                raise serializers.ValidationError(
                    {unknown[0]: [f"Unknown identity type; use {', '.join(INTAKE_TYPES)}."]}
                )
        return super().to_internal_value(data)


class FileRequestSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Kind.choices)
    identity = IdentitySerializer()
    language = serializers.ChoiceField(choices=["en", "fr"], required=False, default="en")


class FiledRequestSerializer(serializers.Serializer):
    reference = serializers.CharField()
    status = serializers.CharField()


class FileAnswerSerializer(FiledRequestSerializer):
    phone_read_as = serializers.CharField(
        required=False,
        help_text=(
            "Present when a phone was given: how it was read, in international form "
            "(`+33 6 12 34 56 78`); a national number is read in the organisation's region."
        ),
    )


class VerifySerializer(serializers.Serializer):
    code = serializers.CharField(max_length=32)


class VerifyPhoneSerializer(serializers.Serializer):
    """Without a code: send one to the request's phone. With the code: check it."""

    code = serializers.CharField(max_length=32, required=False)


class PhoneVerificationSerializer(serializers.Serializer):
    reference = serializers.CharField()
    status = serializers.CharField()
    phone = serializers.ChoiceField(choices=["code_sent", "verified"])


class ConfirmIdentitySerializer(serializers.Serializer):
    types = serializers.ListField(
        child=serializers.CharField(max_length=64), allow_empty=False, max_length=20
    )
    note = serializers.CharField(max_length=5000)


class IdentifierStateSerializer(serializers.Serializer):
    type = serializers.CharField()
    state = serializers.ChoiceField(choices=["unverified", "code_sent", "verified"])
    verified = serializers.BooleanField()
    method = serializers.CharField(allow_null=True)
    verified_at = serializers.DateTimeField(allow_null=True)
    verified_by = serializers.CharField(allow_null=True)
    note = serializers.CharField(allow_null=True)
    searched = serializers.BooleanField()


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = ["sequence", "action", "actor", "created_at", "details", "hash"]


class StaffRequestListSerializer(serializers.ModelSerializer):
    received_at = serializers.DateTimeField()
    due_at = serializers.DateField(source="due_on", allow_null=True)
    overdue = serializers.BooleanField(source="is_overdue")
    due_soon = serializers.BooleanField(source="is_due_soon")
    days_left = serializers.SerializerMethodField()
    assigned_to = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = DataRequest
        fields = [
            "reference",
            "kind",
            "status",
            "source",
            "received_at",
            "verified_at",
            "due_at",
            "overdue",
            "due_soon",
            "days_left",
            "assigned_to",
        ]

    def get_days_left(self, obj) -> int | None:
        return clock.days_left(obj.due_on, today=clock.today())


class StaffRequestDetailSerializer(StaffRequestListSerializer):
    identity = serializers.DictField(child=serializers.CharField())
    events = AuditEventSerializer(many=True)
    jobs = serializers.SerializerMethodField()
    # Art. 12(5): repeated requests are flagged for staff, never refused automatically.
    earlier_requests = serializers.SerializerMethodField()
    possibly_excessive = serializers.SerializerMethodField()
    package = serializers.SerializerMethodField()
    # Each identifier type with whether, how and by whom it was proven (never its value).
    identifiers = serializers.SerializerMethodField()

    class Meta(StaffRequestListSerializer.Meta):
        fields = [
            *StaffRequestListSerializer.Meta.fields,
            "language",
            "identity",
            "identifiers",
            "extension_months",
            "extension_reason",
            "rejection_reason",
            "staff_message",
            "attention_reason",
            "closed_at",
            "jobs",
            "earlier_requests",
            "possibly_excessive",
            "package",
            "events",
        ]

    def get_jobs(self, obj) -> list[dict]:
        from requests.services.erasure.recipients import request_job_summaries

        return request_job_summaries(request=obj)

    def _subject_history(self, obj) -> dict:
        from requests.services.access import subject_history

        if getattr(obj, "_subject_history", None) is None:
            obj._subject_history = subject_history(request=obj)
        return obj._subject_history

    @extend_schema_field(IdentifierStateSerializer(many=True))
    def get_identifiers(self, obj) -> list[dict]:
        from requests.assurance import identifier_states

        return IdentifierStateSerializer(identifier_states(request=obj), many=True).data

    def get_earlier_requests(self, obj) -> int:
        return self._subject_history(obj)["earlier_requests"]

    def get_possibly_excessive(self, obj) -> bool:
        return self._subject_history(obj)["possibly_excessive"]

    def get_package(self, obj) -> dict | None:
        """The access package's facts (never its content); null until it is built."""
        from requests.models import AccessPackage

        package = AccessPackage.objects.filter(request=obj).first()
        if package is None:
            return None
        return {
            "records": package.records,
            "counts": package.counts,
            "size": package.size,
            "sha256": package.sha256,
            "created_at": package.created_at,
            "expires_at": package.expires_at,
            "deleted_at": package.deleted_at,
            "downloads": package.downloads,
        }


class RejectSerializer(serializers.Serializer):
    reason = serializers.ChoiceField(choices=RejectionReason.choices)
    message = serializers.CharField(required=False, allow_blank=True, max_length=5000, default="")


class ExtendSerializer(serializers.Serializer):
    months = serializers.IntegerField(min_value=1, max_value=clock.MAX_EXTENSION_MONTHS)
    reason = serializers.CharField(max_length=5000)


class AskInformationSerializer(serializers.Serializer):
    message = serializers.CharField(max_length=5000)


def staff_request_detail(data_request: DataRequest, *, revealed: dict | None = None) -> dict:
    """The request as the API shows it: the identity masked unless a recorded reveal gave it."""
    data = StaffRequestDetailSerializer(data_request).data
    data["identity"] = (
        dict(revealed)
        if revealed is not None
        else {key: mask(key, value) for key, value in data["identity"].items()}
    )
    return data
