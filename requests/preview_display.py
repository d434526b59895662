"""The preview and the jobs of a request shaped for the request page (the API keeps the raw form).

What erasure will do is said in the certificate's words (templates/erasure/certificate.html:
Deleted, Masked, Set to null, Held, Kept), so the preview a DPO approves and the certificate the
erasure ends with describe each collection the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from requests.connectors.registry import connector_class
from requests.models import JobState
from requests.timeline import CountsTable, counts_table, identity_type_label, words


def job_state_label(state: str) -> str:
    return {
        "held": _("Held back"),
        "queued": _("Queued"),
        "running": _("Running"),
        "waiting": _("Waiting for confirmation"),
        "done": _("Done"),
        "failed": pgettext("job state", "Failed"),
    }.get(state) or words(state)


def erasure_words(action: str) -> str:
    return {
        "delete": _("Deleted"),
        "mask": _("Masked"),
        "nullify": _("Set to null"),
        "hold": _("Held"),
        "keep": _("Kept"),
    }.get(action) or words(action)


def instead_words(instead: str) -> str:
    """What erasure does instead of the map's action (requests.engine.readiness)."""
    if not instead:
        return ""
    return {
        "mask": _("Masked instead: a loop of references (see the store's warnings)"),
        "refuse": _("Erasure stops here with an error (see the store's warnings)"),
    }.get(instead) or words(instead)


@dataclass
class SampleTable:
    columns: list[str]
    rows: list[list[str]]


@dataclass
class CollectionRow:
    name: str
    count: int
    erasure: str = ""
    # What erasure does instead to a row another kept row still points at (a delete's fallback).
    fallback: str = ""
    hold_basis: str = ""
    # What erasure does instead of the map's action, said in full under the store's warnings.
    instead: str = ""
    mismatches: int = 0
    mismatch_types: str = ""
    ownership: dict[str, int] = field(default_factory=dict)
    sample: SampleTable | None = None

    @property
    def ownership_text(self) -> str:
        return ownership_words(self.ownership)

    @property
    def kept_text(self) -> str:
        """Rows erasure leaves alone whatever the collection's action: others' and reference data
        (the certificate's "Kept" column)."""
        kept = self.ownership.get("shared", 0) + self.ownership.get("reference", 0)
        return _("Kept (others' data): %(count)d") % {"count": kept} if kept else ""


@dataclass
class StoreBlock:
    name: str
    error: str = ""
    collections: list[CollectionRow] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(row.count for row in self.collections)


def _cell(value: Any) -> str:
    if value is None:
        return "\N{EN DASH}"
    if isinstance(value, dict) and set(value) == {"base64"}:
        return _("(binary data)")
    return str(value)


def sample_table(rows: list[dict]) -> SampleTable | None:
    if not rows:
        return None
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    return SampleTable(
        columns=columns, rows=[[_cell(row.get(column)) for column in columns] for row in rows]
    )


def preview_stores(preview: dict[str, Any], *, with_samples: bool) -> list[StoreBlock]:
    blocks = []
    for store_name, store in sorted((preview.get("stores") or {}).items()):
        block = StoreBlock(name=store_name, error=store.get("error", ""))
        for name, entry in sorted((store.get("collections") or {}).items()):
            mismatch = entry.get("identity_mismatch") or {}
            block.collections.append(
                CollectionRow(
                    name=name,
                    count=entry.get("count", 0),
                    erasure=erasure_words(entry["erasure"]) if entry.get("erasure") else "",
                    fallback=(
                        erasure_words(entry["erasure_fallback"])
                        if entry.get("erasure_fallback")
                        else ""
                    ),
                    hold_basis=entry.get("hold_basis", ""),
                    instead=instead_words(entry.get("erasure_instead", "")),
                    mismatches=mismatch.get("count", 0),
                    mismatch_types=", ".join(
                        identity_type_label(t) for t in mismatch.get("types", [])
                    ),
                    ownership={
                        k: v
                        for k, v in (entry.get("ownership") or {}).items()
                        if isinstance(v, int) and v
                    },
                    sample=sample_table(entry.get("sample") or []) if with_samples else None,
                )
            )
        blocks.append(block)
    return blocks


def ownership_words(ownership: dict[str, int]) -> str:
    labels = {
        "alone": _("Only the person's"),
        "shared": _("Shared with others"),
        "reference": _("Reference data"),
    }
    return " · ".join(
        _("%(label)s: %(count)d") % {"label": labels.get(k) or words(k), "count": count}
        for k, count in ownership.items()
    )


def candidate_rows(candidates: dict[str, Any]) -> list[tuple[str, str, int]]:
    return [
        (store, collection, entry.get("count", 0))
        for store, per in sorted((candidates.get("stores") or {}).items())
        for collection, entry in sorted((per.get("collections") or {}).items())
    ]


@dataclass
class JobRow:
    store: str
    store_kind: str
    state: str
    state_label: str
    attempts: int
    error: str
    started_at: Any
    finished_at: Any
    counts: CountsTable | None
    confirmable: bool
    confirmed_by: str = ""
    note: str = ""


def job_rows(jobs) -> list[JobRow]:
    rows = []
    for job in jobs:
        counts = job.counts or {}
        rows.append(
            JobRow(
                store=job.store.name,
                store_kind=job.store.kind,
                state=job.state,
                state_label=job_state_label(job.state),
                attempts=job.attempts,
                error=job.error,
                started_at=job.started_at,
                finished_at=job.finished_at,
                counts=counts_table(
                    counts, caption=_("Records in %(store)s") % {"store": job.store.name}
                ),
                # The same condition the confirm service checks: a manual job the worker handed
                # to staff and nobody confirmed yet.
                confirmable=connector_class(job.store.kind).is_manual
                and job.state == JobState.WAITING,
                confirmed_by=str(counts.get("confirmed_by", "")),
                note=str(counts.get("note", "")),
            )
        )
    return rows
