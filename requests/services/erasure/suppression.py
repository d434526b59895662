"""The suppression ledger: a keyed hash of each identifier that singled an erased person out,
kept at completion, and `suppression_reapply` (`manage.py erasures reapply`), which erases those
people again when a restored backup brought their records back."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from requests.assurance import searchable_identity
from requests.crypto import keyed_hash
from requests.engine.erasure import store_order
from requests.engine.normalise import normalise
from requests.engine.store import Connector
from requests.models import ConnectedStore, DataRequest, SuppressionEntry
from requests.services.audit import SYSTEM, audit_record
from requests.services.erasure.run import COUNT_NAMES, erase_in_store, result_collections
from requests.services.errors import ServiceError
from requests.services.store_connections import open_connectors

# Identity types never kept in the suppression ledger nor used to erase again: a name does not
# single a person out, and erasing every "Ada Lovelace" in a restored backup would be wrong.
NOT_SUPPRESSIBLE = frozenset({"name"})


def _suppression_purpose(identity_type: str) -> str:
    return f"suppression:{identity_type}"


def suppression_hash(identity_type: str, normal_value: str) -> str:
    """The ledger's keyed hash of an identifier's normal form (a purpose per identity type)."""
    return keyed_hash(normal_value, purpose=_suppression_purpose(identity_type))


def _normal(identity_type: str, value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    try:
        normal = normalise(identity_type, text, region=settings.PORTAL_DEFAULT_PHONE_REGION)
    except ValueError:
        return None
    return normal or None


def suppression_record(
    *, request: DataRequest, identity: dict[str, str] | None = None
) -> list[SuppressionEntry]:
    """Keep a keyed hash of each identifier of the erased person that singles them out (an
    identifier already in the ledger keeps its first request). `identity`: the request's
    searchable identity, when the caller read it already."""
    if identity is None:
        identity = searchable_identity(request=request)
    entries = []
    for identity_type, value in sorted(identity.items()):
        if identity_type in NOT_SUPPRESSIBLE:
            continue
        normal = _normal(identity_type, value)
        if not normal:
            continue
        entries.append(
            SuppressionEntry(
                identity_type=identity_type,
                value_hash=suppression_hash(identity_type, normal),
                request=request,
            )
        )
    # One statement for them all; the unique constraint keeps one entry per identifier.
    SuppressionEntry.objects.bulk_create(entries, ignore_conflicts=True)
    return entries


@dataclass
class ReapplySummary:
    """What a reapply read, found and erased again (counts only), and which stores it skipped."""

    since: datetime | None
    dry_run: bool
    ledger: int = 0
    scanned: int = 0  # identity values read from the stores
    matched: int = 0  # distinct erased identifiers found again
    # store -> collection -> count name -> n
    erased: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # store -> why it was not scanned

    def to_json(self) -> dict[str, Any]:
        return {
            "since": self.since,
            "dry_run": self.dry_run,
            "ledger": self.ledger,
            "scanned": self.scanned,
            "matched": self.matched,
            "erased": self.erased,
            "skipped": self.skipped,
        }

    @property
    def records(self) -> int:
        return sum(
            n
            for per in self.erased.values()
            for counts in per.values()
            for name, n in counts.items()
            if name in ("deleted", "masked", "nullified")
        )


Progress = Callable[[str], None]


def suppression_reapply(
    *,
    since: datetime | None,
    store_names: list[str] | None = None,
    batch: int = 1000,
    dry_run: bool = False,
    actor: str = SYSTEM,
    progress: Progress | None = None,
) -> ReapplySummary:
    """Erase again the people in the suppression ledger whose records came back (a restored
    backup): scan every identity field of every store, in batches of `batch` values, hash each
    value's normal form and look the hashes up in the ledger; erase each match in every store
    through the engine, in the stores' order. Only `since` (the backup's time) onwards, when given.

    The scan keeps nothing: each batch of values is hashed, compared and dropped; only the values
    that match an erased identifier are held until they are erased again.
    """
    say = progress or (lambda message: None)
    summary = ReapplySummary(since=since, dry_run=dry_run)
    ledger = SuppressionEntry.objects.all()
    if since is not None:
        ledger = ledger.filter(created_at__gte=since)
    summary.ledger = ledger.count()
    types = set(ledger.values_list("identity_type", flat=True).distinct())
    if not types:
        say("The suppression ledger has no entries to reapply.")
        return summary
    say(f"Ledger: {summary.ledger} erased identifier(s) of type {', '.join(sorted(types))}.")
    stores = ConnectedStore.objects.filter(enabled=True).order_by("name")
    if store_names:
        unknown = sorted(set(store_names) - set(stores.values_list("name", flat=True)))
        if unknown:
            raise ServiceError(f"No enabled store named {', '.join(unknown)}.", field="store")
    matches: dict[tuple[str, str], int] = {}  # (type, normal value) -> ledger entry id
    with ExitStack() as stack:
        connectors = open_connectors(stack)
        for store in stores:
            if store_names and store.name not in store_names:
                continue
            connector = connectors.get(store.name)
            if connector is None:
                summary.skipped[store.name] = "a manual store: its owner checks it by hand"
                continue
            if not connector.can_scan_values:
                summary.skipped[store.name] = (
                    f"{connector.kind} stores cannot list their identity values; "
                    "ask the recipient to reapply its own erasures"
                )
                say(f"{store.name}: skipped ({summary.skipped[store.name]})")
                continue
            for collection in connector.store_map.collections.values():
                for field_name, identity_type in collection.identity_fields().items():
                    if identity_type not in types or identity_type in NOT_SUPPRESSIBLE:
                        continue
                    scanned = found = 0
                    for values in connector.scan_values(collection, field_name, batch=batch):
                        scanned += len(values)
                        found += _match_batch(ledger, identity_type, values, matches)
                        say(
                            f"{store.name}.{collection.name}.{field_name}: {scanned} value(s) "
                            f"scanned, {found} erased identifier(s) found"
                        )
                    say(
                        f"{store.name}.{collection.name}.{field_name}: done, {scanned} value(s) "
                        f"read, {found} erased identifier(s) found"
                    )
                    summary.scanned += scanned
        summary.matched = len(matches)
        say(f"{summary.matched} erased identifier(s) found again in the stores.")
        if not dry_run and matches:
            _erase_matches(connectors, matches, summary, say)
    with transaction.atomic():
        audit_record(action="suppression.reapplied", actor=actor, details=summary.to_json())
    return summary


def _match_batch(ledger, identity_type: str, values: list[Any], matches: dict) -> int:
    hashed: dict[str, str] = {}
    for value in values:
        normal = _normal(identity_type, value)
        if normal:
            hashed[suppression_hash(identity_type, normal)] = normal
    if not hashed:
        return 0
    found = 0
    for entry_id, value_hash in ledger.filter(
        identity_type=identity_type, value_hash__in=list(hashed)
    ).values_list("pk", "value_hash"):
        matches[(identity_type, hashed[value_hash])] = entry_id
        found += 1
    return found


def _erase_matches(
    connectors: dict[str, Connector], matches: dict, summary: ReapplySummary, say: Progress
) -> None:
    maps = {name: connector.store_map for name, connector in connectors.items()}
    order = store_order(maps)
    for done, ((identity_type, value), entry_id) in enumerate(sorted(matches.items()), start=1):
        for store in order:
            result = erase_in_store(connectors, {identity_type: value}, store=store)
            for name, counts in result_collections(result.to_json()).items():
                target = summary.erased.setdefault(store, {}).setdefault(name, {})
                for count_name in COUNT_NAMES:
                    target[count_name] = target.get(count_name, 0) + int(
                        counts.get(count_name, 0) or 0
                    )
        SuppressionEntry.objects.filter(pk=entry_id).update(
            last_reapplied_at=timezone.now(), reapplied=F("reapplied") + 1
        )
        say(f"erased again: {done}/{len(matches)}")
