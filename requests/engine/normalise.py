"""Normal forms of identity values, shared by intake and the finder (no Django here).

The same function is applied to what a person typed and, where a store cannot compare for us, to
what the store holds, so `LUISG@Embraer.com.br ` and `luisg@embraer.com.br` are one person and
`+33 6 12 34 56 78` matches `0033612345678`.
"""

from __future__ import annotations

import unicodedata

import idna
import phonenumbers


def normalise_email(value: str) -> str:
    """Trimmed, NFC, lower-cased, the domain in its Unicode (U-label) form.

    Internationalised addresses (RFC 6531) have one normal form however they were typed:
    `Stanisław.Wójcik@WP.pl` (composed or decomposed accents) is `stanisław.wójcik@wp.pl`, and
    `jürgen@xn--bcher-kva.example` is `jürgen@bücher.example`. Stores are matched on this form,
    so one holding the ASCII (punycode) form of a domain is matched only where the connector
    compares normal forms itself, or searched with `email_forms`.
    """
    text = unicodedata.normalize("NFC", value.strip())
    local, at, domain = text.rpartition("@")
    if not at:
        return text.lower()
    return f"{local.lower()}@{email_domain(domain)}"


def email_domain(domain: str) -> str:
    """The lower-case Unicode form of a mail domain (IDNA 2008 with UTS 46 mapping)."""
    lowered = domain.lower()
    if lowered.isascii() and "xn--" not in lowered:
        return lowered
    try:
        return idna.decode(idna.encode(lowered, uts46=True))
    except (idna.IDNAError, UnicodeError):
        return lowered


def email_forms(normal: str) -> list[str]:
    """The ways a store may hold one normalised address: as it is, and, when its domain is
    internationalised, with the domain in ASCII (punycode) form as mail systems often keep it.
    Both name the same mailbox, so searching both searches only what the person proved."""
    local, at, domain = normal.rpartition("@")
    if not at or domain.isascii():
        return [normal]
    try:
        ascii_domain = idna.encode(domain, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        return [normal]
    return [normal, f"{local}@{ascii_domain}"]


def parse_phone(value: str, region: str | None) -> phonenumbers.PhoneNumber:
    """The parsed number; raises ValueError when the value cannot be a phone number.

    `region` (ISO 3166 alpha-2, e.g. "FR") is how a number written without its country code is
    read; without one, only international forms (`+33...`, `0033...`) parse.
    """
    raw = value.strip()
    if raw.startswith("00"):
        raw = "+" + raw[2:]
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(str(exc)) from exc
    if not phonenumbers.is_possible_number(parsed):
        raise ValueError("not a possible phone number")
    return parsed


def normalise_phone(value: str, region: str | None = None) -> str:
    """E.164 form (`+33612345678`); raises ValueError when the value cannot be a phone number."""
    return phonenumbers.format_number(
        parse_phone(value, region), phonenumbers.PhoneNumberFormat.E164
    )


def national_digits(e164: str) -> str:
    """The national significant number of an E.164 number: the digits every written form ends with.

    `+551239235555` is written `+55 (12) 3923-5555`, `(12) 3923-5555` or `0055 12 3923 5555`; the
    digits of each end with `1239235555`. Stores that hold free-form numbers are searched on it.
    """
    return phonenumbers.national_significant_number(phonenumbers.parse(e164, None))


def normalise_name(value: str) -> str:
    return " ".join(value.split()).casefold()


def normalise(identity_type: str, value: str, *, region: str | None = None) -> str:
    """The normal form of one identity value; ValueError when it cannot be one (a bad phone)."""
    if identity_type == "email":
        return normalise_email(value)
    if identity_type == "phone":
        return normalise_phone(value, region)
    if identity_type == "name":
        return normalise_name(value)
    return value.strip()
