from django.urls import path

from requests.views import downloads, public

urlpatterns = [
    path("", public.file_request, name="request-file"),
    path("r/<str:reference>/filed/", public.filed, name="request-filed"),
    path("r/<str:reference>/verify/", public.verify_code, name="request-verify"),
    path("r/<str:reference>/verify/<str:token>/", public.verify_link, name="request-verify-link"),
    path("r/<str:reference>/status/<str:token>/", public.status, name="request-status"),
    path(
        "r/<str:reference>/status/<str:token>/download/",
        downloads.download,
        name="request-download",
    ),
]
