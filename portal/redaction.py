"""Secrets that travel in URLs, kept out of logs.

A person's private status page and emailed verification link carry a token in their path
(`/r/<reference>/status/<token>/`, `/r/<reference>/verify/<token>/`): whoever reads it reaches the
request. Logs keep the reference (it is no secret, and staff need it to follow a request) but
never the token, and never a query string. Used by gunicorn's access log (`portal.gunicorn_conf`)
and by the portal's own log handler (settings.LOGGING).
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

REDACTED = "[redacted]"

# The token segment after /r/<reference>/verify/ or /r/<reference>/status/, wherever it appears
# in a text (a Django "Not Found: <path>" message, a referer, a request line).
_TOKEN_SEGMENT = re.compile(r"(/r/[^/\s?#\"']+/(?:verify|status)/)[^/\s?#\"']+")


def redact_text(text: str) -> str:
    """The text with every status or verification token replaced by a marker."""
    return _TOKEN_SEGMENT.sub(rf"\g<1>{REDACTED}", text)


def redact_path(path: str | None) -> str:
    """A request path without its query string and with its tokens replaced."""
    if not path:
        return "-"
    return redact_text(path.split("?", 1)[0].split("#", 1)[0])


def redact_url(url: str | None) -> str:
    """A full URL (such as a Referer) reduced to its origin and redacted path."""
    if not url or url == "-":
        return "-"
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    origin = f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""
    return f"{origin}{redact_path(parts.path)}"


class RedactSecretPaths(logging.Filter):
    """A log handler filter that removes tokens from a record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_text(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redact_arg(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: _redact_arg(arg) for key, arg in record.args.items()}
        return True


def _redact_arg(value):
    return redact_text(value) if isinstance(value, str) else value
