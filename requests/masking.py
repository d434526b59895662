"""Identity values masked for staff pages: enough to tell two requests apart, not to contact or
find the person. The clear value is shown only through an audited reveal
(`requests.services.reveal`)."""

from __future__ import annotations

MASK = "***"


def mask_email(value: str) -> str:
    local, at, domain = value.rpartition("@")
    if not at:
        return mask_text(value)
    # The domain stays: it is usually a mail provider, and tells staff which address it was.
    return f"{local[:1]}{MASK}@{domain}"


def mask_phone(value: str) -> str:
    digits = [c for c in value if c.isdigit()]
    if len(digits) < 6:
        return MASK
    prefix = "+" if value.strip().startswith("+") else ""
    return f"{prefix}{''.join(digits[:2])}{MASK}{''.join(digits[-2:])}"


def mask_text(value: str) -> str:
    return f"{value[:1]}{MASK}" if len(value) > 2 else MASK


def mask(identity_type: str, value) -> str:
    text = "" if value is None else str(value)
    if identity_type == "email":
        return mask_email(text)
    if identity_type == "phone":
        return mask_phone(text)
    return mask_text(text)
