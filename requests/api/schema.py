"""The OpenAPI schema documents every error status an operation can answer, with one Error shape.

Which statuses an operation can give follows from what it is: every operation can meet bad
input (400) and a database that is briefly away (503); staff operations need a token (401) of a
staff member (403); a path with a reference or name can miss (404); a change to something named
can be refused in its current state (409); a body can be too large (413) or of a type the API
does not read (415); a throttled operation can be rate limited (429).
"""

from __future__ import annotations

from drf_spectacular.authentication import SessionScheme
from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers
from rest_framework.permissions import AllowAny

ERROR_DESCRIPTIONS = {
    400: "Bad input: the error names the field at fault, or the body could not be read "
    "(including JSON nested deeper than PORTAL_MAX_JSON_DEPTH).",
    401: "No token, or a token that is not valid.",
    403: "The token's user is not staff.",
    404: "Nothing by this reference or name.",
    409: "Not allowed in the current state.",
    413: "The body is larger than this endpoint accepts; the message names the limit.",
    415: "The body's Content-Type is not one the API reads.",
    429: "Rate limited: wait Retry-After seconds.",
    503: "The database is briefly unavailable: nothing was done; wait Retry-After seconds.",
}
BODY_METHODS = ("POST", "PUT", "PATCH")
RETRY_AFTER = {
    "Retry-After": {
        "schema": {"type": "integer"},
        "description": "Seconds to wait before retrying.",
    }
}


class VerifiedSessionScheme(SessionScheme):
    """The console's session cookie, as DRF's own session scheme (it must have passed the
    second factor when PORTAL_STAFF_2FA asks for one)."""

    target_class = "requests.api.authentication.VerifiedSessionAuthentication"


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable, for programs: `wrong_code`, `too_large`...")
    message = serializers.CharField(help_text="For people; never repeats personal data.")
    field = serializers.CharField(
        allow_null=True, help_text="The input at fault, dotted for nested input; or null."
    )
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="When several inputs are wrong: each one with its messages.",
    )
    attempts_left = serializers.IntegerField(
        required=False, help_text="Wrong codes still allowed before the check locks."
    )
    limit = serializers.CharField(required=False, help_text="The rate limit that was reached.")
    retry_after = serializers.IntegerField(
        required=False, help_text="Seconds to wait, as in the Retry-After header."
    )


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


def error_statuses(*, method: str, public: bool, has_path_parameters: bool, throttled: bool):
    statuses = {400, 503}
    if not public:
        statuses |= {401, 403}
    if has_path_parameters:
        statuses.add(404)
        if method not in ("GET", "HEAD"):
            statuses.add(409)
    if method in BODY_METHODS:
        statuses |= {413, 415}
    if public or throttled:
        statuses.add(429)
    return sorted(statuses)


class PortalAutoSchema(AutoSchema):
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        permissions = self.view.get_permissions()
        statuses = error_statuses(
            method=self.method,
            public=bool(permissions) and all(isinstance(p, AllowAny) for p in permissions),
            has_path_parameters="{" in self.path,
            throttled=bool(self.view.get_throttles()),
        )
        for status in statuses:
            code = str(status)
            documented = self._get_response_for_code(
                ErrorSerializer, code, ("application/json",), direction
            )
            documented["description"] = (
                responses.get(code, {}).get("description") or (ERROR_DESCRIPTIONS[status])
            )
            for media_type in self.map_renderers("media_type"):
                if "json" not in media_type:
                    # A view that also renders pages (the certificate) answers its errors as a
                    # short page when a page was asked for.
                    documented["content"][media_type] = {"schema": {"type": "string"}}
            if status in (429, 503):
                documented["headers"] = {**documented.get("headers", {}), **RETRY_AFTER}
            responses[code] = documented
        return responses
