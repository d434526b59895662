"""Records as compact JSON text: values JSON has no type for are written as text."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

# The types SQL drivers return most, converted without walking the isinstance chain below.
_BY_TYPE: dict[type, Callable[[Any], Any]] = {
    Decimal: str,
    datetime: datetime.isoformat,
    date: date.isoformat,
    time: time.isoformat,
    uuid.UUID: str,
}


def _default(value: Any) -> Any:
    convert = _BY_TYPE.get(value.__class__)
    if convert is not None:
        return convert(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return {"base64": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if isinstance(value, timedelta):
        return value.total_seconds()
    return str(value)


# One encoder for every record: `json.dumps` with options builds a new encoder on each call, and
# even `JSONEncoder.encode` builds its C encoder anew each time; build it once where it exists.
_ENCODER = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), default=_default, check_circular=False
)
_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
if _c_make_encoder is not None:  # pragma: no branch - CPython
    _C_ENCODE = _c_make_encoder(
        None, _default, json.encoder.encode_basestring, None, ":", ",", False, False, True
    )

    def encode_record(value: Any, _encode=_C_ENCODE, _join="".join) -> str:
        """One value as compact JSON text (UTF-8 kept readable, no spaces)."""
        return _join(_encode(value, 0))

else:  # pragma: no cover - other Pythons
    encode_record: Callable[[Any], str] = _ENCODER.encode  # type: ignore[no-redef]
