"""The legal clock (Art. 12(3)): one calendar month from the start, extendable by two more.

All due-date arithmetic lives here so month ends and leap years are handled in one place.
"""

from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta

from django.conf import settings
from django.utils import timezone

BASE_MONTHS = 1
MAX_EXTENSION_MONTHS = 2


def add_months(start: date, months: int) -> date:
    """The same day `months` later; the last day of that month where the day does not exist."""
    month_index = start.month - 1 + months
    year = start.year + month_index // 12
    month = month_index % 12 + 1
    last_day = calendar.monthrange(year, month)[1]
    return date(year, month, min(start.day, last_day))


def today() -> date:
    return timezone.localdate()


def local_date(moment: datetime) -> date:
    """The calendar day of a moment in the portal's time zone (the day of receipt)."""
    return timezone.localtime(moment).date()


def due_date(start: date, *, extension_months: int = 0) -> date:
    if not 0 <= extension_months <= MAX_EXTENSION_MONTHS:
        raise ValueError(f"an extension is 0 to {MAX_EXTENSION_MONTHS} months")
    # Counted from the start, not from the first due date, so 31 January + 3 months is 30 April
    # rather than 28 April: the person never gets less than the law allows.
    return add_months(start, BASE_MONTHS + extension_months)


def is_overdue(due_on: date | None, *, today: date) -> bool:
    return due_on is not None and today > due_on


def is_due_soon(due_on: date | None, *, today: date) -> bool:
    if due_on is None or is_overdue(due_on, today=today):
        return False
    return due_on - today <= timedelta(days=settings.PORTAL_DUE_SOON_DAYS)


def days_left(due_on: date | None, *, today: date) -> int | None:
    return None if due_on is None else (due_on - today).days
