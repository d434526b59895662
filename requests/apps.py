from django.apps import AppConfig
from django.db.models.signals import post_migrate


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

        # The role groups exist once the database is migrated, so the admin can assign them.
        post_migrate.connect(_make_role_groups, sender=self)

        # Connects the audit of staff sign-in lockouts to django-axes' signal.
        from requests.views import staff_login  # noqa: F401


def _make_role_groups(**kwargs) -> None:
    from requests.permissions import ensure_role_groups

    ensure_role_groups()
