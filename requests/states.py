"""The request lifecycle of DESIGN.md section 3: states and the transitions allowed between them."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Kind(models.TextChoices):
    ACCESS = "access", _("Access (a copy of my data)")
    ERASURE = "erasure", _("Erasure (delete my data)")


class Status(models.TextChoices):
    AWAITING_VERIFICATION = "awaiting_verification", _("Awaiting verification")
    IN_REVIEW = "in_review", _("In review")
    AWAITING_INFORMATION = "awaiting_information", _("Awaiting information")
    PROCESSING = "processing", _("Processing")
    NEEDS_ATTENTION = "needs_attention", _("Needs attention")
    COMPLETED = "completed", _("Completed")
    REJECTED = "rejected", _("Rejected")
    EXPIRED = "expired", _("Expired")
    CANCELLED = "cancelled", _("Cancelled")


TERMINAL = frozenset({Status.COMPLETED, Status.REJECTED, Status.EXPIRED, Status.CANCELLED})

ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    Status.AWAITING_VERIFICATION: frozenset({Status.IN_REVIEW, Status.EXPIRED, Status.CANCELLED}),
    Status.IN_REVIEW: frozenset(
        {Status.PROCESSING, Status.REJECTED, Status.AWAITING_INFORMATION, Status.CANCELLED}
    ),
    Status.AWAITING_INFORMATION: frozenset({Status.IN_REVIEW, Status.REJECTED, Status.CANCELLED}),
    Status.PROCESSING: frozenset({Status.COMPLETED, Status.NEEDS_ATTENTION}),
    Status.NEEDS_ATTENTION: frozenset({Status.PROCESSING, Status.COMPLETED, Status.REJECTED}),
    Status.COMPLETED: frozenset(),
    Status.REJECTED: frozenset(),
    Status.EXPIRED: frozenset(),
    Status.CANCELLED: frozenset(),
}


def can_transition(current: str, target: str) -> bool:
    return target in ALLOWED_TRANSITIONS.get(current, frozenset())


class RejectionReason(models.TextChoices):
    """Legal grounds for refusing a request; the person is told which, and may complain."""

    IDENTITY_NOT_CONFIRMED = (
        "identity_not_confirmed",
        _("The identity of the requester could not be confirmed (Art. 12(6))"),
    )
    MANIFESTLY_UNFOUNDED = "manifestly_unfounded", _("Manifestly unfounded (Art. 12(5))")
    EXCESSIVE = "excessive", _("Excessive, in particular repetitive (Art. 12(5))")
    LEGAL_OBLIGATION = (
        "legal_obligation",
        _("Erasure refused: the data are needed to meet a legal obligation (Art. 17(3)(b))"),
    )
    LEGAL_CLAIMS = (
        "legal_claims",
        _("Erasure refused: data needed for legal claims (Art. 17(3)(e))"),
    )
    RIGHTS_OF_OTHERS = (
        "rights_of_others",
        _("Access would adversely affect the rights and freedoms of others (Art. 15(4))"),
    )
    OTHER = "other", _("Other legal reason (stated in the message)")
