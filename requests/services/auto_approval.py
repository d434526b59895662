"""The auto-approval policy: request kinds named in PORTAL_AUTO_APPROVE are approved as soon as
the person verifies, through the same approval service staff use (so the jobs start the same way).

The policy never approves a request staff should look at first: one flagged possibly excessive
(Art. 12(5) is staff's judgement), one with identifiers the person gave but nobody proved yet
(staff decide whether to confirm them before the stores are searched), or one whose identity data
are gone. Such a request stays in review, and an audit event tells staff why (reason codes only,
never a value).
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from requests.assurance import NEVER_SEARCH_KEYS, searchable_identity
from requests.models import DataRequest
from requests.services.access import subject_history
from requests.services.audit import SYSTEM, audit_record
from requests.services.errors import ServiceError
from requests.services.lifecycle import request_approve
from requests.states import Kind, Status

# The setting's name, written into the audit trail so an approval says which policy made it.
POLICY = "PORTAL_AUTO_APPROVE"

# Why the policy left a request for staff (codes in the audit event; `withheld_reason` words it).
EXCESSIVE = "possibly_excessive"
UNPROVEN_IDENTIFIERS = "unproven_identifiers"
IDENTITY_PURGED = "identity_purged"
APPROVAL_FAILED = "approval_failed"


def auto_approve_kinds() -> list[str]:
    """The kinds the policy approves on verification, in the order of `Kind`."""
    wanted = set(settings.PORTAL_AUTO_APPROVE)
    return [kind for kind in Kind.values if kind in wanted]


def policy_description() -> dict[str, list[str]]:
    """For the dashboard: which kinds are approved on verification and which always reviewed."""
    automatic = auto_approve_kinds()
    return {
        "automatic": automatic,
        "reviewed": [kind for kind in Kind.values if kind not in automatic],
    }


def policy_sentence() -> str:
    """The policy in one sentence for staff (the dashboard), in the active language."""
    automatic = frozenset(auto_approve_kinds())
    sentences = {
        frozenset(): _("Every request is reviewed by staff before it is processed."),
        frozenset({Kind.ACCESS}): _(
            "Access requests are approved on verification; erasure requests are always reviewed."
        ),
        frozenset({Kind.ERASURE}): _(
            "Erasure requests are approved on verification; access requests are always reviewed."
        ),
        frozenset({Kind.ACCESS, Kind.ERASURE}): _(
            "Access and erasure requests are approved on verification."
        ),
    }
    sentence = sentences[automatic]
    if automatic:
        sentence += " " + _(
            "A request flagged as possibly excessive, or with an identifier not yet confirmed, "
            "is left for review."
        )
    return sentence


def withheld_reason(code: str) -> str:
    """A reason code of `request.auto_approval_withheld` in words, for staff."""
    return {
        EXCESSIVE: _("the request is flagged as possibly excessive"),
        UNPROVEN_IDENTIFIERS: _("identifiers the person gave are not confirmed yet"),
        IDENTITY_PURGED: _("the identity data were purged"),
        APPROVAL_FAILED: _("the automatic approval failed"),
    }.get(code, code)


def _reasons_to_review(request: DataRequest) -> tuple[list[str], list[str]]:
    """The reason codes that keep `request` for staff, and the identifier types not proven."""
    reasons: list[str] = []
    if request.identity_purged_at is not None or not request.identity:
        return [IDENTITY_PURGED], []
    if subject_history(request=request)["possibly_excessive"]:
        reasons.append(EXCESSIVE)
    searchable = searchable_identity(request=request)
    # A name is never a search key, confirmed or not, so it holds nothing up; any other
    # identifier left out of the search is staff's call.
    unproven = sorted(
        t for t in request.identity if t not in searchable and t not in NEVER_SEARCH_KEYS
    )
    if unproven:
        reasons.append(UNPROVEN_IDENTIFIERS)
    return reasons, unproven


def _withhold(request: DataRequest, reasons: list[str], unproven: list[str]) -> None:
    details: dict = {"policy": POLICY, "reasons": reasons}
    if unproven:
        details["identity_types"] = unproven
    audit_record(
        action="request.auto_approval_withheld", actor=SYSTEM, request=request, details=details
    )


@transaction.atomic
def request_auto_approve(*, request: DataRequest) -> DataRequest:
    """Approve a just-verified request if the policy covers its kind and nothing needs staff.

    Returns the request as it now stands (processing, or still in review)."""
    if request.status != Status.IN_REVIEW or request.kind not in auto_approve_kinds():
        return request
    reasons, unproven = _reasons_to_review(request)
    if reasons:
        _withhold(request, reasons, unproven)
        return request
    try:
        # A savepoint: a failed approval leaves the verification standing, in review.
        with transaction.atomic():
            return request_approve(
                request=request,
                actor=SYSTEM,
                details={"automatic": True, "policy": POLICY, "kind": request.kind},
            )
    except ServiceError:
        _withhold(request, [APPROVAL_FAILED], [])
        return request
