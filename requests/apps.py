from django.apps import AppConfig


class RequestsConfig(AppConfig):
    name = "requests"
    label = "requests"
    verbose_name = "Data subject requests"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # DRF treats the PyPI `requests` library as optional and probes for it with
        # `import requests`, which finds this app. Tell it the library is absent, before its
        # test module (imported by drf-spectacular) tries to subclass the library's classes.
        from rest_framework import compat

        compat.requests = None
