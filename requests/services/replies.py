"""The person's reply, from their status page, when staff asked for more information.

The reply is kept encrypted (`SubjectReply`) beside the question it answers, and the request goes
back to review through the lifecycle's own transition for information received; the audit event
records the reply's id and length, never its words.
"""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext as _

from requests.models import DataRequest, SubjectReply
from requests.services import lifecycle
from requests.services.audit import SUBJECT
from requests.services.errors import ServiceError, TransitionNotAllowed
from requests.states import Status


@transaction.atomic
def subject_reply_submit(*, request: DataRequest, message: str) -> SubjectReply:
    """Keep the person's answer and send the request back to staff for review."""
    text = (message or "").strip()
    if not text:
        raise ServiceError(_("Write the information we asked for."), field="message")
    if len(text) > lifecycle.MAX_MESSAGE_LENGTH:
        raise ServiceError(
            _("At most %(count)d characters.") % {"count": lifecycle.MAX_MESSAGE_LENGTH},
            field="message",
        )
    locked = DataRequest.objects.select_for_update().get(pk=request.pk)
    if locked.status != Status.AWAITING_INFORMATION:
        raise TransitionNotAllowed(
            _("We are not waiting for information on this request."), code="not_awaiting"
        )
    reply = SubjectReply.objects.create(request=locked, question=locked.staff_message, body=text)
    lifecycle.request_information_received(
        request=locked,
        actor=SUBJECT,
        details={"reply": reply.pk, "reply_characters": len(text)},
    )
    return reply
