"""Deciding many requests at once: rejecting obvious spam with one legal reason and message.

Each request is rejected on its own (its own transaction, audit event and email through
`lifecycle.request_reject`), so one that cannot be rejected in its state leaves the others done.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.utils.translation import gettext as _

from requests.models import DataRequest
from requests.services import lifecycle
from requests.services.errors import ServiceError

# One page of the queue: what staff can see, and tick, at once.
MAX_BULK = 50


@dataclass
class BulkResult:
    rejected: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # not rejectable in their state, or unknown


def requests_reject_many(
    *, references: list[str], reason: str, message: str, actor: str
) -> BulkResult:
    unique = list(dict.fromkeys(references))
    if not unique:
        raise ServiceError(_("Choose at least one request."), field="references")
    if len(unique) > MAX_BULK:
        raise ServiceError(
            _("At most %(count)d requests at once.") % {"count": MAX_BULK}, field="references"
        )
    found = {r.reference: r for r in DataRequest.objects.filter(reference__in=unique)}
    result = BulkResult()
    for reference in unique:
        data_request = found.get(reference)
        if data_request is None:
            result.refused.append(reference)
            continue
        try:
            lifecycle.request_reject(
                request=data_request, actor=actor, reason=reason, message=message
            )
        except ServiceError:
            result.refused.append(reference)
        else:
            result.rejected.append(reference)
    return result
