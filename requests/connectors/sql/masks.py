"""How the SQL connector's erasure masks a field: a map's FieldMask resolved against the column
(which strategy, which constant), and the per-record values of the hash and random strategies,
computed here because HMAC needs the key, which no database should see."""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import hmac
import secrets
import string
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql import sqltypes

from requests.connectors.sql.statements import is_text
from requests.engine.store import FieldMask, PermanentStoreError
from requests.engine.storemap import Collection, MaskStrategy

_RANDOM_TEXT = string.ascii_lowercase + string.digits
_RANDOM_DATE_SPAN = 365 * 50  # days from 1970-01-01: a date that says nothing about the person

_CONSTANT = (MaskStrategy.NULL, MaskStrategy.FIXED)


class Mask:
    """A FieldMask resolved against the column: the strategy to apply and its constant value."""

    def __init__(self, column: sa.Column, strategy: MaskStrategy, value: Any = None) -> None:
        self.column = column
        self.strategy = strategy
        self.value = value

    @property
    def constant(self) -> bool:
        return self.strategy in _CONSTANT

    def new_value(self, current: Any, hash_key: bytes) -> Any:
        if self.constant:
            return self.value
        if current is None:
            return None  # nothing personal to hide, and NULL stays NULL
        if self.strategy == MaskStrategy.HASH:
            digest = hmac.new(hash_key, str(current).encode(), hashlib.sha256).hexdigest()
            return digest[: _length(self.column) or len(digest)]
        return _random_like(current, self.column)


def resolve_mask(column: sa.Column, collection: Collection, fm: FieldMask) -> Mask | None:
    """The mask to apply to `column`, or None for a field kept as it is. A field without a
    strategy is nulled where the column allows it, else hashed when it is text."""
    strategy = fm.strategy
    where = f"collection {collection.name}, field {fm.field}"
    if strategy == MaskStrategy.KEEP:
        return None
    if strategy is None:
        if column.nullable:
            strategy = MaskStrategy.NULL
        elif is_text(column):
            strategy = MaskStrategy.HASH
        else:
            raise PermanentStoreError(
                f"{where}: cannot be masked by default (it may not be null and is not text); "
                "give it a mask strategy in the map"
            )
    if strategy == MaskStrategy.NULL and not column.nullable:
        raise PermanentStoreError(
            f"{where}: the null mask needs a column that allows null; choose another strategy"
        )
    if strategy == MaskStrategy.HASH and not is_text(column):
        raise PermanentStoreError(f"{where}: the hash mask needs a text column")
    if strategy == MaskStrategy.FIXED:
        return Mask(column, strategy, _fixed_value(column, fm.value, where))
    return Mask(column, strategy)


def _length(column: sa.Column) -> int | None:
    return getattr(column.type, "length", None)


def _fixed_value(column: sa.Column, value: str | None, where: str) -> Any:
    if value is None:
        raise PermanentStoreError(f"{where}: the fixed mask needs a mask_value")
    if is_text(column):
        length = _length(column)
        return value[:length] if length else value
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        python_type = str
    try:
        if python_type is int:
            return int(value)
        if python_type is decimal.Decimal:
            return decimal.Decimal(value)
        if python_type is float:
            return float(value)
        if python_type is dt.date:
            return dt.date.fromisoformat(value)
        if python_type is dt.datetime:
            return dt.datetime.fromisoformat(value)
    except (ValueError, ArithmeticError):
        pass
    raise PermanentStoreError(f"{where}: the fixed mask_value does not fit the column's type")


def _random_like(current: Any, column: sa.Column) -> Any:
    """Random data of the same kind and size class as `current`, fitting the column."""
    if isinstance(current, bool):
        return secrets.choice((True, False))
    if isinstance(current, str):
        length = max(1, len(current))
        limit = _length(column)
        if limit:
            length = min(length, limit)
        return "".join(secrets.choice(_RANDOM_TEXT) for _ in range(length))
    if isinstance(current, int):
        digits = len(str(abs(current))) or 1
        low = 10 ** (digits - 1) if digits > 1 else 0
        high = min(10**digits - 1, _int_limit(column))
        return low + secrets.randbelow(max(1, high - low + 1))
    if isinstance(current, decimal.Decimal):
        exponent = current.as_tuple().exponent
        scale = -exponent if isinstance(exponent, int) and exponent < 0 else 0
        digits = max(1, len(str(int(abs(current)))))
        raw = secrets.randbelow(10 ** (digits + scale))
        return decimal.Decimal(raw).scaleb(-scale)
    if isinstance(current, float):
        return secrets.randbelow(10**6) / 1000.0
    if isinstance(current, dt.datetime):
        day = dt.datetime(1970, 1, 1, tzinfo=current.tzinfo)
        return day + dt.timedelta(days=secrets.randbelow(_RANDOM_DATE_SPAN))
    if isinstance(current, dt.date):
        return dt.date(1970, 1, 1) + dt.timedelta(days=secrets.randbelow(_RANDOM_DATE_SPAN))
    if isinstance(current, bytes | bytearray | memoryview):
        return secrets.token_bytes(len(bytes(current)))
    if column.nullable:
        return None
    raise PermanentStoreError(
        f"column {column.name}: the random mask cannot make a value of this type; choose "
        "another strategy"
    )


def _int_limit(column: sa.Column) -> int:
    if isinstance(column.type, sqltypes.SmallInteger):
        return 2**15 - 1
    if isinstance(column.type, sqltypes.BigInteger):
        return 2**63 - 1
    return 2**31 - 1
