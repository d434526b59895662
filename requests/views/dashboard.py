"""The staff dashboard (`/staff/dashboard/`): open work, deadlines, time to close, requests per
month by kind (an SVG chart drawn on the server, with its figures as a table), store failures."""

from __future__ import annotations

from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from requests import charts, dashboard, permissions
from requests.services.auto_approval import policy_sentence
from requests.states import Kind
from requests.views.console import staff_only, staff_page


@never_cache
@staff_only(permissions.access_view_dashboard)
@require_http_methods(["GET", "HEAD"])
def dashboard_page(request):
    today, now = dashboard.today_and_now()
    months = dashboard.requests_per_month(today=today)
    median, answered = dashboard.median_days_to_close(now=now)
    by_state = dashboard.open_by_state()
    return staff_page(
        request,
        "staff/dashboard.html",
        {
            "by_state": by_state,
            "open_total": sum(count for _, _, count in by_state),
            "deadlines": dashboard.deadlines(today=today),
            "median_days": median,
            "answered": answered,
            "months": months,
            "kinds": Kind.choices,
            "chart": charts.grouped_bars(
                [(month.month, month.counts) for month in months], list(Kind.values)
            ),
            "stores": dashboard.store_health(now=now),
            "failure_window": dashboard.FAILURE_WINDOW_DAYS,
            "approval_policy": policy_sentence(),
        },
    )
