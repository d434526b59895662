"""Reads for identity assurance: which of a request's identifiers the stores may be searched by.

`searchable_identity` is the single place that decides it; every path that searches stores (the
preview, access and erasure jobs, the erasure sweep) or keeps identifiers (the suppression
ledger) goes through it. Writes are in `requests.services.identifiers`.
"""

from __future__ import annotations

from requests.identity import INTAKE_TYPES
from requests.models import DataRequest, IdentifierState, IdentifierVerification

# A name never singles anyone out: many people share one, so it is never a search key, not even
# once staff confirmed it (that confirms the person is called so, not that every record with the
# name is theirs). Records holding it are shown as candidates; staff who judge one to be the
# person's confirm an identifier that record holds (its account id, its phone) instead.
NEVER_SEARCH_KEYS = frozenset({"name"})


def _verified_types(request: DataRequest) -> set[str]:
    return set(
        IdentifierVerification.objects.filter(
            request=request, state=IdentifierState.VERIFIED
        ).values_list("identity_type", flat=True)
    )


def searchable_identity(*, request: DataRequest) -> dict[str, str]:
    """The identifiers the stores may be searched by: those the person proved or staff confirmed.

    The one place that decides it: previews, access and erasure jobs, the erasure sweep and the
    suppression ledger all search (or keep) only what this returns."""
    identity = request.identity or {}
    if not identity:
        return {}
    verified = _verified_types(request)
    return {
        identity_type: value
        for identity_type, value in identity.items()
        if identity_type in verified and identity_type not in NEVER_SEARCH_KEYS
    }


def unproven_identity(*, request: DataRequest) -> dict[str, str]:
    """The identifiers the person gave that are not search keys: they only find candidates."""
    searchable = searchable_identity(request=request)
    return {t: v for t, v in (request.identity or {}).items() if t not in searchable}


def identifier_states(*, request: DataRequest) -> list[dict]:
    """Each identifier type on the request with whether, how and by whom it was verified (never
    its value), and whether the stores are searched by it."""
    rows = {row.identity_type: row for row in request.identifier_checks.all()}
    order = {t: i for i, t in enumerate(INTAKE_TYPES)}
    states = []
    for identity_type in sorted(request.identity or {}, key=lambda t: (order.get(t, 99), t)):
        row = rows.get(identity_type)
        verified = row is not None and row.state == IdentifierState.VERIFIED
        states.append(
            {
                "type": identity_type,
                "state": row.state if row is not None else IdentifierState.UNVERIFIED.value,
                "verified": verified,
                "method": row.method if verified else None,
                "verified_at": row.verified_at if verified else None,
                "verified_by": row.verified_by if verified else None,
                "note": row.note if verified and row.note else None,
                "searched": verified and identity_type not in NEVER_SEARCH_KEYS,
            }
        )
    return states
