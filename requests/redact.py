"""Saying what went wrong without repeating it: an exception's message can quote the person's
data (a driver's "Key (email)=(ada@...)", a service's echo of what it was sent), so logs, audit
events and job errors keep its kind, the length of its message and a keyed hash of it (to match
with another system's logs), and a traceback's frames without the message."""

from __future__ import annotations

import traceback

from requests.crypto import keyed_hash


def describe(exc: BaseException) -> str:
    """`ValueError (message of 41 characters, keyed hash 3f9a...)`: safe to log and to keep."""
    text = str(exc)
    if not text:
        return type(exc).__name__
    digest = keyed_hash(text, purpose="error-message")[:16]
    return f"{type(exc).__name__} (message of {len(text)} characters, keyed hash {digest})"


def frames(exc: BaseException) -> str:
    """Where it was raised: file, line and function of each frame, and the source lines (the
    code, not the values)."""
    return "".join(traceback.format_tb(exc.__traceback__)).rstrip()
