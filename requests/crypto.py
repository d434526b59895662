"""Encryption at rest and keyed hashes.

Identity values and store connection URLs are encrypted with Fernet (AES-128-CBC + HMAC) under
keys from PORTAL_ENCRYPTION_KEYS; the first key encrypts, all keys decrypt, so keys can rotate.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key.encode()) for key in keys])


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.PORTAL_ENCRYPTION_KEYS))


def encrypt_text(value: str) -> str:
    return fernet().encrypt(value.encode()).decode()


def decrypt_text(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ValueError("stored value cannot be decrypted with the configured keys") from exc


def keyed_hash(value: str, *, purpose: str) -> str:
    """HMAC-SHA256 of a value under PORTAL_HASH_KEY, separated by purpose."""
    key = hashlib.sha256(f"{purpose}:{settings.PORTAL_HASH_KEY}".encode()).digest()
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


class EncryptedTextField(models.TextField):
    """Text stored encrypted; it reads back as plain text. Not searchable by design."""

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        return decrypt_text(value)

    def get_prep_value(self, value):
        if value is None or value == "":
            return value
        return encrypt_text(str(value))


class EncryptedJSONField(models.TextField):
    """A JSON document stored encrypted; it reads back as Python data."""

    def from_db_value(self, value, expression, connection) -> Any:
        if value is None or value == "":
            return {}
        return json.loads(decrypt_text(value))

    def to_python(self, value):
        if isinstance(value, (dict, list)) or value is None:
            return value
        return json.loads(value)

    def get_prep_value(self, value):
        if value is None:
            return None
        return encrypt_text(json.dumps(value, sort_keys=True))
