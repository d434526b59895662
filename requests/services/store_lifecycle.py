"""Enabling, disabling and deleting connected stores.

A store is disabled before it is deleted: its jobs still run, and deleting waits until requests
that are not closed no longer have work in it. A store past requests used is kept, wiped, for
their records.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import ProtectedError
from django.utils import timezone

from requests.models import ConnectedStore, Job
from requests.services.audit import audit_record
from requests.services.errors import NotFound, ServiceError
from requests.services.stores import live_stores, lock_live_store, store_map
from requests.states import TERMINAL


class StoreInUse(ServiceError):
    status_code = 409
    code = "store_in_use"


@transaction.atomic
def store_set_enabled(*, store: ConnectedStore, enabled: bool, actor: str) -> ConnectedStore:
    """Enable or disable a store. A disabled store is not searched, previewed or given jobs of
    requests approved from now on; jobs it already has still run (disable, then let them finish
    or see them fail, before deleting it)."""
    locked = lock_live_store(store)
    changed = locked.enabled != enabled
    locked.enabled = enabled
    locked.save(update_fields=["enabled", "updated_at"])
    audit_record(
        action="store.enabled" if enabled else "store.disabled",
        actor=actor,
        details={"store": locked.name, "changed": changed},
    )
    return locked


def store_delete(*, store: ConnectedStore, actor: str) -> bool:
    """Delete a store; returns whether its row is gone (True) or kept as deleted (False).

    Refused (409) while requests that are not closed have jobs in it, or while another store's
    map refers to it. A store no job ever used is removed. One that past requests used is kept
    for their records (the jobs name it) but disabled, hidden, and its URL, secret and options
    wiped, so nothing can connect with it again; its name stays taken.
    """
    with transaction.atomic():
        locked = live_stores().select_for_update().filter(pk=store.pk).first()
        if locked is None:
            raise NotFound("No store with this name.")
        open_requests = (
            Job.objects.filter(store=locked)
            .exclude(request__status__in=TERMINAL)
            .values("request")
            .distinct()
            .count()
        )
        if open_requests:
            raise StoreInUse(
                f"{open_requests} request(s) not yet closed have work in this store; disable it "
                "now, and delete it once they are closed.",
            )
        referring = _maps_referring_to(locked)
        if referring:
            raise StoreInUse(
                f"The maps of {', '.join(referring)} refer to this store; change them first.",
            )
        removed = not Job.objects.filter(store=locked).exists()
        if removed:
            try:
                locked.delete()
            except ProtectedError:  # an approval gave it a job since we looked
                raise StoreInUse("A request was just given work in this store.") from None
        else:
            locked.url = ""
            locked.secret = ""
            locked.options = {}
            locked.enabled = False
            locked.deleted_at = timezone.now()
            locked.save()
        audit_record(
            action="store.deleted",
            actor=actor,
            details={"store": store.name, "kind": store.kind, "kept_for_records": not removed},
        )
    return removed


def _maps_referring_to(store: ConnectedStore) -> list[str]:
    names = []
    for other in live_stores().exclude(pk=store.pk).exclude(map_yaml=""):
        try:
            parsed = store_map(other)
        except ServiceError:
            # A map that no longer parses cannot be read for its references: assume it may.
            if store.name in other.map_yaml:
                names.append(other.name)
            continue
        if any(
            spec.references is not None and spec.references.store == store.name
            for collection in parsed.collections.values()
            for spec in collection.fields.values()
        ):
            names.append(other.name)
    return names
