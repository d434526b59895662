"""Limits on what a request body may cost: its size (per kind of endpoint) and its JSON depth.

The size is checked from Content-Length before anything reads the body, so an oversized body
is refused without being buffered; API clients get the JSON error shape, browsers a page. The
depth is checked while parsing, because Python's JSON parser recurses and a deep enough body
would otherwise end in a RecursionError (a 500).
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.utils import translation
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

STORES_PATH = "/api/v1/staff/stores/"
MAP_PATH_SUFFIX = "/map/"


def body_limit(path: str) -> tuple[int, str]:
    """The largest body accepted at `path`, with the setting that sets it (named in errors)."""
    if path == STORES_PATH or (path.startswith(STORES_PATH) and path.endswith(MAP_PATH_SUFFIX)):
        # Where a map is sent: room for the longest map, JSON-encoded (newlines and quotes
        # escaped); the stores service then refuses a map text over PORTAL_MAP_MAX_BYTES itself.
        limit = max(settings.PORTAL_STAFF_MAX_BODY_BYTES, 2 * settings.PORTAL_MAP_MAX_BYTES)
        return limit, "twice PORTAL_MAP_MAX_BYTES"
    if path.startswith(("/api/v1/staff/", "/staff/", "/admin/")):
        return settings.PORTAL_STAFF_MAX_BODY_BYTES, "PORTAL_STAFF_MAX_BODY_BYTES"
    return settings.PORTAL_MAX_BODY_BYTES, "PORTAL_MAX_BODY_BYTES"


def too_large_message(limit: int, setting: str) -> str:
    return f"The request body is larger than the {limit} bytes this endpoint accepts ({setting})."


def _declared_length(request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return -1


class BodyLimitMiddleware:
    """Answers 413 to a body larger than its endpoint's limit, before the body is read."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        length = _declared_length(request)
        if length < 0:
            return self._refuse(request, 400, "bad_length", "The Content-Length is not a number.")
        limit, setting = body_limit(request.path_info)
        if length > limit:
            return self._refuse(request, 413, "too_large", too_large_message(limit, setting))
        return self.get_response(request)

    @staticmethod
    def _refuse(request, status: int, code: str, message: str):
        if request.path_info.startswith("/api/"):
            response = JsonResponse(
                {"error": {"code": code, "message": message, "field": None}}, status=status
            )
        else:
            # Refused before LocaleMiddleware runs: choose the person's language here.
            with translation.override(translation.get_language_from_request(request)):
                template = "413.html" if status == 413 else "400.html"
                page = render_to_string(template, request=request)
            response = HttpResponse(page, status=status)
        return response


class TooDeep(ParseError):
    default_code = "too_deep"


def json_depth(value) -> int:
    """How deeply lists and objects nest in a parsed JSON value, without recursing."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


class DepthLimitedJSONParser(JSONParser):
    """DRF's JSON parser, refusing bodies nested deeper than PORTAL_MAX_JSON_DEPTH with a 400."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.PORTAL_MAX_JSON_DEPTH
        message = f"The JSON body is nested deeper than {limit} levels (PORTAL_MAX_JSON_DEPTH)."
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise TooDeep(message) from None
        if json_depth(data) > limit:
            raise TooDeep(message)
        return data
