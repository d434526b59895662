import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from requests.models import AuditEvent
from requests.services.audit import audit_record, audit_verify


def _tamper(sql: str, params: list) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


@pytest.mark.django_db
def test_each_event_carries_the_hash_of_the_previous_one():
    first = audit_record(action="test.one", actor="system", details={"n": 1})
    second = audit_record(action="test.two", actor="system", details={"n": 2})
    assert second.prev_hash == first.hash
    assert second.sequence == first.sequence + 1
    assert audit_verify().ok


@pytest.mark.django_db
def test_an_event_changed_in_the_database_is_named_as_the_first_broken_link(capsys):
    events = [audit_record(action=f"test.{i}", actor="system", details={"n": i}) for i in range(5)]
    target = events[2]
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
    events = [audit_record(action=f"test.{i}", actor="system") for i in range(4)]
    _tamper(f"DELETE FROM {AuditEvent._meta.db_table} WHERE id = %s", [events[1].pk])
    report = audit_verify()
    assert not report.ok
    assert report.broken_sequence == events[1].sequence


@pytest.mark.django_db
def test_removing_the_newest_events_is_caught_by_the_chain_head():
    events = [audit_record(action=f"test.{i}", actor="system") for i in range(3)]
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
def test_the_verify_command_reports_an_intact_chain(capsys):
    audit_record(action="test.one", actor="system")
    call_command("audit", "verify")
    assert "intact" in capsys.readouterr().out
