"""What an erasure did in one store, per collection: counts and reasons, never values."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

COUNTS = ("deleted", "masked", "nullified", "held", "kept")

# StoreErasure.status values.
DONE = "done"  # the store's erasure is complete
PENDING = "pending"  # a webhook service erases in the background: poll its jobs
MANUAL = "manual"  # nothing was executed: a person must do it (staff task)


@dataclass
class CollectionErasure:
    """What happened to the person's records in one collection (counts, never values)."""

    deleted: int = 0
    masked: int = 0
    # Set to null: shared records whose references to the person's deleted records were
    # cleared (the records stay), and the person's records deleted after clearing other
    # records' references to them (fallback nullify).
    nullified: int = 0
    held: int = 0  # kept under a retention hold (Art. 17(3)); see `basis`
    kept: int = 0  # kept by the `keep` fallback: others' records still refer to them
    basis: str | None = None  # the legal basis of a hold
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.deleted + self.masked + self.nullified + self.held + self.kept

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "deleted": self.deleted,
            "masked": self.masked,
            "nullified": self.nullified,
            "held": self.held,
            "kept": self.kept,
            "notes": list(self.notes),
        }
        if self.basis:
            out["basis"] = self.basis
        return out


@dataclass
class StoreErasure:
    """The result of erasing the person in one store: JSON-ready, free of personal data."""

    store: str
    kind: str
    status: str = DONE
    collections: dict[str, CollectionErasure] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)  # webhook jobs to poll while pending
    statements: int = 0  # erasure statements (or calls) made in the store, for tests/benchmarks

    def collection(self, name: str) -> CollectionErasure:
        return self.collections.setdefault(name, CollectionErasure())

    def count(self, what: str) -> int:
        """Total of one count (`deleted`, `masked`, ...) over the store's collections."""
        return sum(getattr(c, what) for c in self.collections.values())

    @property
    def changed(self) -> int:
        """Records deleted, masked or nullified by this run (held and kept change nothing)."""
        return self.count("deleted") + self.count("masked") + self.count("nullified")

    def to_json(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "kind": self.kind,
            "status": self.status,
            "collections": {name: c.to_json() for name, c in self.collections.items()},
            "totals": {what: self.count(what) for what in COUNTS},
            "notes": list(self.notes),
            "jobs": list(self.jobs),
        }
