"""Queueing Celery work by task name, on commit (requests.queueing)."""

import pytest
from django.db import transaction

from requests.queueing import enqueue, task_name
from requests.services import processing

pytestmark = pytest.mark.django_db


def test_a_misspelt_task_name_fails_when_the_work_is_queued_not_after_the_commit():
    with pytest.raises(LookupError, match=r"requests\.tasks\.job_rnu"):
        enqueue("job_rnu", 1)


def test_work_is_sent_only_when_the_transaction_commits(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        enqueue("request_process", 123)
    assert len(callbacks) == 1
    assert callbacks[0].func.__self__.name == task_name("request_process")
    assert callbacks[0].keywords == {"args": [123]}


def test_work_of_a_rolled_back_transaction_is_never_sent(django_capture_on_commit_callbacks):
    with (
        django_capture_on_commit_callbacks() as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        enqueue("request_process", 123)
        raise RuntimeError("rolled back")
    assert callbacks == []


def test_executors_and_finalisers_are_declared_for_every_kind_in_one_table():
    assert set(processing.EXECUTORS) == set(processing.FINALISERS) == {"access", "erasure"}
