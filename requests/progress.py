"""What the person's status page shows of where their request stands: reads only.

The five steps every request goes through, which one it is at and what comes next, and for a
completed erasure what was erased and what was kept, in plain words taken from the certificate
(store and collection names, counts and legal bases; never personal data).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext_lazy as _

from requests.connectors.registry import CONNECTORS
from requests.models import DataRequest, ErasureCertificate
from requests.states import Kind, Status

STEPS = (
    ("filed", _("Filed")),
    ("verified", _("Email confirmed")),
    ("review", _("In review")),
    ("processing", _("Being carried out")),
    ("done", _("Done")),
)

# The step each state stands at. A closed request that never reached a step marks it skipped.
_CURRENT = {
    Status.AWAITING_VERIFICATION: "verified",
    Status.IN_REVIEW: "review",
    Status.AWAITING_INFORMATION: "review",
    Status.PROCESSING: "processing",
    Status.NEEDS_ATTENTION: "processing",
    Status.COMPLETED: "done",
    Status.REJECTED: "done",
    Status.EXPIRED: "done",
    Status.CANCELLED: "done",
}


# The certificate's counts of records that no longer hold the person's data.
_ERASED_COUNTS = ("deleted", "masked", "nullified")


@dataclass(frozen=True)
class Step:
    key: str
    label: str
    # "complete", "current", "upcoming" or "skipped": a class name on the page, read by tests.
    state: str


def subject_steps(request: DataRequest) -> list[Step]:
    """The five steps with the request's current one marked."""
    current = _CURRENT[request.status]
    keys = [key for key, _label in STEPS]
    reached = {
        "filed": True,
        "verified": request.verified_at is not None,
        "review": request.verified_at is not None,
        "processing": request.status
        in (Status.PROCESSING, Status.NEEDS_ATTENTION, Status.COMPLETED),
        "done": request.is_closed,
    }
    steps = []
    for index, (key, label) in enumerate(STEPS):
        if key == current:
            state = "current"
        elif index < keys.index(current):
            state = "complete" if reached[key] else "skipped"
        else:
            state = "upcoming"
        steps.append(Step(key=key, label=str(label), state=state))
    return steps


def subject_next_step(request: DataRequest) -> str:
    """One sentence on what happens next; empty once the request is closed."""
    kind_done = (
        _("we send you a copy of your data")
        if request.kind == Kind.ACCESS
        else _("we erase your data and tell you what we erased")
    )
    return {
        Status.AWAITING_VERIFICATION: _(
            "Next: confirm your email address with the code we sent you. Then our privacy team "
            "reviews your request."
        ),
        Status.IN_REVIEW: _("Next: once our privacy team approves it, %(done)s.")
        % {"done": kind_done},
        Status.AWAITING_INFORMATION: _(
            "Next: send us the information we asked for below. Then we continue our review."
        ),
        Status.PROCESSING: _("Next: %(done)s, and email you when it is done.")
        % {"done": kind_done},
        Status.NEEDS_ATTENTION: _("Next: %(done)s, and email you when it is done.")
        % {"done": kind_done},
    }.get(request.status, "")


def erasure_outcome(request: DataRequest) -> dict[str, Any] | None:
    """What a completed erasure erased and kept, from its certificate; None before then."""
    if request.kind != Kind.ERASURE or request.status != Status.COMPLETED:
        return None
    certificate = ErasureCertificate.objects.filter(request=request).first()
    if certificate is None:
        return None
    content = certificate.content or {}
    erased = []
    for store in content.get("stores", []):
        kind = CONNECTORS.get(store.get("kind", ""))
        if kind is not None and kind.is_manual:
            erased.append({"how": "manual", "where": store.get("system") or store.get("store")})
        elif kind is not None and kind.erases_by_identity:
            erased.append({"how": "recipient", "where": store.get("store")})
        else:
            for row in store.get("collections", []):
                count = sum(int(row.get(name, 0) or 0) for name in _ERASED_COUNTS)
                if count:
                    erased.append(
                        {
                            "how": "erased",
                            "what": row.get("name"),
                            "where": store.get("store"),
                            "count": count,
                        }
                    )
    return {
        "erased": erased,
        "held": content.get("held", []),
        "kept": content.get("kept", []),
    }
