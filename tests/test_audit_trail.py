import threading
import time

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections, transaction

from requests import tasks
from requests.models import AuditChainHead, AuditEvent
from requests.services import audit
from requests.services.audit import audit_record, audit_seal_all, audit_verify


def _tamper(sql: str, params: list) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _sealed(events: list[AuditEvent]) -> list[AuditEvent]:
    """The events as the chain holds them, after sealing what the test's transaction recorded
    (its commit, and so the on-commit sealing, never comes inside a `django_db` test)."""
    audit_seal_all()
    for event in events:
        event.refresh_from_db()
    return events


@pytest.mark.django_db
def test_each_event_carries_the_hash_of_the_previous_one():
    first = audit_record(action="test.one", actor="system", details={"n": 1})
    second = audit_record(action="test.two", actor="system", details={"n": 2})
    first, second = _sealed([first, second])
    assert second.prev_hash == first.hash
    assert second.sequence == first.sequence + 1
    assert audit_verify().ok


@pytest.mark.django_db
def test_an_event_changed_in_the_database_is_named_as_the_first_broken_link(capsys):
    events = [audit_record(action=f"test.{i}", actor="system", details={"n": i}) for i in range(5)]
    target = _sealed(events)[2]
    _tamper(
        f"UPDATE {AuditEvent._meta.db_table} SET details = %s WHERE id = %s",
        ['{"n": 99}', target.pk],
    )
    report = audit_verify()
    assert not report.ok
    assert report.broken_sequence == target.sequence
    with pytest.raises(CommandError, match=f"#{target.sequence}"):
        call_command("audit", "verify")


@pytest.mark.django_db
def test_a_removed_event_breaks_the_chain():
    events = _sealed([audit_record(action=f"test.{i}", actor="system") for i in range(4)])
    _tamper(f"DELETE FROM {AuditEvent._meta.db_table} WHERE id = %s", [events[1].pk])
    report = audit_verify()
    assert not report.ok
    assert report.broken_sequence == events[1].sequence


@pytest.mark.django_db
def test_removing_the_newest_events_is_caught_by_the_chain_head():
    events = _sealed([audit_record(action=f"test.{i}", actor="system") for i in range(3)])
    _tamper(f"DELETE FROM {AuditEvent._meta.db_table} WHERE id = %s", [events[-1].pk])
    assert not audit_verify().ok


@pytest.mark.django_db
def test_events_cannot_be_edited_or_deleted_through_the_application():
    event = audit_record(action="test.one", actor="system")
    event.action = "test.changed"
    with pytest.raises(TypeError):
        event.save()
    with pytest.raises(TypeError):
        event.delete()
    with pytest.raises(TypeError):
        AuditEvent.objects.all().delete()


@pytest.mark.django_db
def test_a_sealed_event_cannot_be_sealed_again_at_another_place():
    (event,) = _sealed([audit_record(action="test.one", actor="system")])
    moved = AuditEvent.objects.seal(pk=event.pk, sequence=99, prev_hash="a" * 64, hash="b" * 64)
    assert moved == 0
    event.refresh_from_db()
    assert event.sequence == 1
    assert audit_verify().ok


@pytest.mark.django_db
def test_the_verify_command_reports_an_intact_chain(capsys):
    audit_record(action="test.one", actor="system")
    call_command("audit", "verify")
    assert "intact" in capsys.readouterr().out


@pytest.fixture
def seal_at_once(settings):
    """The committing process seals its events itself, right after the commit."""
    settings.PORTAL_AUDIT_SEAL_DELAY = 0


@pytest.fixture
def seal_by_task(settings, monkeypatch):
    """Sealing queued as a task after the commit, as in production; no task queued yet."""
    settings.PORTAL_AUDIT_SEAL_DELAY = 1
    monkeypatch.setattr(audit, "_sealing_queued_until", 0.0)


@pytest.mark.django_db(transaction=True)
def test_an_event_is_recorded_unsealed_and_sealed_when_its_transaction_commits(seal_at_once):
    with transaction.atomic():
        event = audit_record(action="test.one", actor="system")
        assert AuditEvent.objects.get(pk=event.pk).sequence is None
    event.refresh_from_db()
    assert event.sequence == 1
    assert event.hash is not None
    assert AuditChainHead.objects.get(id=1).sequence == 1
    assert audit_verify(seal=False).ok


def _head_lockable_elsewhere() -> bool:
    """Whether a second connection can take the chain head's lock right now, without waiting."""
    result: list[bool] = []

    def lock():
        try:
            with transaction.atomic():
                AuditChainHead.objects.select_for_update(nowait=True).get(id=1)
            result.append(True)
        except Exception:  # a DatabaseError for "could not obtain lock"
            result.append(False)
        finally:
            connections.close_all()

    thread = threading.Thread(target=lock)
    thread.start()
    thread.join()
    return result == [True]


@pytest.mark.django_db(transaction=True)
def test_the_chain_head_is_free_while_a_transaction_that_recorded_events_is_still_open():
    audit_record(action="test.first", actor="system")  # makes the head row exist
    with transaction.atomic():
        audit_record(action="test.second", actor="system")
        assert _head_lockable_elsewhere()
    assert audit_verify(seal=False).ok


@pytest.mark.django_db(transaction=True)
def test_threads_recording_at_once_on_postgresql_make_one_unforked_chain():
    if connection.vendor != "postgresql":
        pytest.skip("needs the portal's test database on PostgreSQL (PORTAL_TEST_SQLITE is set)")
    threads, transactions, per_transaction = 6, 8, 3
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def record(worker: int):
        try:
            start.wait()
            for batch in range(transactions):
                with transaction.atomic():
                    for n in range(per_transaction):
                        audit_record(
                            action="test.concurrent",
                            actor="system",
                            details={"worker": worker, "batch": batch, "n": n},
                        )
        except BaseException as exc:  # reported below, so a failing thread fails the test
            errors.append(exc)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=record, args=(w,)) for w in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    # A commit that found the head locked while its holder made its last bounded pass may leave
    # its events for the beat task: that is allowed, a fork is not.
    tasks.audit_seal_pending()

    total = threads * transactions * per_transaction
    events = list(AuditEvent.objects.order_by("sequence"))
    assert len(events) == total
    assert AuditEvent.objects.filter(sequence__isnull=True).count() == 0
    assert [e.sequence for e in events] == list(range(1, total + 1))
    assert len({e.prev_hash for e in events}) == total  # no two events claim the same parent
    assert AuditChainHead.objects.get(id=1).sequence == total
    # Within each thread the chain keeps the order its events were recorded in.
    for worker in range(threads):
        mine = [e.details for e in events if e.details["worker"] == worker]
        assert mine == sorted(mine, key=lambda d: (d["batch"], d["n"]))
    report = audit_verify(seal=False)
    assert report.ok
    assert report.checked == total


@pytest.mark.django_db
def test_events_left_unsealed_by_a_crash_after_commit_are_sealed_by_the_beat_task():
    # Inside a `django_db` test the transaction never commits, so no on-commit sealing runs: the
    # state a web worker leaves when it dies between its commit and the sealing.
    first = audit_record(action="test.one", actor="system")
    second = audit_record(action="test.two", actor="system")
    assert AuditEvent.objects.filter(sequence__isnull=True).count() == 2

    assert tasks.audit_seal_pending() == 2

    assert AuditEvent.objects.filter(sequence__isnull=True).count() == 0
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.sequence, second.sequence) == (1, 2)
    assert second.prev_hash == first.hash
    assert audit_verify(seal=False).ok
    assert tasks.audit_seal_pending() == 0


@pytest.mark.django_db(transaction=True)
def test_a_commit_queues_one_sealing_task_that_seals_what_commits_before_it_runs(
    seal_by_task, monkeypatch
):
    # Tasks run inline in tests, so the queued task runs at once instead of a second later: the
    # first commit's event is sealed by it, and the next commits queue nothing while it is due.
    with transaction.atomic():
        first = audit_record(action="test.first", actor="system")
    first.refresh_from_db()
    assert first.sequence == 1
    later = []
    for n in range(3):
        with transaction.atomic():
            later.append(audit_record(action="test.later", actor="system", details={"n": n}))
    assert AuditEvent.objects.filter(sequence__isnull=True).count() == 3
    assert audit_verify(seal=False).ok  # what is sealed so far is one unbroken chain

    # The delay is over: the next commit queues a task, and it seals all that is pending in
    # recorded order, in one batch.
    monkeypatch.setattr(audit, "_sealing_queued_until", 0.0)
    with transaction.atomic():
        last = audit_record(action="test.last", actor="system")
    assert AuditEvent.objects.filter(sequence__isnull=True).count() == 0
    sealed = list(AuditEvent.objects.order_by("sequence"))
    assert [e.pk for e in sealed] == [first.pk, *(e.pk for e in later), last.pk]
    assert [e.sequence for e in sealed] == [1, 2, 3, 4, 5]
    assert AuditChainHead.objects.get(id=1).sequence == 5
    assert audit_verify(seal=False).checked == 5


@pytest.mark.django_db(transaction=True)
def test_processes_sharing_redis_queue_one_sealing_while_one_is_due(
    seal_by_task, redis_cache, monkeypatch
):
    server, prefix = redis_cache
    with transaction.atomic():
        first = audit_record(action="test.first", actor="system")
    first.refresh_from_db()
    assert first.sequence == 1  # this process claimed the next sealing and queued it
    claim_ms = server.pttl(f"{prefix}:1:{audit.SEALING_DUE_KEY}")
    assert 0 < claim_ms <= 1000

    # Another process (no sealing queued by itself) commits while that task is due: it queues
    # none, and waits for no longer than the claim lives before it looks again.
    monkeypatch.setattr(audit, "_sealing_queued_until", 0.0)
    with transaction.atomic():
        second = audit_record(action="test.second", actor="system")
    second.refresh_from_db()
    assert second.sequence is None
    assert 0 < audit._sealing_queued_until - time.monotonic() <= 1.0

    # The claim ended (the task started): the next commit queues a sealing again.
    server.delete(f"{prefix}:1:{audit.SEALING_DUE_KEY}")
    monkeypatch.setattr(audit, "_sealing_queued_until", 0.0)
    with transaction.atomic():
        audit_record(action="test.third", actor="system")
    assert AuditEvent.objects.filter(sequence__isnull=True).count() == 0
    assert audit_verify(seal=False).checked == 3


@pytest.mark.django_db
def test_sealing_a_batch_never_rewrites_an_event_sealed_already():
    events = _sealed([audit_record(action=f"test.{i}", actor="system") for i in range(2)])
    for event in events:
        event.sequence, event.prev_hash, event.hash = 99 + event.pk, "c" * 64, "d" * 64
    assert AuditEvent.objects.seal_many(events) == 0
    assert audit_verify(seal=False).ok


@pytest.mark.django_db(transaction=True)
def test_tampering_with_an_event_sealed_on_commit_is_named_by_audit_verify(seal_at_once):
    events = []
    for n in range(4):
        with transaction.atomic():
            events.append(audit_record(action="test.sealed", actor="system", details={"n": n}))
    target = AuditEvent.objects.get(pk=events[1].pk)
    assert target.sequence == 2
    _tamper(
        f"UPDATE {AuditEvent._meta.db_table} SET actor = %s WHERE id = %s",
        ["staff:mallory", target.pk],
    )
    with pytest.raises(CommandError, match="#2: its content was changed"):
        call_command("audit", "verify")
