"""Seed the demo: a staff login and, when stores exist, a demo store.

The demo password is generated once into PORTAL_DATA_DIR/demo-staff-password (readable only by the
portal's user). It is printed only when the login is first created and the output is a terminal,
or when asked with --show-password, so `make run` redirected to a log file never writes it there.
"""

from __future__ import annotations

import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from requests.demo import demo_store_seed
from requests.mailbox import mailbox_is_demo

DEMO_USERNAME = "dpo"
PASSWORD_FILE = "demo-staff-password"


def _write_private(path, text: str) -> None:
    # Created 0600 from the start (not chmod-ed after), so it is never readable by others.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


class Command(BaseCommand):
    help = "Create the demo staff login and demo store (idempotent), and print how to log in."

    def add_arguments(self, parser):
        parser.add_argument(
            "--show-password",
            action="store_true",
            help="print the demo staff password (by default shown once, on a terminal)",
        )

    def handle(self, *args, **options):
        password_file = settings.DATA_DIR / PASSWORD_FILE
        user_model = get_user_model()
        user, created = user_model.objects.get_or_create(
            username=DEMO_USERNAME, defaults={"is_staff": True, "is_superuser": True}
        )
        if created:
            password = secrets.token_urlsafe(12)
            _write_private(password_file, password)
            user.set_password(password)
            user.save()

        if options["show_password"] or (created and self.stdout.isatty()):
            if password_file.exists():
                login = f"user {DEMO_USERNAME!r}, password {password_file.read_text().strip()!r}"
            else:
                login = (
                    f"user {DEMO_USERNAME!r}; its password was not kept here "
                    f"(set one: manage.py changepassword {DEMO_USERNAME})"
                )
        else:
            login = f"user {DEMO_USERNAME!r}, password in {password_file} (only you can read it)"

        store_note = demo_store_seed()

        base = settings.PORTAL_BASE_URL
        mail_note = (
            f"kept for staff at {base}/staff/mail/ (set EMAIL_HOST to send over SMTP)"
            if mailbox_is_demo()
            else "sent over SMTP (EMAIL_HOST)"
        )
        self.stdout.write(
            "\n".join(
                [
                    "",
                    "Data subject rights portal",
                    f"  public page:   {base}/",
                    f"  staff console: {base}/staff/",
                    f"  staff login:   {login}",
                    f"  staff API:     a key for it: manage.py drf_create_token {DEMO_USERNAME}",
                    f"  API schema:    {base}/api/schema/",
                    *([f"  demo store:    {store_note}"] if store_note else []),
                    f"  mail:          {mail_note}",
                    "",
                ]
            )
        )
