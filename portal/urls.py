from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from portal.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/v1/", include("requests.api.urls")),
    path("staff/", include("requests.views.staff_urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("requests.views.public_urls")),
]

# The API answers its own error shape even where no API view is reached.
handler400 = "requests.api.errors.bad_request"
handler404 = "requests.api.errors.page_not_found"
handler500 = "requests.api.errors.server_error"
