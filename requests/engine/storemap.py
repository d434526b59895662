"""Store maps: what a connected store holds and how the portal may find and erase it.

A map is YAML. Each collection (a table, a Redis key pattern, a folder, a downstream resource)
names its key, which fields hold which identity type, references to other collections (in this
store or another), the categories of data, what erasure does, and the Art. 15 information.

Example:

    collections:
      customer:
        key: [id]
        fields:
          email: {identity: email}
          phone: {identity: phone}
          first_name: {mask: fixed, mask_value: "erased"}
        erasure: {action: delete, fallback: mask}
        info: {purposes: [orders], legal_basis: contract, recipients: [carrier]}
      invoice:
        key: [id]
        fields:
          customer_id: {references: {collection: customer, field: id}}
        erasure: {action: hold, basis: "Tax law requires invoices for 10 years (Art. 17(3)(b))"}

Whose record is it (the ownership model). Erasure and access act on the rows that are the
person's, and only on those; a reader of a map should be able to see why a row is or is not.
- Each collection has a `role`:
  * `person`: its rows are people, found by identity fields (a customer, a user, an employee);
  * `owned`: its rows belong to people through references (orders, payments, messages);
  * `reference`: lookup and catalogue rows (products, categories, countries, plans). Reference
    data is never erased, masked or nulled, and the finder never walks onward from it: a product
    shown next to the person's order line does not lead to other customers' order lines.
  Left out, the role is `person` for a collection with identity fields and `owned` otherwise,
  which is what maps written before roles existed meant.
- Each reference has a `kind`:
  * `owner` (the default): the referring row belongs to the row it points at (an order's
    customer, a payment's payer, the booking a payment is for). With `follow: parent` it is the
    other way round: the row pointed at belongs to the referring rows (a customer's private
    address row belongs to the customers pointing at it);
  * `mention`: the row only mentions the row it points at (the employee who handled an order, a
    customer's support representative, a manager in `reports_to`). A mention never makes the
    row the mentioned person's.
- A row's owners are the person rows it reaches through owner references, its own and its
  parents', recursively (a person row with no owner reference owns itself). A row is the
  person's alone when every owner is one of the person's rows (those their identity matched). It
  is *shared* when another person owns it too (a payment by one customer on another's rental, a
  message between two users, an address a customer shares with a staff member), or when it only
  mentions the person.
- What follows from it (requests.engine.ownership decides it once per request, in the portal:
  by set membership over the keys and reference values the finder's walk reached, and one
  batched query per parent owner reference asking the store who else points at those rows;
  never one query per row. Rows of a collection with a single owner reference, reached through
  it from the person's rows, are decided as they arrive; the rows of the other collections
  (several owners, parents, mentions) are held, key and reference values only, until the walk
  ends. The rows of a collection with no key are told apart by their content):
  * erasure deletes or masks only rows that are the person's alone; a shared row is never
    deleted or masked: its references to the person's rows are set to null where the reference is
    `nullable`, otherwise it stays as it is and the person's row it points at takes the
    collection's `erasure.fallback` (mask, by default). The certificate counts the rows kept and
    says why, per collection;
  * access gives the person's own rows in full, and shared rows with the other people's identity
    values, data fields and references to their rows withheld (Art. 15(4)); shared rows and
    reference rows never lead onward.

References: a field that `references` another collection's field points at it (a foreign key).
By default the finder follows a reference from the record pointed at to the records that point at
it (`follow: children`: a customer's invoices belong to the customer). `follow: parent` also takes
the record pointed at (a private address the customer row points to); `both` does both; `none`
records the reference (erasure still orders deletes by it) without the finder crossing it, and
without it making any row anyone's.

`nullable: true` on a reference says erasure may set the field to null instead of deleting the
row first; it is also what breaks a cycle of references (see `requests.engine.graph`). A loop of
references none of which is nullable (a store managed by one of its own staff) is no error: erasure
masks the person's rows in the loop instead of deleting them, and `stores check` says so; where the
database can defer the loop's foreign keys to the commit (PostgreSQL, every one DEFERRABLE), it
deletes them instead (requests.engine.erasure.loops, `delete_loop`).

Identity fields are compared in normal form (`requests.engine.normalise`): emails trimmed and
case-insensitive, phones as E.164, names with whitespace collapsed and case folded. `match:
exact` on a field says the store already holds the normal form, so a plain comparison can use the
column's index.

Phone numbers a store holds in national form (`06 12 34 56 78`, `07700 900123`) are read in the
store's region: `phone_region: FR` at the top of the map for the whole store, or on one field
(`mobile: {identity: phone, phone_region: GB}`) where a store mixes countries by column. Without
either, the portal's `PORTAL_DEFAULT_PHONE_REGION` applies; numbers written with `+country` (or
`00country`) read the same in any region. The region is an ISO 3166 alpha-2 code known to the
`phonenumbers` library.

Identity types other than email, phone, name and account_id are declared in `identity_types`, so
a typo (`identity: emial`) is an error rather than a type nobody searches.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, field_validator

BUILTIN_IDENTITY_TYPES = ("email", "phone", "name", "account_id")


def phone_region_code(value: Any) -> str | None:
    """A region as `phonenumbers` names it (`fr` -> `FR`); ValueError for one it does not know."""
    if value is None:
        return None
    code = str(value).strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(
            f"phone_region {str(value)[:8]!r} is not a region known for phone numbers; "
            "use an ISO 3166 alpha-2 code such as FR, GB or DE"
        )
    return code


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Follow(StrEnum):
    CHILDREN = "children"
    PARENT = "parent"
    BOTH = "both"
    NONE = "none"

    @property
    def children(self) -> bool:
        return self in (Follow.CHILDREN, Follow.BOTH)

    @property
    def parent(self) -> bool:
        return self in (Follow.PARENT, Follow.BOTH)


class Role(StrEnum):
    """What a collection's rows are (see "Whose record is it" above)."""

    PERSON = "person"
    OWNED = "owned"
    REFERENCE = "reference"


class RefKind(StrEnum):
    """Whether a reference makes its row belong to the row it points at, or only mentions it."""

    OWNER = "owner"
    MENTION = "mention"


class Match(StrEnum):
    """How an identity field's stored values are compared with the person's normalised value."""

    AUTO = "auto"  # by identity type: case-insensitive emails and names, free-form phones
    EXACT = "exact"  # the store holds the normal form: compare as is (index-friendly)


class MaskStrategy(StrEnum):
    NULL = "null"
    FIXED = "fixed"
    RANDOM = "random"
    HASH = "hash"
    KEEP = "keep"


class EraseAction(StrEnum):
    DELETE = "delete"
    MASK = "mask"
    HOLD = "hold"


class Fallback(StrEnum):
    """What erasure does to the person's record when someone else's record still refers to it."""

    MASK = "mask"
    NULLIFY = "nullify"
    KEEP = "keep"


class Reference(Strict):
    collection: str
    field: str
    store: str | None = None  # None: the same store
    follow: Follow = Follow.CHILDREN
    inferred: bool = False  # proposed by discovery from names, not declared by the store
    nullable: bool = False  # erasure may set this field to null instead of deleting the row
    kind: RefKind = RefKind.OWNER  # owner: the row belongs to the row pointed at; mention: not


class FieldMap(Strict):
    identity: str | None = None  # an identity type: email, phone, name, account_id or custom
    match: Match = Match.AUTO
    references: Reference | None = None
    categories: list[str] = Field(default_factory=list)
    mask: MaskStrategy | None = None  # used when the collection is masked or held
    mask_value: str | None = None  # the text for the `fixed` strategy
    phone_region: str | None = None  # how this field's national numbers are read (the store's)

    _region = field_validator("phone_region", mode="before")(
        lambda cls, value: phone_region_code(value)
    )


class Erasure(Strict):
    action: EraseAction = EraseAction.DELETE
    fallback: Fallback = Fallback.MASK
    basis: str | None = None  # the legal basis of a hold (Art. 17(3)); required for `hold`


class Art15Info(Strict):
    purposes: list[str] = Field(default_factory=list)
    legal_basis: str | None = None
    recipients: list[str] = Field(default_factory=list)
    retention: str | None = None
    source: str | None = None


class Collection(Strict):
    name: str = ""  # filled from the mapping key
    location: str | None = None  # table name, key pattern or folder; defaults to `name`
    schema_name: str | None = Field(default=None, alias="schema")  # SQL schema, if any
    key: list[str] = Field(default_factory=list)
    fields: dict[str, FieldMap] = Field(default_factory=dict)
    categories: list[str] = Field(default_factory=list)
    erasure: Erasure = Field(default_factory=Erasure)
    info: Art15Info = Field(default_factory=Art15Info)
    options: dict[str, Any] = Field(default_factory=dict)  # kind-specific settings
    role: Role | None = None  # None: person with identity fields, else owned (see above)

    @field_validator("fields", mode="before")
    @classmethod
    def _empty_fields(cls, value: Any) -> Any:
        # `first_name:` with nothing under it lists a field with no special meaning.
        if isinstance(value, dict):
            return {name: {} if spec is None else spec for name, spec in value.items()}
        return value

    @property
    def physical_name(self) -> str:
        return self.location or self.name

    @property
    def effective_role(self) -> Role:
        if self.role is not None:
            return self.role
        return Role.PERSON if self.identity_fields() else Role.OWNED

    def identity_fields(self) -> dict[str, str]:
        return {name: f.identity for name, f in self.fields.items() if f.identity}

    def reference_fields(self) -> dict[str, Reference]:
        return {name: f.references for name, f in self.fields.items() if f.references}


class StoreMap(Strict):
    version: int = 1
    collections: dict[str, Collection] = Field(default_factory=dict)
    info: Art15Info = Field(default_factory=Art15Info)  # defaults for every collection
    owner: str | None = None  # manual stores: who handles the task
    system: str | None = None  # manual stores: the system's name
    identity_types: list[str] = Field(default_factory=list)  # custom identity types used here
    notes: list[str] = Field(default_factory=list)  # remarks for the reviewer (from discovery)
    phone_region: str | None = None  # how the store's national numbers are read (ISO 3166)

    _region = field_validator("phone_region", mode="before")(
        lambda cls, value: phone_region_code(value)
    )

    @field_validator("collections", mode="before")
    @classmethod
    def _empty_collections(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {name: {} if spec is None else spec for name, spec in value.items()}
        return value

    def model_post_init(self, __context: Any) -> None:
        for name, collection in self.collections.items():
            collection.name = name

    def phone_region_for(
        self, collection: Collection, field_name: str, default: str | None = None
    ) -> str | None:
        """How national numbers in this field are read: the field's region, the store's, or
        `default` (the portal's)."""
        spec = collection.fields.get(field_name)
        return (spec.phone_region if spec else None) or self.phone_region or default
