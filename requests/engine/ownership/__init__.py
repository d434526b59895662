"""Whose record is it: which of the rows the finder reached are the person's alone, which are
shared with other people, and which are reference data (the model is documented at the top of
requests.engine.storemap).

`classify(connectors, identity)` runs the finder once over every store, keeping of each row only
its key and the values of its reference fields (and of the fields references point at), then:
- asks each store who else points at the rows that belong to the rows pointing at them (an
  address, through `follow: parent` owner references): one `referrers` query per reference and
  batch of values, answered by the store;
- decides, collection by collection and repeated until nothing changes (loops of references
  included), which rows are the person's alone: a row is, when every owner reference it holds
  points at a row that is the person's alone, and every row pointing at it through a parent
  owner reference is too; a person row is, when the person's identity matched it, or when an
  owner reference makes it belong to the person's rows (a profile to its user). Every test is a
  set membership of the person's own values, never a query per row.
The decision is made here, in Python, for every kind of store; no store is asked to decide it
(no join or `EXISTS` in the store yet). What it holds: the keys and watched reference values of
the rows of collections that cannot be decided as they arrive (several owner references, parent
references, mentions) and of the rows those decisions read, for the length of the walk; plus,
in `find_owned`, those rows themselves until they are classified and sent. A collection with a
single owner reference, entered only through it from the person's rows, holds nothing.

Rows of a collection with no key all have the key `()`: each row's identity is its content and
how many identical rows came before it (`RowIds`), so the person's two identical visits are two
rows; who points at a row through a keyless collection's parent reference is asked with `find`
(whole rows, named the same way) instead of `referrers`. Erasure still refuses such collections.

The answer (`Ownership`) says for each collection which keys are the person's alone, which are
shared and why (reason codes), which are reference data; what a shared row must withhold in an
access package (Art. 15(4)); and gives the counts the preview and the certificate show. It holds
the person's keys and reference values only, never a row's other data.

Modules: `walk` (classify, find_owned), `decide` (the person's alone rows, and why the others
are shared), `streaming` (the collections decided on arrival), `result` (Ownership: states,
reasons, counts, what is withheld), `rows` (a row's identity and what is kept of it), `model`
(the maps' ownership edges).
"""

from requests.engine.ownership.decide import REFERRER_BATCH, decide
from requests.engine.ownership.model import Model, OwnerRef, model_for
from requests.engine.ownership.result import (
    ALONE,
    MENTION,
    REASONS,
    REFERENCE,
    SHARED,
    SHARED_OWNER,
    SHARED_PARENT,
    WITHHELD,
    Ownership,
)
from requests.engine.ownership.rows import KEYLESS, Row, RowCollector, RowIds, norm, norm_key
from requests.engine.ownership.streaming import streaming_plan
from requests.engine.ownership.walk import classify, find_owned

__all__ = [
    "ALONE",
    "KEYLESS",
    "MENTION",
    "REASONS",
    "REFERENCE",
    "REFERRER_BATCH",
    "SHARED",
    "SHARED_OWNER",
    "SHARED_PARENT",
    "WITHHELD",
    "Model",
    "OwnerRef",
    "Ownership",
    "Row",
    "RowCollector",
    "RowIds",
    "classify",
    "decide",
    "find_owned",
    "model_for",
    "norm",
    "norm_key",
    "streaming_plan",
]
