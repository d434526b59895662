from datetime import date

import pytest

from requests import clock


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (date(2026, 3, 15), 1, date(2026, 4, 15)),
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2028, 1, 31), 1, date(2028, 2, 29)),  # leap year
        (date(2026, 3, 31), 1, date(2026, 4, 30)),
        (date(2026, 12, 31), 1, date(2027, 1, 31)),
        (date(2026, 12, 15), 2, date(2027, 2, 15)),
        (date(2028, 2, 29), 12, date(2029, 2, 28)),
        (date(2026, 8, 31), 3, date(2026, 11, 30)),
    ],
)
def test_adding_months_keeps_the_day_or_takes_the_last_day_of_the_month(start, months, expected):
    assert clock.add_months(start, months) == expected


def test_the_due_date_is_one_calendar_month_after_the_start():
    assert clock.due_date(date(2026, 5, 10)) == date(2026, 6, 10)


def test_a_request_received_on_the_31st_of_january_is_due_on_the_last_day_of_february():
    assert clock.due_date(date(2027, 1, 31)) == date(2027, 2, 28)
    assert clock.due_date(date(2028, 1, 31)) == date(2028, 2, 29)


def test_an_extension_counts_from_the_start_so_the_person_never_gets_less_time():
    # 31 Jan + 3 months is 30 April, where extending the 28 Feb due date would give 28 April.
    assert clock.due_date(date(2026, 1, 31), extension_months=2) == date(2026, 4, 30)
    assert clock.due_date(date(2026, 1, 31), extension_months=1) == date(2026, 3, 31)


def test_an_extension_of_more_than_two_months_is_refused():
    with pytest.raises(ValueError):
        clock.due_date(date(2026, 1, 1), extension_months=3)


def test_overdue_starts_the_day_after_the_due_date():
    due = date(2026, 2, 28)
    assert not clock.is_overdue(due, today=date(2026, 2, 28))
    assert clock.is_overdue(due, today=date(2026, 3, 1))
    assert not clock.is_overdue(None, today=date(2026, 3, 1))


def test_due_soon_covers_the_last_days_before_the_due_date_but_not_overdue(settings):
    settings.PORTAL_DUE_SOON_DAYS = 7
    due = date(2026, 3, 31)
    assert clock.is_due_soon(due, today=date(2026, 3, 24))
    assert clock.is_due_soon(due, today=date(2026, 3, 31))
    assert not clock.is_due_soon(due, today=date(2026, 3, 23))
    assert not clock.is_due_soon(due, today=date(2026, 4, 1))


def test_days_left_is_negative_once_overdue():
    assert clock.days_left(date(2026, 3, 1), today=date(2026, 3, 3)) == -2
    assert clock.days_left(None, today=date(2026, 3, 3)) is None
