"""`manage.py stores ...`: list, check, discover, disable and delete connected stores."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from requests.models import ConnectedStore
from requests.services import store_health, store_lifecycle, stores
from requests.services.audit import SYSTEM
from requests.services.errors import ServiceError


class Command(BaseCommand):
    help = (
        "Work with connected stores: list, check, discover, set-map, import-fides, enable, "
        "disable, delete."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("list", help="List the connected stores and their last check.")
        check = sub.add_parser("check", help="Connect to a store and check its map.")
        check.add_argument("name")
        discover = sub.add_parser(
            "discover", help="Draft a map from the store's schema and print it (YAML)."
        )
        discover.add_argument("name")
        discover.add_argument(
            "--apply", action="store_true", help="Save the draft as the store's map."
        )
        set_map = sub.add_parser("set-map", help="Replace a store's map with a YAML file.")
        set_map.add_argument("name")
        set_map.add_argument("file", type=Path)
        fides = sub.add_parser(
            "import-fides", help="Turn a Fides dataset YAML into a map and print it."
        )
        fides.add_argument("file", type=Path)
        fides.add_argument(
            "--store",
            help="complete the map from this connected store: its keys where the dataset gives "
            "none, and which references may be null",
        )
        fides.add_argument(
            "--dataset", help="the fides_key of the dataset to import when the file holds several"
        )
        fides.add_argument(
            "--apply", action="store_true", help="Save the map as the --store's map."
        )
        for action, text in [
            ("enable", "Search the store again."),
            ("disable", "Stop searching the store (jobs it already has still run)."),
            ("delete", "Delete the store (refused while open requests have jobs in it)."),
        ]:
            sub.add_parser(action, help=text).add_argument("name")

    def handle(self, *args, **options):
        try:
            getattr(self, "_" + options["action"].replace("-", "_"))(options)
        except ServiceError as exc:
            raise CommandError(exc.message) from None

    def _store(self, name: str) -> ConnectedStore:
        store = stores.live_stores().filter(name=name).first()
        if store is None:
            known = ", ".join(stores.live_stores().values_list("name", flat=True)) or "none"
            raise CommandError(f"No store named {name!r} (known: {known}).")
        return store

    def _enable(self, options):
        store_lifecycle.store_set_enabled(
            store=self._store(options["name"]), enabled=True, actor=SYSTEM
        )
        self.stdout.write(f"{options['name']} enabled.")

    def _disable(self, options):
        store_lifecycle.store_set_enabled(
            store=self._store(options["name"]), enabled=False, actor=SYSTEM
        )
        self.stdout.write(f"{options['name']} disabled.")

    def _delete(self, options):
        removed = store_lifecycle.store_delete(store=self._store(options["name"]), actor=SYSTEM)
        kept = "" if removed else " (kept, wiped, for the records of past requests)"
        self.stdout.write(f"{options['name']} deleted{kept}.")

    def _list(self, options):
        for store in stores.live_stores():
            state = {True: "ok", False: "FAILING", None: "never checked"}[store.last_check_ok]
            enabled = "" if store.enabled else " (disabled)"
            self.stdout.write(f"{store.name:24} {store.kind:10} {state}{enabled}")

    def _check(self, options):
        result = store_health.store_check(store=self._store(options["name"]))
        self.stdout.write(("OK: " if result.ok else f"FAILED ({result.code}): ") + result.message)
        for problem in result.problems:
            self.stdout.write(f"  - {problem}")
        for warning in result.warnings:
            self.stdout.write(f"  ! {warning}")
        for note in result.notes:
            self.stdout.write(f"  . {note}")
        if not result.ok:
            raise CommandError("The check failed.")

    def _progress(self, done: int, total: int, table: str) -> None:
        # Progress goes to stderr so stdout carries only the YAML draft.
        self.stderr.write(f"discovering: {done}/{total} tables read ({table})")
        self.stderr.flush()

    def _discover(self, options):
        store = self._store(options["name"])
        draft = stores.store_discover(store=store, progress=self._progress)
        text = stores.dump_map(draft)
        if options["apply"]:
            stores.store_update_map(store=store, map_yaml=text, actor=SYSTEM)
            self.stderr.write(f"applied to {store.name}")
        self.stdout.write(text)

    def _set_map(self, options):
        store = self._store(options["name"])
        try:
            text = options["file"].read_text()
        except OSError as exc:
            raise CommandError(f"Cannot read {options['file']}: {exc.strerror}") from None
        stores.store_update_map(store=store, map_yaml=text, actor=SYSTEM)
        self.stdout.write(f"Map of {store.name} replaced.")

    def _import_fides(self, options):
        from requests.engine.fides import import_fides_dataset
        from requests.engine.mapfile import MapError

        try:
            text = options["file"].read_text()
        except OSError as exc:
            raise CommandError(f"Cannot read {options['file']}: {exc.strerror}") from None
        if options.get("apply") and not options.get("store"):
            raise CommandError("--apply saves the map as a store's: name it with --store.")
        try:
            imported = import_fides_dataset(text, dataset=options.get("dataset"))
        except MapError as exc:
            raise CommandError(str(exc)) from None
        if options.get("store"):
            from requests.engine.fides import fill_from_live

            store = self._store(options["store"])
            imported = fill_from_live(imported, stores.store_discover(store=store))
        text = stores.dump_map(imported)
        if options.get("apply"):
            stores.store_update_map(store=store, map_yaml=text, actor=SYSTEM)
            self.stderr.write(f"applied to {store.name}")
        self.stdout.write(text)
