"""The walks: `classify` (every row held, then decided) and `find_owned` (the access package's
walk, streaming what it can); a failed store other than the job's own is left out of both."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from requests.engine.graph import Node
from requests.engine.ownership.decide import decide
from requests.engine.ownership.model import Model, model_for
from requests.engine.ownership.result import SHARED, WITHHELD, Ownership
from requests.engine.ownership.rows import RowCollector
from requests.engine.ownership.streaming import streaming_plan
from requests.engine.store import Connector, PermanentStoreError, Record, TransientStoreError


def classify(
    connectors: Mapping[str, Connector],
    identity: Mapping[str, Any],
    *,
    phone_region: str | None = None,
    required: str | None = None,
) -> Ownership:
    """Find and classify the person's rows in every searchable store (see the package docstring).

    StoreError from a store that fails, naming it. With `required` (the store whose job this
    is), only that store's failure raises: another store that cannot be searched is left out of
    the walk (and of the answer), so one broken store never fails the other stores' jobs."""
    from requests.engine.finder import find_person

    searchable = {n: c for n, c in connectors.items() if c.searchable}
    maps = {n: c.store_map for n, c in searchable.items()}
    model = Model(maps)
    collector = RowCollector(model)
    result = find_person(
        searchable,
        identity,
        sink=collector.add,
        phone_region=phone_region,
        sample_size=0,
        skip_failed_stores=required is not None,
    )
    _forget_failed_stores(result, required, searchable, collector.rows)
    ownership = decide(model, collector.rows, searchable)
    ownership.searched = dict(searchable)
    return ownership


def find_owned(
    connectors: Mapping[str, Connector],
    identity: Mapping[str, Any],
    *,
    sink,
    phone_region: str | None = None,
    required: str | None = None,
) -> Ownership:
    """Every row of the person for an access package, classified: `sink(record)` gets each of
    the person's own rows in full, each shared row once with the other people's fields replaced
    by WITHHELD (Art. 15(4)), and each reference row the walk reached; rows reached only through
    other people's rows are left out. `required`: see `classify`.

    One walk. Where the map lets a row's ownership follow from the way the walk reached it (a
    collection with a single owner reference, entered only through it from rows that are the
    person's, such as a customer's invoices and their lines) the row is streamed to `sink` as it
    arrives, and nothing of it is kept. Rows of the other collections (several owners, parents,
    mentions) are held until the walk ends and ownership is decided (`decide`); so are the keys
    and reference values of the streamed rows those decisions need."""
    from requests.engine.finder import find_person, normalise_identity

    searchable = {n: c for n, c in connectors.items() if c.searchable}
    maps = {n: c.store_map for n, c in searchable.items()}
    model = model_for(maps)
    values, _ = normalise_identity(identity, phone_region=phone_region)
    streamed, collect, twins, planned_nodes = streaming_plan(maps, values)
    collector = RowCollector(model)
    held: dict[Node, dict[tuple, Record]] = defaultdict(dict)
    sent: dict[Node, set[tuple]] = {node: set() for node in twins}

    # Per record of every store: plain tuples, no Node built, on the hot path.
    fast = {(n.store, n.collection): (n in collect, sent.get(n)) for n in streamed}

    ids = collector.ids

    def on_record(record: Record) -> None:
        if record.via != "mention":
            how = fast.get((record.store, record.collection))
            if how is not None:
                if how[1] is not None:
                    nkey = ids.of(record)
                    how[1].add(nkey)
                    if how[0]:
                        collector.add(record, nkey)
                elif how[0]:
                    collector.add(record)
                sink(record)
                return
        nkey = ids.of(record)
        collector.add(record, nkey)
        held[Node(record.store, record.collection)].setdefault(nkey, record)

    # When every collection streams (a shop's customers, invoices and lines), the rows go
    # straight to `sink`: not even a wrapper call per row.
    result = find_person(
        searchable,
        identity,
        sink=sink if len(streamed) == len(planned_nodes) else on_record,
        phone_region=phone_region,
        sample_size=0,
        skip_failed_stores=required is not None,
    )
    _forget_failed_stores(result, required, searchable, collector.rows, held)
    ownership = decide(model, collector.rows, searchable)
    ownership.searched = dict(searchable)
    for node, records in held.items():
        states = ownership.state.get(node, {})
        already = sent.get(node, set())
        for nkey, record in records.items():
            state = states.get(nkey)
            if state is None or nkey in already:
                continue
            if state == SHARED:
                withheld = set(ownership.withheld(node, record.key, record.data, nkey=nkey))
                data = {k: WITHHELD if k in withheld else v for k, v in record.data.items()}
                record = Record(record.store, record.collection, record.key, data, record.via)
            sink(record)
    return ownership


def _forget_failed_stores(result, required: str | None, searchable: dict, *found: dict) -> None:
    """Raise the required store's own failure; drop every other failed store and its rows.

    Another store that cannot be searched must not fail this store's job (containment), but
    its rows cannot be judged either, so they leave the decision with the store itself.
    """
    if required in result.errors:
        transient = required in result.transient
        error = (TransientStoreError if transient else PermanentStoreError)(result.errors[required])
        error.store = required
        raise error
    for failed in result.errors:
        searchable.pop(failed, None)
        for rows in found:
            for node in [n for n in rows if n.store == failed]:
                del rows[node]
