"""Identity values a person gives: which types exist, their limits, and their normal forms.

The same normal forms are used at intake and by the finder, so `LUISG@Embraer.com.br ` and
`luisg@embraer.com.br` are one person and `+33 6 12 34 56 78` matches `0033612345678`.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from requests.engine import normalise as engine_normalise

# Public intake accepts these; store maps may define further custom types.
INTAKE_TYPES = ("email", "phone", "name", "account_id")
MAX_LENGTHS = {"email": 254, "phone": 32, "name": 200, "account_id": 128}


class IdentityError(ValueError):
    """Bad identity input; `field` names the identity type at fault."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def normalise_phone(value: str) -> str:
    """E.164 form, reading national numbers in PORTAL_DEFAULT_PHONE_REGION; ValueError if none."""
    return engine_normalise.normalise_phone(value, settings.PORTAL_DEFAULT_PHONE_REGION)


def clean_intake_identity(raw: object) -> dict[str, str]:
    """Validate what a person typed; returns the identity with empty optional values dropped."""
    if not isinstance(raw, dict):
        raise IdentityError("identity", "Must be an object with at least an email.")
    unknown = sorted(set(raw) - set(INTAKE_TYPES))
    if unknown:
        raise IdentityError(unknown[0], f"Unknown identity type; use {', '.join(INTAKE_TYPES)}.")
    cleaned: dict[str, str] = {}
    for field in INTAKE_TYPES:
        value = raw.get(field)
        if value is None or (isinstance(value, str) and not value.strip()):
            if field == "email":
                raise IdentityError("email", "An email address is required.")
            continue
        if not isinstance(value, str):
            raise IdentityError(field, "Must be text.")
        value = value.strip()
        if len(value) > MAX_LENGTHS[field]:
            raise IdentityError(field, f"At most {MAX_LENGTHS[field]} characters.")
        if field == "email":
            try:
                validate_email(value)
            except ValidationError:
                raise IdentityError("email", "Enter a valid email address.") from None
            value = engine_normalise.normalise_email(value)
        elif field == "phone":
            try:
                value = normalise_phone(value)
            except ValueError:
                raise IdentityError(
                    "phone", "Enter a valid phone number in international form, e.g. +33612345678."
                ) from None
        cleaned[field] = value
    return cleaned
