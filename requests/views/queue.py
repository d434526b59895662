"""The staff queue (`/staff/`): filters, search, sortable columns, counts per state, pages.

Works without JavaScript: the filters are a GET form, the column headers and counts are links,
and every link keeps the other filters.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.core.paginator import Paginator
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from requests import clock, permissions
from requests import queue as queue_selectors
from requests.forms import RejectForm
from requests.queue import ALL, DUE_THIS_WEEK, OPEN, OVERDUE, QueueFilters, SearchError
from requests.states import Kind, Status
from requests.views.console import staff_only, staff_page

PAGE_SIZE = 50

# (sort key or None, column label) in the order of the table's columns.
COLUMNS = [
    ("reference", _("Reference")),
    ("kind", _("Kind")),
    ("status", _("Status")),
    ("received", _("Received")),
    ("due", _("Due")),
    (None, _("Assigned to")),
]


class QueueForm(forms.Form):
    q = forms.CharField(
        label=_("Reference or email address"),
        required=False,
        max_length=254,
        help_text=_("An email address finds the person's requests in every state."),
        widget=forms.TextInput(attrs={"type": "search", "spellcheck": "false"}),
    )
    status = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[(OPEN, _("Open requests")), (ALL, _("All requests")), *Status.choices],
        error_messages={
            "invalid_choice": _("There is no status called “%(value)s”; showing open requests.")
        },
    )
    kind = forms.ChoiceField(
        label=_("Kind"),
        required=False,
        choices=[("", _("Both kinds")), *Kind.choices],
        error_messages={"invalid_choice": _("Choose one of the kinds given.")},
    )
    due = forms.ChoiceField(
        label=_("Due date"),
        required=False,
        choices=[("", _("Any")), (OVERDUE, _("Overdue")), (DUE_THIS_WEEK, _("Due this week"))],
        error_messages={"invalid_choice": _("Choose one of the due dates given.")},
    )
    flagged = forms.BooleanField(label=_("Possibly excessive only"), required=False)
    mine = forms.BooleanField(label=_("Assigned to me"), required=False)
    sort = forms.ChoiceField(
        required=False,
        choices=[(key, key) for key in queue_selectors.SORTS],
        widget=forms.HiddenInput,
    )

    def filters(self) -> QueueFilters:
        """The filters from the valid fields; an invalid field falls back to its default."""
        self.is_valid()
        data = self.cleaned_data
        return QueueFilters(
            status=data.get("status") or OPEN,
            kind=data.get("kind") or "",
            due=data.get("due") or "",
            flagged=bool(data.get("flagged")),
            mine=bool(data.get("mine")),
            q=data.get("q") or "",
            sort=data.get("sort") or queue_selectors.DEFAULT_SORT,
        )


def _query(filters: QueueFilters, **changes) -> str:
    """The query string for these filters with some changed; defaults are left out."""
    values = {
        "q": filters.q,
        "status": "" if filters.status == OPEN else filters.status,
        "kind": filters.kind,
        "due": filters.due,
        "flagged": "on" if filters.flagged else "",
        "mine": "on" if filters.mine else "",
        "sort": "" if filters.sort == queue_selectors.DEFAULT_SORT else filters.sort,
    }
    values.update(changes)
    return urlencode({key: value for key, value in values.items() if value})


def _columns(filters: QueueFilters) -> list[dict]:
    columns = []
    for key, label in COLUMNS:
        if key is None:
            columns.append({"label": label, "query": "", "aria_sort": ""})
            continue
        current = filters.sort.lstrip("-") == key
        descending = filters.sort.startswith("-")
        next_sort = f"-{key}" if current and not descending else key
        columns.append(
            {
                "label": label,
                "query": _query(filters, sort=next_sort),
                "aria_sort": ("descending" if descending else "ascending") if current else "",
            }
        )
    return columns


def _count_links(filters: QueueFilters, counts: dict[str, int]) -> list[dict]:
    entries = [(OPEN, _("Open")), *Status.choices, (ALL, _("All"))]
    return [
        {
            "label": label,
            "count": counts[value],
            "query": _query(filters, status="" if value == OPEN else value, q=""),
            "current": filters.status == value,
        }
        for value, label in entries
        if counts[value] or value in (OPEN, ALL) or filters.status == value
    ]


@never_cache
@staff_only(permissions.access_view_requests)
@require_http_methods(["GET", "HEAD"])
def queue(request):
    form = QueueForm(request.GET)
    filters = form.filters()
    today = clock.today()
    try:
        requests = queue_selectors.queue_requests(filters, today=today, user=request.user)
    except SearchError as exc:
        form.add_error("q", exc.args[0])
        requests = queue_selectors.queue_requests(QueueFilters(), today=today).none()
    page = Paginator(requests, PAGE_SIZE).get_page(request.GET.get("page"))
    return staff_page(
        request,
        "staff/queue.html",
        {
            "form": form,
            "filters": filters,
            "page": page,
            "columns": _columns(filters),
            "counts": _count_links(filters, queue_selectors.queue_counts()),
            "page_query": _query(filters),
            "flag_from": queue_selectors.flagged_threshold(),
            "bulk_form": RejectForm(prefix="bulk"),
            "today": today,
        },
    )
