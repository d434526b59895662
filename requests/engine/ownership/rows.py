"""The rows the walk reached, as ownership sees them: one form for reference values, each row's
identity (keyless rows too), and the collector that keeps only a row's key and watched fields."""

from __future__ import annotations

import decimal
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from requests.engine.graph import Node
from requests.engine.ownership.model import Model
from requests.engine.store import Record


def norm(value: Any) -> Any:
    """One form for a reference value, whichever driver or store it came from (42 and "42")."""
    kind = type(value)
    if kind is str:
        return value
    if kind is int:
        return str(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | uuid.UUID | decimal.Decimal):
        return str(value)
    return value


def norm_key(key: Sequence[Any]) -> tuple:
    if len(key) == 1:
        return (norm(key[0]),)
    return tuple(norm(v) for v in key)


@dataclass(slots=True)
class Row:
    key: tuple
    values: dict[str, Any]
    matched: bool = False  # the person's identity matched it
    owned_path: bool = False  # reached through an owner reference or identity (not only mention)


# The first item of a keyless row's identity (see RowIds): no key value has this type.
KEYLESS = ("row",)


class RowIds:
    """Each row's identity in the ownership decisions: its normalised key, or, in a collection
    with no key (every record's key is `()`), its content and how many rows with the same
    content came before it by the same way (a mention or not). The finder sends each row of a
    keyless collection once per way it reaches it (it tells rows of a collection reached several
    ways apart by content, see finder._row_fingerprint), so two identical visits are two rows,
    and a row reached both through its owner and through a mention is one."""

    def __init__(self) -> None:
        self._repeats: dict[tuple, int] = {}

    def of(self, record: Record) -> tuple:
        key = record.key
        if key:
            return (norm(key[0]),) if len(key) == 1 else norm_key(key)
        content = tuple(sorted((k, repr(v)) for k, v in record.data.items()))
        mark = (record.store, record.collection, record.via == "mention", content)
        seen = self._repeats.get(mark, 0)
        self._repeats[mark] = seen + 1
        return (KEYLESS, content, seen)


class RowCollector:
    def __init__(self, model: Model, ids: RowIds | None = None) -> None:
        # Only collections that received a row are in `rows` (a walk that streamed everything
        # leaves it empty, and `decide` has nothing to do).
        self.rows: dict[Node, dict[tuple, Row]] = defaultdict(dict)
        self._kept = model.kept_fields
        self.ids = ids or RowIds()
        # (store, collection) -> (its rows, the fields kept): one look-up per record streamed.
        self._targets: dict[tuple[str, str], tuple[dict[tuple, Row], tuple[str, ...]]] = {}

    def add(self, record: Record, nkey: tuple | None = None) -> None:
        """Keep what ownership needs of `record`; `nkey`: its identity, where the caller took
        it from `self.ids` already (each arrival of a keyless row must be counted once)."""
        target = self._targets.get((record.store, record.collection))
        if target is None:
            where = (record.store, record.collection)
            node, fields = self._kept.get(where) or (Node(*where), ())
            target = self._targets[where] = (self.rows[node], fields)
        rows, fields = target
        key = record.key
        if nkey is None:
            nkey = (norm(key[0]),) if len(key) == 1 else self.ids.of(record)
        row = rows.get(nkey)
        if row is None:
            data = record.data
            row = rows[nkey] = Row(tuple(key), {f: data.get(f) for f in fields})
        via = record.via
        if via == "identity":
            row.matched = True
        if via != "mention":
            row.owned_path = True
