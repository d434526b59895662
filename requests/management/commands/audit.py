"""`manage.py audit verify`: check the audit chain and name the first broken link."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from requests.services.audit import audit_verify


class Command(BaseCommand):
    help = "Work with the tamper-evident audit trail."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("verify", help="Check every link of the chain from the first event.")

    def handle(self, *args, **options):
        report = audit_verify()
        if report.ok:
            self.stdout.write(f"Audit chain intact: {report.checked} events checked.")
            return
        raise CommandError(
            f"Audit chain broken at event #{report.broken_sequence}: {report.problem} "
            f"({report.checked} events before it are intact)."
        )
