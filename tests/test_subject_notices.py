"""Emails to the person about their request are claimed before they are sent: a message the
broker delivers twice sends one email, and a delivery that finds another one sending waits."""

from __future__ import annotations

import pytest
from django.core import mail

from requests import tasks
from requests.models import SubjectNotice
from requests.services import lifecycle, notices

pytestmark = pytest.mark.django_db


@pytest.fixture
def rejected(django_capture_on_commit_callbacks):
    request = lifecycle.request_file(kind="access", identity={"email": "ada@example.org"})
    request = lifecycle.request_mark_verified(request=request, method="code")
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.request_reject(request=request, actor="staff:dpo", reason="manifestly_unfounded")
    return request


def test_the_change_and_the_email_it_owes_are_recorded_together_and_it_is_sent_once(rejected):
    (notice,) = SubjectNotice.objects.filter(request=rejected)
    assert notice.event == "rejected" and notice.sent_at is not None
    assert len(mail.outbox) == 1


def test_a_message_delivered_twice_sends_one_email(rejected):
    notice = SubjectNotice.objects.get(request=rejected)
    tasks.notify_subject.apply(args=[rejected.pk, "rejected", notice.pk])
    tasks.notify_subject.apply(args=[rejected.pk, "rejected", notice.pk])
    assert len(mail.outbox) == 1


def test_a_delivery_that_finds_the_notice_claimed_by_another_waits_for_that_claim(rejected):
    notice = SubjectNotice.objects.create(request=rejected, event="extended")
    first, _ = notices.notice_claim(notice_id=notice.pk)
    second, until = notices.notice_claim(notice_id=notice.pk)
    assert (first, second) == (notices.Claim.CLAIMED, notices.Claim.BUSY)
    assert until is not None
    notices.notice_release(notice_id=notice.pk)  # the mail server was down: given back
    assert notices.notice_claim(notice_id=notice.pk)[0] is notices.Claim.CLAIMED
    notices.notice_mark_sent(notice_id=notice.pk)
    assert notices.notice_claim(notice_id=notice.pk)[0] is notices.Claim.SENT
