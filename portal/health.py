"""A liveness probe: the web process answers. It touches neither the database nor the broker,
so a load balancer does not take every web process out when a dependency blips, and benchmarks
use it as the cheapest view the server can serve."""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})
