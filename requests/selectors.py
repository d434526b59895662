"""Reads: the staff queue, a request's timeline and job summary."""

from __future__ import annotations

from django.db.models import QuerySet

from requests.models import DataRequest, DemoMail
from requests.states import Status


def request_by_reference(reference: str) -> DataRequest | None:
    return DataRequest.objects.filter(reference=reference).first()


def request_timeline(*, request: DataRequest):
    return request.events.order_by("id")


def request_jobs_summary(*, request: DataRequest) -> list[dict]:
    """Jobs per store with their counts; empty until stores are connected."""
    jobs = getattr(request, "jobs", None)
    if jobs is None:
        return []
    return [job.summary() for job in jobs.select_related("store").order_by("pk")]


VALID_STATUSES = frozenset(Status.values)


def demo_mail() -> QuerySet[DemoMail]:
    """The demo's outbox, newest first (empty when mail goes over SMTP)."""
    return DemoMail.objects.all()


def staff_deciders():
    """Active staff who may decide requests (DPOs and reviewers): who a request can be given."""
    from django.contrib.auth import get_user_model
    from django.db.models import Q

    from requests.permissions import DPO, REVIEWER

    return (
        get_user_model()
        .objects.filter(is_staff=True, is_active=True)
        .filter(Q(is_superuser=True) | Q(groups__name__in=[DPO, REVIEWER]))
        .distinct()
        .order_by("username")
    )


def staff_users():
    """Staff accounts, active ones first, then by name, with their groups for their roles."""
    from django.contrib.auth import get_user_model

    return (
        get_user_model()
        .objects.filter(is_staff=True)
        .prefetch_related("groups")
        .order_by("-is_active", "username")
    )


def request_subject_replies(*, request: DataRequest):
    """The person's replies to staff's requests for information, oldest first, each with the
    question it answers (`question`, `body`, `received_at`); decrypted as they are read."""
    return request.subject_replies.order_by("received_at", "pk")


def staff_languages(user_ids) -> dict[int, str]:
    """Each staff member's chosen language by user id (absent: none chosen)."""
    from requests.models import StaffProfile

    return dict(
        StaffProfile.objects.filter(user_id__in=list(user_ids))
        .exclude(language="")
        .values_list("user_id", "language")
    )


def staff_language(user) -> str:
    """The language a staff member chose for the console, or "" (then the browser's)."""
    if not getattr(user, "is_authenticated", False):
        return ""
    return staff_languages([user.pk]).get(user.pk, "")
