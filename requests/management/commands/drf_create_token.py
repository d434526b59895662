"""`manage.py drf_create_token <username>`: a new staff API token, its key printed once.

The portal's own version of DRF's command: keys are stored only as digests, so an existing key
cannot be shown again; each run makes a new one (`--reset` first revokes the user's others)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from requests.services.audit import SYSTEM
from requests.services.tokens import token_create


class Command(BaseCommand):
    help = "Create a staff API token for a user and print its key (shown only this once)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "-r", "--reset", action="store_true", help="revoke the user's other tokens first"
        )

    def handle(self, *args, **options):
        username = options["username"]
        user = get_user_model()._default_manager.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user is called {username!r}.")
        key = token_create(user=user, actor=SYSTEM, replace=options["reset"])
        self.stdout.write(f"Generated token {key} for user {username}")
        if not user.is_staff:
            self.stderr.write(f"Note: {username!r} is not staff, so the staff API refuses it.")
