"""Internal notes on a request: staff write them, staff read them, the person never sees them."""

from __future__ import annotations

from django.db import transaction

from requests.models import DataRequest, RequestNote
from requests.services.audit import actor_for_user, audit_record
from requests.services.errors import ServiceError

MAX_NOTE_LENGTH = 5000


@transaction.atomic
def note_add(*, request: DataRequest, author, text: str) -> RequestNote:
    """Add one note. The audit event keeps its length only: the text may name the person."""
    text = (text or "").strip()
    if not text:
        raise ServiceError("Write the note first.", field="text", code="required")
    if len(text) > MAX_NOTE_LENGTH:
        raise ServiceError(f"At most {MAX_NOTE_LENGTH} characters.", field="text")
    actor = actor_for_user(author)
    note = RequestNote.objects.create(request=request, author=author, actor=actor, text=text)
    audit_record(
        action="request.note_added",
        actor=actor,
        request=request,
        details={"note": note.pk, "length": len(text)},
    )
    return note
