"""Carrying out approved requests. The store jobs plug in here (see the stores and erasure work)."""

from __future__ import annotations

from django.db import transaction

from requests.models import DataRequest
from requests.services.lifecycle import request_complete
from requests.states import Status


@transaction.atomic
def request_advance(*, request_id: int) -> DataRequest | None:
    """Move a processing request on: complete it once no work is left."""
    request = DataRequest.objects.select_for_update().filter(pk=request_id).first()
    if request is None or request.status != Status.PROCESSING:
        return None
    return request_complete(request=request, details={"stores": 0})
