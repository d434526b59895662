"""Dates in the staff console: one format per language on every page (portal/formats/), never a
numeric short form, a.m./p.m. or a raw ISO date beside it."""

from __future__ import annotations

import re

import pytest
from django.utils import formats, timezone, translation

from requests.services import lifecycle, stores
from requests.services.audit import SYSTEM, audit_record

pytestmark = pytest.mark.django_db

MONTHS = {
    "en": "January|February|March|April|May|June|July|August|September|October|November|December",
    "fr": "janvier|février|mars|avril|mai|juin|juillet|août|septembre|octobre|novembre|décembre",
}
OTHER_FORMS = [
    re.compile(r"\b\d{1,2}/\d{1,2}/\d{2,4}\b"),  # 11/29/2026 or 29/11/2026
    re.compile(r"\b[ap]\.m\.", re.IGNORECASE),  # 1:18 a.m.
    re.compile(r"\b\d{4}-\d{2}-\d{2}\b"),  # ISO, outside machine-readable attributes
    re.compile(r"\b(Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)\. \d"),  # Nov. 29
]


@pytest.fixture
def busy_console(client, staff_user):
    """A signed-in DPO and one request with dates on every page: received, verified, due,
    extended (the extension's new due date is kept in the audit trail), a store failure."""
    client.force_login(staff_user)
    filed = lifecycle.request_file(kind="access", identity={"email": "ada@example.com"})
    verified = lifecycle.request_mark_verified(request=filed, method="code")
    lifecycle.request_extend(request=verified, actor="staff:dpo", months=1, reason="Volume")
    stores.store_create(name="paper-files", kind="manual", actor=SYSTEM)
    audit_record(action="job.failed", actor=SYSTEM, details={"store": "paper-files"})
    staff_user.last_login = timezone.now()
    staff_user.save()
    return client, verified


def visible_text(html: str) -> str:
    """The page without its tags' attributes (where `datetime="2026-11-29"` belongs)."""
    return re.sub(r"<[^>]+>", " ", html)


@pytest.mark.parametrize("language", ["en", "fr"])
def test_every_console_page_writes_dates_in_its_languages_one_format(busy_console, language):
    client, data_request = busy_console
    pages = [
        "/staff/?status=all",
        f"/staff/requests/{data_request.reference}/",
        "/staff/dashboard/",
        "/staff/users/",
    ]
    dates = re.compile(rf"\b\d{{1,2}} ({MONTHS[language]}) \d{{4}}\b")
    for page in pages:
        response = client.get(page, HTTP_ACCEPT_LANGUAGE=language)
        assert response.status_code == 200, page
        text = visible_text(response.content.decode())
        assert dates.search(text), f"{page} shows no date in the {language} format"
        for other in OTHER_FORMS:
            assert not other.search(text), f"{page} ({language}): {other.search(text).group(0)}"


def test_the_extension_in_the_timeline_gives_its_new_due_date_like_the_rest(busy_console):
    client, data_request = busy_console
    data_request.refresh_from_db()

    html = client.get(f"/staff/requests/{data_request.reference}/").content.decode()

    with translation.override("en"):
        due = formats.date_format(data_request.due_on, "DATE_FORMAT")
    timeline = html.split('id="timeline-title"', 1)[1]
    assert due in visible_text(timeline)
    assert data_request.due_on.isoformat() not in visible_text(timeline)


def test_one_date_and_one_date_time_format_per_language():
    moment = timezone.make_aware(timezone.datetime(2026, 11, 29, 14, 5))
    with translation.override("en"):
        assert formats.date_format(moment, "SHORT_DATE_FORMAT") == "29 November 2026"
        assert formats.date_format(moment, "DATE_FORMAT") == "29 November 2026"
        assert formats.date_format(moment, "DATETIME_FORMAT") == "29 November 2026, 14:05"
        assert formats.date_format(moment, "SHORT_DATETIME_FORMAT") == "29 November 2026, 14:05"
    with translation.override("fr"):
        assert formats.date_format(moment, "SHORT_DATE_FORMAT") == "29 novembre 2026"
        assert formats.date_format(moment, "DATETIME_FORMAT") == "29 novembre 2026 à 14:05"
