"""Seed the demo: a staff login (printed every run) and, when stores exist, a demo store."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from rest_framework.authtoken.models import Token

from requests.demo import demo_store_seed

DEMO_USERNAME = "dpo"


class Command(BaseCommand):
    help = "Create the demo staff login and demo store (idempotent), and print how to log in."

    def handle(self, *args, **options):
        password_file = settings.DATA_DIR / "demo-staff-password"
        if not password_file.exists():
            password_file.write_text(secrets.token_urlsafe(12))
            password_file.chmod(0o600)
        password = password_file.read_text().strip()

        user_model = get_user_model()
        user, _ = user_model.objects.get_or_create(
            username=DEMO_USERNAME, defaults={"is_staff": True, "is_superuser": True}
        )
        user.is_staff = True
        user.is_superuser = True
        user.set_password(password)
        user.save()
        token, _ = Token.objects.get_or_create(user=user)

        store_note = demo_store_seed()

        base = settings.PORTAL_BASE_URL
        self.stdout.write(
            "\n".join(
                [
                    "",
                    "Data subject rights portal",
                    f"  public page:   {base}/",
                    f"  staff console: {base}/staff/",
                    f"  staff login:   user {DEMO_USERNAME!r}, password {password!r}",
                    f"  staff API:     Authorization: Token {token.key}",
                    f"  API schema:    {base}/api/schema/",
                    *([f"  demo store:    {store_note}"] if store_note else []),
                    "  mail:          shown in the worker's log (set EMAIL_HOST to send over SMTP)",
                    "",
                ]
            )
        )
