"""Staff API for connected stores. Connection URLs and secrets are write-only, and nothing here
shows a store's host, port, path or credentials (check outcomes are a code and our own words)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from requests import permissions
from requests.models import ConnectedStore, StoreKind
from requests.services import store_health, store_lifecycle, stores
from requests.services.audit import actor_for_user
from requests.services.store_checks import CHECK_MESSAGES


class StoreCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=63)
    kind = serializers.ChoiceField(choices=StoreKind.choices)
    url = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    map = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)
    discover = serializers.BooleanField(required=False, default=False)
    secret = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    queue = serializers.CharField(max_length=63, required=False, allow_blank=True, default="")
    options = serializers.DictField(
        required=False,
        default=dict,
        help_text=(
            "Kind-specific settings. `allow_private` and `allowed_roots` are refused: the "
            "portal's PORTAL_WEBHOOK_ALLOW_PRIVATE and PORTAL_FILES_ROOTS decide for every store."
        ),
    )


class StoreUpdateSerializer(serializers.Serializer):
    enabled = serializers.BooleanField()


class CheckResultSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    code = serializers.ChoiceField(
        choices=sorted(CHECK_MESSAGES),
        help_text=(
            "Stable: ok, invalid_map, invalid_url, not_allowed, unavailable, map_mismatch, "
            "cannot_handle (the store answers, but a job would stop on its map)."
        ),
    )
    message = serializers.CharField()
    problems = serializers.ListField(
        child=serializers.CharField(),
        help_text="What makes the check fail, each naming the collection (table) and fields.",
    )
    warnings = serializers.ListField(
        child=serializers.CharField(),
        help_text=(
            "What a job will do differently from what the map seems to ask (a loop erasure "
            "masks), or do slowly (a large table searched without an index)."
        ),
    )
    notes = serializers.ListField(
        child=serializers.CharField(),
        help_text="How erasure goes about the store; nothing to fix.",
    )


class StoreSerializer(serializers.ModelSerializer):
    """What staff see of a store: never its URL or secret."""

    collections = serializers.SerializerMethodField()
    has_url = serializers.SerializerMethodField()

    class Meta:
        model = ConnectedStore
        fields = [
            "name",
            "kind",
            "enabled",
            "queue",
            "options",
            "has_url",
            "collections",
            "last_check_ok",
            "last_check_code",
            "last_check_message",
            "last_checked_at",
            "created_at",
            "updated_at",
        ]

    def get_collections(self, obj) -> list[str]:
        return stores.store_collections(obj)

    def get_has_url(self, obj) -> bool:
        return bool(obj.url)


class StoreMapSerializer(serializers.Serializer):
    map = serializers.CharField(allow_blank=True, trim_whitespace=False)


def _store(name: str) -> ConnectedStore:
    return stores.store_get(name=name)


class StoreListView(APIView):
    access_read = staticmethod(permissions.access_view_stores)
    access_write = staticmethod(permissions.access_manage_stores)

    @extend_schema(responses=StoreSerializer(many=True), summary="Connected stores")
    def get(self, request):
        return Response(StoreSerializer(stores.live_stores(), many=True).data)

    @extend_schema(
        request=StoreCreateSerializer,
        responses={201: StoreSerializer},
        summary="Connect a store",
        description=(
            "With `discover: true` the portal reads the store's schema, drafts a map and applies "
            "it. The URL is kept encrypted and never returned."
        ),
    )
    def post(self, request):
        serializer = StoreCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        store = stores.store_create(
            name=data["name"],
            kind=data["kind"],
            url=data["url"],
            map_yaml=data["map"],
            discover=data["discover"],
            secret=data["secret"],
            queue=data["queue"],
            options=data["options"],
            actor=actor_for_user(request.user),
        )
        return Response(StoreSerializer(store).data, status=status.HTTP_201_CREATED)


class StoreDetailView(APIView):
    access_read = staticmethod(permissions.access_view_stores)
    access_write = staticmethod(permissions.access_manage_stores)

    @extend_schema(responses=StoreSerializer, summary="One connected store")
    def get(self, request, name: str):
        return Response(StoreSerializer(_store(name)).data)

    @extend_schema(
        request=StoreUpdateSerializer,
        responses=StoreSerializer,
        summary="Enable or disable a store",
        description=(
            "A disabled store is not searched, previewed or given jobs of requests approved "
            "from then on; jobs it already has still run."
        ),
    )
    def patch(self, request, name: str):
        store = _store(name)
        serializer = StoreUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        updated = store_lifecycle.store_set_enabled(
            store=store,
            enabled=serializer.validated_data["enabled"],
            actor=actor_for_user(request.user),
        )
        return Response(StoreSerializer(updated).data)

    @extend_schema(
        request=None,
        responses={
            204: OpenApiResponse(description="Deleted."),
            409: OpenApiResponse(
                description="Requests not yet closed have jobs in it, or another store's map "
                "refers to it."
            ),
        },
        summary="Delete a store",
        description=(
            "A store that past requests used is kept for their records, disabled and with its "
            "URL and secret wiped; it disappears from the API and its name stays taken."
        ),
    )
    def delete(self, request, name: str):
        store_lifecycle.store_delete(store=_store(name), actor=actor_for_user(request.user))
        return Response(status=status.HTTP_204_NO_CONTENT)


class StoreMapView(APIView):
    access_read = staticmethod(permissions.access_view_stores)
    access_write = staticmethod(permissions.access_manage_stores)

    @extend_schema(responses=StoreMapSerializer, summary="The store's map (YAML)")
    def get(self, request, name: str):
        return Response({"map": _store(name).map_yaml})

    @extend_schema(
        request=StoreMapSerializer,
        responses=StoreMapSerializer,
        summary="Replace the store's map",
        description="The map is validated first; errors name the line and the problem.",
    )
    def put(self, request, name: str):
        store = _store(name)
        serializer = StoreMapSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        updated = stores.store_update_map(
            store=store,
            map_yaml=serializer.validated_data["map"],
            actor=actor_for_user(request.user),
        )
        return Response({"map": updated.map_yaml})


class StoreCheckView(APIView):
    access_read = staticmethod(permissions.access_view_stores)
    access_write = staticmethod(permissions.access_manage_stores)

    @extend_schema(request=None, responses=CheckResultSerializer, summary="Check the connection")
    def post(self, request, name: str):
        result = store_health.store_check(store=_store(name), actor=actor_for_user(request.user))
        return Response(CheckResultSerializer(result).data)
