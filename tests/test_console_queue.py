"""The staff queue: open requests by default, counts per state, filters, search on the keyed hash,
sortable columns and pages that keep the filters."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from requests import clock
from requests.models import DataRequest
from requests.services import lifecycle
from requests.services.lifecycle import subject_key_for
from requests.states import RejectionReason, Status

pytestmark = pytest.mark.django_db

QUEUE = "/staff/"
ROW_REFERENCE = re.compile(r'<a class="reference" href="/staff/requests/([^/]+)/">')


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


def make(*, kind="access", email="ada@example.com", verified=True, due_in=None):
    data_request = lifecycle.request_file(kind=kind, identity={"email": email})
    if verified:
        data_request = lifecycle.request_mark_verified(request=data_request, method="code")
    if due_in is not None:
        DataRequest.objects.filter(pk=data_request.pk).update(
            due_on=clock.today() + timedelta(days=due_in)
        )
    return data_request


def reject(data_request):
    return lifecycle.request_reject(
        request=data_request, actor="staff:dpo", reason=RejectionReason.MANIFESTLY_UNFOUNDED
    )


def references(response) -> list[str]:
    assert response.status_code == 200
    return ROW_REFERENCE.findall(response.content.decode())


# What the queue shows by default, and the counts


def test_the_queue_shows_open_requests_by_default_and_closed_ones_on_asking(staff_client):
    open_request = make(email="open@example.com")
    closed = reject(make(email="closed@example.com"))

    assert references(staff_client.get(QUEUE)) == [open_request.reference]
    assert set(references(staff_client.get(QUEUE, {"status": "all"}))) == {
        open_request.reference,
        closed.reference,
    }
    assert references(staff_client.get(QUEUE, {"status": Status.REJECTED})) == [closed.reference]


def test_the_queue_counts_requests_per_state_with_links_that_filter(staff_client):
    make(email="a@example.com")
    make(email="b@example.com")
    make(email="c@example.com", verified=False)
    reject(make(email="d@example.com"))

    html = staff_client.get(QUEUE).content.decode()
    counts = dict(
        re.findall(r'<a href="\?([^"]*)"[^>]*>[^<]*<span class="state-counts__count">(\d+)<', html)
    )

    assert counts["status=in_review"] == "2"
    assert counts["status=awaiting_verification"] == "1"
    assert counts["status=rejected"] == "1"
    assert counts[""] == "3"  # open, the default
    assert counts["status=all"] == "4"


# Filters


def test_the_queue_filters_by_kind(staff_client):
    access = make(kind="access", email="a@example.com")
    erasure = make(kind="erasure", email="e@example.com")

    assert references(staff_client.get(QUEUE, {"kind": "erasure"})) == [erasure.reference]
    assert references(staff_client.get(QUEUE, {"kind": "access"})) == [access.reference]


def test_the_queue_filters_overdue_requests_and_those_due_this_week(staff_client):
    today = clock.today()
    days_to_sunday = 6 - today.weekday()
    overdue = make(email="late@example.com", due_in=-1)
    today_due = make(email="today@example.com", due_in=0)
    sunday = make(email="sunday@example.com", due_in=days_to_sunday)
    make(email="monday@example.com", due_in=days_to_sunday + 1)
    reject(make(email="closed-late@example.com", due_in=-3))

    assert references(staff_client.get(QUEUE, {"due": "overdue", "status": "all"})) == [
        overdue.reference
    ]
    assert references(staff_client.get(QUEUE, {"due": "week"})) == [
        today_due.reference,
        sunday.reference,
    ]


def test_the_queue_flags_and_filters_possibly_excessive_requests(staff_client, settings):
    settings.PORTAL_EXCESSIVE_REQUESTS_PER_YEAR = 3
    first = make(email="often@example.com")
    make(email="often@example.com")
    third = make(email="often@example.com")
    other_kind = make(kind="erasure", email="often@example.com")
    someone_else = make(email="once@example.com")

    flagged = references(staff_client.get(QUEUE, {"flagged": "on"}))
    rows = staff_client.get(QUEUE).content.decode().split("<tr>")[2:]
    flagged_rows = [row for row in rows if "Possibly excessive" in row]

    assert flagged == [third.reference]
    assert len(flagged_rows) == 1 and third.reference in flagged_rows[0]
    for quiet in (first, other_kind, someone_else):
        assert quiet.reference not in flagged


def test_an_unknown_filter_value_is_explained_and_the_default_used(staff_client):
    open_request = make()

    response = staff_client.get(QUEUE, {"status": "lost", "kind": "gift", "sort": "price"})

    html = response.content.decode()
    assert "There is no status called “lost”; showing open requests." in html
    assert "Choose one of the kinds given." in html
    assert references(response) == [open_request.reference]


# Search


def test_searching_a_reference_finds_that_request_even_when_closed(staff_client):
    wanted = reject(make(email="wanted@example.com"))
    make(email="other@example.com")

    assert references(staff_client.get(QUEUE, {"q": f" {wanted.reference} "})) == [wanted.reference]
    assert references(staff_client.get(QUEUE, {"q": wanted.reference[:6]})) == []


def test_searching_an_email_matches_its_keyed_hash_never_the_plaintext(staff_client):
    first = make(email="ada@example.com")
    second = reject(make(kind="erasure", email="ada@example.com"))
    make(email="bob@example.com")

    with CaptureQueriesContext(connection) as queries:
        found = references(staff_client.get(QUEUE, {"q": "  ADA@Example.COM "}))

    assert set(found) == {first.reference, second.reference}
    sql = " ".join(query["sql"] for query in queries.captured_queries).lower()
    assert "ada@example.com" not in sql
    assert "like" not in sql
    assert subject_key_for("ada@example.com") in sql


def test_searching_something_that_is_not_an_email_address_says_so(staff_client):
    make(email="ada@example.com")

    response = staff_client.get(QUEUE, {"q": "ada@"})

    assert "Enter a valid email address." in response.content.decode()
    assert references(response) == []


# Sorting and pages


def test_columns_sort_both_ways_and_say_which_way(staff_client):
    soon = make(email="soon@example.com", due_in=2)
    later = make(email="later@example.com", due_in=20)

    ascending = staff_client.get(QUEUE)
    descending = staff_client.get(QUEUE, {"sort": "-due"})

    assert references(ascending) == [soon.reference, later.reference]
    assert references(descending) == [later.reference, soon.reference]
    assert re.search(
        r'aria-sort="descending"><a class="sort-link" href="\?sort=due"',
        descending.content.decode(),
    )
    assert 'aria-sort="ascending"><a class="sort-link" href="?sort=-due"' in (
        ascending.content.decode()
    )


def test_the_next_page_keeps_the_filters(staff_client):
    DataRequest.objects.bulk_create(
        DataRequest(kind="erasure", status=Status.IN_REVIEW, identity={"email": f"p{n}@x.org"})
        for n in range(51)
    )
    make(kind="access", email="not-this@example.com")

    first = staff_client.get(QUEUE, {"kind": "erasure", "sort": "-received"})
    html = first.content.decode()
    next_link = re.search(r'<a rel="next" href="\?([^"]+)"', html).group(1).replace("&amp;", "&")
    second = staff_client.get(f"{QUEUE}?{next_link}")

    assert len(references(first)) == 50
    assert next_link == "kind=erasure&sort=-received&page=2"
    assert len(references(second)) == 1


def test_every_cell_of_the_queue_names_its_column_for_phones(staff_client):
    make()

    rows = staff_client.get(QUEUE).content.decode().split("<tbody>")[1].split("</tbody>")[0]
    cells = re.findall(r"<t[hd]\b[^>]*>", rows)

    assert len(cells) == 7  # the last one a box to tick for bulk rejection
    assert all("data-label=" in cell for cell in cells)


# The same queue through the staff API


def test_the_staff_api_filters_and_searches_the_queue_like_the_page(staff_api, staff_user):
    from requests.services.assignment import request_assign

    access = make(email="ada@example.com")
    erasure = make(kind="erasure", email="ada@example.com")
    closed = reject(make(email="bob@example.com"))
    request_assign(request=erasure, assignee=staff_user, actor="staff:dpo")

    def listed(**query) -> list[str]:
        response = staff_api.get("/api/v1/staff/requests/", query)
        assert response.status_code == 200, response.content
        return sorted(row["reference"] for row in response.json()["results"])

    # Without a status the API lists every state, as it always has.
    assert listed() == sorted([access.reference, erasure.reference, closed.reference])
    assert listed(status="open") == sorted([access.reference, erasure.reference])
    assert listed(kind="erasure") == [erasure.reference]
    assert listed(q="ADA@example.com") == sorted([access.reference, erasure.reference])
    assert listed(q=closed.reference) == [closed.reference]
    assert listed(mine="true") == [erasure.reference]
    rows = staff_api.get("/api/v1/staff/requests/", {"mine": "true"}).json()["results"]
    assert rows[0]["assigned_to"] == "dpo"


def test_the_staff_api_names_a_bad_queue_filter(staff_api):
    bad_due = staff_api.get("/api/v1/staff/requests/", {"due": "later"})
    bad_email = staff_api.get("/api/v1/staff/requests/", {"q": "ada@"})

    assert bad_due.status_code == 400
    assert bad_due.json()["error"]["field"] == "due"
    assert bad_email.status_code == 400
    assert bad_email.json()["error"]["field"] == "q"
