"""The staff dashboard: open requests by state, deadlines, median days to close, requests per month
by kind as a server-drawn SVG chart with its table, and failures per store."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from requests import clock
from requests.charts import nice_step
from requests.models import DataRequest
from requests.permissions import AUDITOR, role_group
from requests.services import lifecycle, stores
from requests.services.audit import SYSTEM, audit_record
from requests.states import Status

pytestmark = pytest.mark.django_db

DASHBOARD = "/staff/dashboard/"


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


def make(*, kind="access", email="ada@example.com", verified=True, **fields):
    data_request = lifecycle.request_file(kind=kind, identity={"email": email})
    if verified:
        data_request = lifecycle.request_mark_verified(request=data_request, method="code")
    if fields:
        DataRequest.objects.filter(pk=data_request.pk).update(**fields)
    return data_request


def figure(html: str, title_id: str) -> str:
    match = re.search(
        rf'id="{title_id}">[^<]*</h2>\s*<p class="tile__figure">(?:<a [^>]*>)?([^<]+)<', html
    )
    assert match, f"no figure under #{title_id}"
    return match.group(1).strip()


def test_the_dashboard_counts_open_requests_overdue_and_due_this_week(staff_client):
    today = clock.today()
    make(email="a@example.com", due_on=today - timedelta(days=2))
    make(email="b@example.com", due_on=today + timedelta(days=6 - today.weekday()))
    make(email="c@example.com", due_on=today + timedelta(days=40))
    make(email="d@example.com", verified=False)
    closed = make(email="e@example.com", due_on=today - timedelta(days=9))
    lifecycle.request_reject(request=closed, actor="staff:dpo", reason="manifestly_unfounded")

    response = staff_client.get(DASHBOARD)

    html = response.content.decode()
    assert response.status_code == 200
    assert figure(html, "open-title") == "4"
    assert figure(html, "overdue-title") == "1"
    assert figure(html, "week-title") == "1"
    by_state = {status: count for status, _, count in response.context["by_state"]}
    assert by_state[Status.IN_REVIEW] == 3
    assert by_state[Status.AWAITING_VERIFICATION] == 1
    assert Status.REJECTED not in by_state


def test_the_median_days_to_close_counts_answered_requests_only(staff_client):
    now = timezone.now()
    for days, status in [(2, Status.COMPLETED), (5, Status.REJECTED), (30, Status.COMPLETED)]:
        make(
            email=f"d{days}@example.com",
            status=status,
            rejection_reason="manifestly_unfounded" if status == Status.REJECTED else "",
            received_at=now - timedelta(days=days + 1),
            closed_at=now - timedelta(days=1),
        )
    # Never answered: an expired request does not make the portal look slower or faster.
    make(
        email="x@example.com",
        status=Status.EXPIRED,
        received_at=now - timedelta(days=200),
        closed_at=now - timedelta(days=1),
    )

    html = staff_client.get(DASHBOARD).content.decode()

    assert figure(html, "median-title") == "5.0"
    assert "over 3 requests answered in the last 12 months" in html


def test_requests_per_month_are_drawn_as_svg_bars_by_kind_with_the_figures_in_a_table(
    staff_client,
):
    now = timezone.now()
    this_month = now.replace(day=1, hour=12)
    last_month = (this_month - timedelta(days=1)).replace(day=1, hour=12)
    for n in range(3):
        make(email=f"a{n}@example.com", received_at=this_month)
    make(kind="erasure", email="e@example.com", received_at=this_month)
    make(email="old@example.com", received_at=last_month)

    response = staff_client.get(DASHBOARD)
    html = response.content.decode()

    svg = html.split("<svg", 1)[1].split("</svg>", 1)[0]
    bars = re.findall(r'<rect class="chart__bar chart__bar--(\w+)"[^>]* height="([\d.]+)"', svg)
    assert len(bars) == 24  # twelve months, two kinds
    heights = [float(height) for _, height in bars]
    # This month is the last group: its access bar (3) is the tallest, three times erasure's (1).
    assert bars[-2][0] == "access" and bars[-1][0] == "erasure"
    assert heights[-2] == max(heights) == pytest.approx(3 * heights[-1], abs=0.05)
    assert heights[-4] == pytest.approx(heights[-1], abs=0.05)  # last month's access bar: 1
    assert "style=" not in svg
    assert "<script" not in html
    table = html.split('id="months-table"', 1)[1].split("</table>", 1)[0]
    last_row = table.split("<tr>")[-1]
    assert re.findall(r'<td class="numeric"[^>]*>(\d+)</td>', last_row) == ["3", "1", "4"]


def test_failures_per_store_count_failed_jobs_in_the_last_thirty_days(staff_client):
    stores.store_create(name="paper-files", kind="manual", actor=SYSTEM)
    stores.store_create(name="archive", kind="manual", actor=SYSTEM)
    for _ in range(2):
        audit_record(
            action="job.failed",
            actor=SYSTEM,
            details={"store": "paper-files", "kind": "access", "reason": "timeout"},
        )

    response = staff_client.get(DASHBOARD)

    health = {store.name: store for store in response.context["stores"]}
    assert health["paper-files"].failures_recent == 2
    assert health["paper-files"].last_failure_at is not None
    assert health["archive"].failures_recent == 0
    row = response.content.decode().split('id="store-failures"', 1)[1].split("paper-files")[1]
    assert re.search(r'<td class="numeric"[^>]*>2</td>', row.split("</tr>")[0])


def test_an_auditor_reads_the_dashboard_and_people_who_are_not_staff_do_not(
    client, django_user_model
):
    auditor = django_user_model.objects.create_user("audrey", password="pw", is_staff=True)
    auditor.groups.add(role_group(AUDITOR))
    outsider = django_user_model.objects.create_user("outsider", password="pw")

    client.force_login(auditor)
    assert client.get(DASHBOARD).status_code == 200
    client.force_login(outsider)
    assert client.get(DASHBOARD).status_code == 403


def test_the_chart_axis_uses_round_steps():
    assert [nice_step(n) for n in (0, 3, 4, 7, 10, 23, 180, 999)] == [1, 1, 1, 2, 5, 10, 50, 500]


def test_an_empty_portal_has_a_dashboard_too(staff_client):
    response = staff_client.get(DASHBOARD)
    html = response.content.decode()
    assert response.status_code == 200
    assert figure(html, "open-title") == "0"
    assert "None yet" in html
    assert "No store is connected yet." in html


def test_months_cross_the_year_boundary_in_order(staff_client, monkeypatch):
    monkeypatch.setattr(clock, "today", lambda: datetime(2027, 2, 10).date())
    months = staff_client.get(DASHBOARD).context["months"]
    assert [m.month.isoformat() for m in months[:2]] == ["2026-03-01", "2026-04-01"]
    assert months[-1].month.isoformat() == "2027-02-01"
