"""Who handles a request: assigning it to a DPO or reviewer, or taking it off them, audited."""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext as _

from requests import permissions
from requests.models import DataRequest
from requests.services.audit import audit_record
from requests.services.errors import ServiceError


@transaction.atomic
def request_assign(*, request: DataRequest, assignee, actor: str) -> DataRequest:
    """Give the request to `assignee` (None: nobody). Only staff who may decide requests can hold
    one; a closed request keeps whoever handled it."""
    locked = DataRequest.objects.select_for_update().get(pk=request.pk)
    if locked.is_closed:
        raise ServiceError(_("A closed request cannot be reassigned."), field="assignee")
    if assignee is not None and not permissions.access_decide_request(assignee):
        raise ServiceError(_("Only a DPO or a reviewer can be given a request."), field="assignee")
    new_id = assignee.pk if assignee is not None else None
    if locked.assigned_to_id == new_id:
        return locked
    previous = locked.assigned_to.get_username() if locked.assigned_to_id else None
    locked.assigned_to = assignee
    locked.save(update_fields=["assigned_to", "updated_at"])
    audit_record(
        action="request.assigned",
        actor=actor,
        request=locked,
        details={
            "assignee": assignee.get_username() if assignee is not None else None,
            "previous": previous,
        },
    )
    return locked
