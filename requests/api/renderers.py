"""The API's renderers: JSON, and DRF's HTML view of the API for staff signed in to the console."""

from __future__ import annotations

from rest_framework import renderers


class BrowsableAPIRenderer(renderers.BrowsableAPIRenderer):
    """DRF's browsable API without its inline stylesheet. That stylesheet only colours code in
    Markdown view descriptions, which the portal does not render, and the Content Security Policy
    allows no inline style; leaving it out keeps the page free of blocked content."""

    def get_context(self, data, accepted_media_type, renderer_context):
        context = super().get_context(data, accepted_media_type, renderer_context)
        context["code_style"] = None
        return context
