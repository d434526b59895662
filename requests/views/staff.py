"""The staff console's demo outbox. The request page is in `requests.views.request_page`."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from requests import permissions, selectors
from requests.views.console import staff_only, staff_page

MAIL_PAGE_SIZE = 20


@never_cache
@staff_only(permissions.access_read_demo_mail)
@require_http_methods(["GET", "HEAD"])
def mail(request):
    """The demo's outbox (no EMAIL_HOST): what people were sent, for staff eyes only."""
    page = Paginator(selectors.demo_mail(), MAIL_PAGE_SIZE).get_page(request.GET.get("page"))
    return staff_page(request, "staff/mail.html", {"page": page})
