"""Identity values a person gives: which types exist, their limits, and their normal forms.

The same normal forms are used at intake and by the finder, so `LUISG@Embraer.com.br ` and
`luisg@embraer.com.br` are one person and `+33 6 12 34 56 78` matches `0033612345678`.
"""

from __future__ import annotations

import unicodedata

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from idna import IDNAError
from idna import encode as idna_encode

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


# Characters of an unquoted local part besides letters and digits (RFC 5322 atext); RFC 6531
# adds every non-ASCII character that is not a control, format, unassigned or space character.
_ATEXT = frozenset("!#$%&'*+/=?^_`{|}~-")
MAX_LOCAL_PART_OCTETS = 64


def _local_part_ok(local: str) -> bool:
    if not local or local.startswith(".") or local.endswith(".") or ".." in local:
        return False
    if len(local.encode()) > MAX_LOCAL_PART_OCTETS:
        return False
    for char in local:
        if char.isascii():
            if not (char.isalnum() or char in _ATEXT or char == "."):
                return False
        elif unicodedata.category(char)[0] in "CZ":
            return False
    return True


def validate_intake_email(value: str) -> None:
    """Django's check for ASCII addresses; internationalised ones (RFC 6531) are checked here:
    an unquoted local part of atext and non-ASCII characters, and a domain IDNA 2008 accepts
    (the ASCII form of which then passes Django's domain check). Raises ValidationError."""
    if value.isascii():
        validate_email(value)
        return
    local, at, domain = unicodedata.normalize("NFC", value).rpartition("@")
    if not at or not _local_part_ok(local):
        raise ValidationError("invalid local part")
    try:
        ascii_domain = idna_encode(domain.lower(), uts46=True).decode("ascii")
    except (IDNAError, UnicodeError):
        raise ValidationError("invalid domain") from None
    validate_email(f"x@{ascii_domain}")


def normalise_phone(value: str) -> str:
    """E.164 form, reading national numbers in PORTAL_DEFAULT_PHONE_REGION; ValueError if none."""
    return engine_normalise.normalise_phone(value, settings.PORTAL_DEFAULT_PHONE_REGION)


def phone_read_as(e164: str) -> str:
    """How the portal read a phone number, in international form (`+33 6 12 34 56 78`), to show
    back to the person who typed it: a national number is read in the default region, and they
    should see which country that made it."""
    return phonenumbers.format_number(
        phonenumbers.parse(e164, None), phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )


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
                validate_intake_email(value)
            except ValidationError:
                raise IdentityError("email", "Enter a valid email address.") from None
            value = engine_normalise.normalise_email(value)
        elif field == "phone":
            try:
                value = normalise_phone(value)
            except ValueError:
                region = settings.PORTAL_DEFAULT_PHONE_REGION
                raise IdentityError(
                    "phone",
                    "Enter a valid phone number in international form, e.g. +33612345678"
                    + (f", or a national number from {region}." if region else "."),
                ) from None
        cleaned[field] = value
    return cleaned
