"""`manage.py erasures ...`: the suppression ledger and re-erasing people after a backup restore.

    manage.py erasures ledger
    manage.py erasures reapply --since 2026-03-01T02:00 [--store shop] [--batch 1000] [--dry-run]
    manage.py erasures reapply --all

After restoring a store from a backup, the people erased since the backup was taken are back in
it. `reapply --since <the backup's time>` erases them again: it scans each store's identity
fields in batches, hashes each value's normal form with the ledger's key, and erases the
matches in every store through the erasure engine. The ledger holds only keyed hashes, so the
portal never kept the identifiers themselves. Erasures older than the backup are left out (the
backup does not hold those people); `--all` takes every entry.
"""

from __future__ import annotations

import time
from datetime import datetime
from datetime import time as dt_time

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count, Max, Min
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from requests.engine.store import StoreError
from requests.models import SuppressionEntry
from requests.services.audit import SYSTEM
from requests.services.erasure.suppression import suppression_reapply
from requests.services.errors import ServiceError

# Progress lines per scanned field: at most one every this many seconds (and one at its end).
PROGRESS_EVERY = 1.0


def parse_since(text: str) -> datetime:
    """An ISO date or date-time; without a time zone, the portal's."""
    moment = parse_datetime(text)
    if moment is None:
        day = parse_date(text)
        if day is None:
            raise CommandError(
                f"--since {text!r} is not a date or date-time (e.g. 2026-03-01 or "
                "2026-03-01T02:00)."
            )
        moment = datetime.combine(day, dt_time.min)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


class Command(BaseCommand):
    help = "The erasure suppression ledger: show it, or erase people again after a restore."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("ledger", help="How many erased identifiers the ledger holds, by type.")
        reapply = sub.add_parser(
            "reapply",
            help="Erase again the erased people found in the stores (after a backup restore).",
        )
        which = reapply.add_mutually_exclusive_group(required=True)
        which.add_argument(
            "--since",
            type=parse_since,
            help="The time the restored backup was taken: erasures from then on are reapplied.",
        )
        which.add_argument("--all", action="store_true", help="Reapply every erasure.")
        reapply.add_argument(
            "--store",
            action="append",
            dest="stores",
            metavar="NAME",
            help="Scan only this store (repeatable); matches are still erased in every store.",
        )
        reapply.add_argument(
            "--batch", type=int, default=1000, help="Values read and hashed per batch."
        )
        reapply.add_argument(
            "--dry-run", action="store_true", help="Count the matches; erase nothing."
        )

    def handle(self, *args, **options):
        try:
            getattr(self, "_" + options["action"])(options)
        except ServiceError as exc:
            raise CommandError(exc.message) from None
        except StoreError as exc:
            raise CommandError(f"A store failed: {exc}") from None

    def _ledger(self, options):
        rows = (
            SuppressionEntry.objects.values("identity_type")
            .annotate(n=Count("pk"), first=Min("created_at"), last=Max("created_at"))
            .order_by("identity_type")
        )
        if not rows:
            self.stdout.write("The suppression ledger is empty.")
            return
        for row in rows:
            self.stdout.write(
                f"{row['identity_type']:16} {row['n']:>8} erased identifier(s), "
                f"{row['first']:%Y-%m-%d} to {row['last']:%Y-%m-%d}"
            )

    def _reapply(self, options):
        if options["batch"] < 1:
            raise CommandError("--batch must be at least 1.")
        last_line: dict[str, float] = {}

        def progress(message: str) -> None:
            # Scan lines ("store.collection.field: ...") are throttled per field.
            head = message.split(":", 1)[0]
            now = time.monotonic()
            if " value(s) scanned" in message and now - last_line.get(head, 0.0) < PROGRESS_EVERY:
                return
            last_line[head] = now
            self.stderr.write(message)
            self.stderr.flush()

        summary = suppression_reapply(
            since=options["since"],
            store_names=options["stores"],
            batch=options["batch"],
            dry_run=options["dry_run"],
            actor=SYSTEM,
            progress=progress,
        )
        self.stdout.write(
            f"Scanned {summary.scanned} identity value(s); {summary.matched} erased "
            f"identifier(s) found again"
            + (" (dry run: nothing erased)." if summary.dry_run else ".")
        )
        for store, collections in sorted(summary.erased.items()):
            for name, counts in sorted(collections.items()):
                done = ", ".join(f"{k} {v}" for k, v in counts.items() if v)
                if done:
                    self.stdout.write(f"  {store}.{name}: {done}")
        for store, why in sorted(summary.skipped.items()):
            self.stdout.write(f"  {store}: not scanned ({why})")
        if not summary.dry_run:
            self.stdout.write(f"Records erased again: {summary.records}.")
