"""Discovery: a draft store map from a live store's own schema, for staff to review.

A connector describes its schema as `TableInfo`s (names, columns, keys, foreign keys and a bounded
sample of text values); `draft_map` turns that into a map:

- each table is a collection keyed by its primary key (else its first unique constraint);
- declared foreign keys become references; where none is declared, a column named after another
  table (`customer_id`, `CustomerId`, `customerid`, `id_customer` next to a `customer` or
  `customers` table with a one-column key of a compatible type) becomes a reference marked
  `inferred: true`;
- identity fields are proposed from column names (email, e_mail, mail; phone, mobile, telephone,
  tel, cell; full names) and from sampled content (most sampled values are email addresses, or
  phone numbers in international form);
- a nullable referencing column gives `nullable: true` (erasure may clear it);
- roles and reference kinds (the ownership model, requests.engine.storemap):
  * a table whose rows carry identity fields is `person`;
  * a reference is a `mention`, not ownership, when it points at a person table and: the row
    points at another row of its own table (employee.reports_to, comment.parent_id); or both
    tables describe people and the column does not name the table it points at
    (customer.support_rep_id -> employee: following it as ownership would hand a support rep the
    customers they serve); or it points at a supplier or vendor (a catalogue's supplier does not
    own the catalogue); or it points at staff (employee, staff, agent, rep, manager, or a column
    such as handled_by, approved_by) from a table that another reference already ties to a
    person (payment.staff_id next to payment.customer_id: the staff member handled it). A column
    that names its table (profile.user_id -> user, order.customer_id -> customer) is ownership;
  * a table with no identity fields that other tables point at, and whose own references lead
    to no person except through mentions, is `reference` data (products, categories,
    countries): never erased, never walked onward;
  * everything else is `owned`.
  Mentions keep `follow: children`: the person mentioned sees those rows as shared rows, with
  the other people's data withheld. Each decision is listed in the map's `notes` so a reviewer
  sees it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from requests.engine.normalise import parse_phone
from requests.engine.storemap import (
    Collection,
    FieldMap,
    Follow,
    Reference,
    RefKind,
    Role,
    StoreMap,
)

Progress = Callable[[int, int, str], None]  # (tables done, tables in all, table just read)

# Rows sampled per table to recognise identity values by content: enough for a clear majority,
# few enough that discovery of a schema with thousands of tables stays quick.
SAMPLE_ROWS = 100
# Share of non-empty sampled values that must look like emails (or phones) to propose the column.
CONTENT_THRESHOLD = 0.8
MIN_SAMPLES = 3

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass
class ColumnInfo:
    name: str
    family: str  # text, integer, number, uuid, time, other
    nullable: bool = True
    samples: list[str] = field(default_factory=list)


@dataclass
class ForeignKeyInfo:
    columns: list[str]
    table: str
    referred_columns: list[str]
    schema: str | None = None


@dataclass
class TableInfo:
    name: str
    columns: list[ColumnInfo]
    primary_key: list[str] = field(default_factory=list)
    foreign_keys: list[ForeignKeyInfo] = field(default_factory=list)
    unique: list[list[str]] = field(default_factory=list)
    schema: str | None = None  # None: the store's default schema

    def column(self, name: str) -> ColumnInfo | None:
        return next((c for c in self.columns if c.name == name), None)


def discover(connector: Any, *, progress: Progress | None = None) -> StoreMap:
    """A draft map of the connector's store; `progress(done, total, table)` after each table.

    Raises NotImplementedError for kinds without a schema, StoreError when the store fails.
    """
    return connector.describe(progress=progress)


def words(name: str) -> list[str]:
    """Words of a name: `SupportRepId` -> support, rep, id; `Order Lines` -> order, lines."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name)
    return [w for w in re.split(r"[^0-9a-zA-Z]+", spaced.lower()) if w]


_EMAIL_WORDS = {"email", "mail", "emailaddress", "mailaddress"}
_PHONE_WORDS = {"phone", "mobile", "telephone", "tel", "cell", "cellphone", "msisdn", "phonenumber"}
_PHONE_WORDS |= {"mobilephone", "telephonenumber", "gsm"}
_NUMBER_SUFFIX = {"number", "no", "num", "nr"}
_FULL_NAME = {"full_name", "fullname", "display_name", "customer_name", "contact_name"}
_FULL_NAME |= {"person_name", "client_name", "member_name", "holder_name"}
_CATEGORIES = (
    (
        {"first", "given", "last", "family", "surname", "firstname", "lastname", "forename"},
        "user.name",
    ),
    (
        {"address", "street", "city", "state", "country", "postal", "postcode", "zip"},
        "user.contact.address",
    ),
    ({"fax"}, "user.contact.fax"),
    ({"birth", "birthdate", "dob", "birthday"}, "user.demographic.date_of_birth"),
    ({"company", "employer"}, "user.workplace"),
)


def identity_from_name(column: ColumnInfo) -> str | None:
    tokens = words(column.name)
    if not tokens:
        return None
    trimmed = tokens[:]
    while len(trimmed) > 1 and trimmed[-1] in ("address", "addr"):
        trimmed.pop()
    if column.family == "text" and (trimmed[-1] in _EMAIL_WORDS or trimmed[-2:] == ["e", "mail"]):
        return "email"
    trimmed = tokens[:]
    while len(trimmed) > 1 and trimmed[-1] in _NUMBER_SUFFIX:
        trimmed.pop()
    if column.family in ("text", "integer") and trimmed[-1] in _PHONE_WORDS:
        return "phone"
    if column.family == "text" and "_".join(tokens) in _FULL_NAME:
        return "name"
    return None


def identity_from_content(column: ColumnInfo) -> str | None:
    if column.family != "text" or "fax" in words(column.name):
        return None
    values = [v.strip() for v in column.samples if v and v.strip()]
    if len(values) < MIN_SAMPLES:
        return None
    if sum(bool(EMAIL_RE.match(v)) for v in values) >= CONTENT_THRESHOLD * len(values):
        return "email"
    if sum(_international_phone(v) for v in values) >= CONTENT_THRESHOLD * len(values):
        return "phone"
    return None


def _international_phone(value: str) -> bool:
    # Only numbers written with their country code: without one, postal codes and order numbers
    # would pass for phones.
    if not value.startswith(("+", "00")) or not re.fullmatch(r"[0-9+()./\s-]{7,25}", value):
        return False
    try:
        parse_phone(value, None)
    except ValueError:
        return False
    return True


def categories_from_name(name: str) -> list[str]:
    tokens = set(words(name))
    return [category for keys, category in _CATEGORIES if tokens & keys]


def _stem(column: str) -> str | None:
    """The table a column seems to name: `customer_id` -> customer, `id_customer` -> customer."""
    tokens = words(column)
    if len(tokens) >= 2 and tokens[-1] == "id":
        return "_".join(tokens[:-1])
    if len(tokens) >= 2 and tokens[0] == "id":
        return "_".join(tokens[1:])
    if len(tokens) == 1 and tokens[0].endswith("id") and len(tokens[0]) > 3:
        return tokens[0][:-2]
    return None


def _table_forms(stem: str) -> set[str]:
    flat = stem.replace("_", "")
    forms = {flat, flat + "s", flat + "es"}
    if flat.endswith("y"):
        forms.add(flat[:-1] + "ies")
    return forms


def _flat(name: str) -> str:
    return "".join(words(name))


def names_table(column: str, table: str) -> bool:
    stem = _stem(column)
    if not stem:
        return False
    return _flat(table) in _table_forms(stem)


def _compatible(a: str, b: str) -> bool:
    return a == b and a in ("integer", "text", "uuid")


def draft_map(tables: Iterable[TableInfo]) -> StoreMap:
    tables = list(tables)
    notes: list[str] = []
    names = {(t.schema, t.name): _collection_name(t) for t in tables}
    by_key = {(t.schema, t.name): t for t in tables}

    identities: dict[str, dict[str, str]] = {}
    for table in tables:
        found: dict[str, str] = {}
        for column in table.columns:
            kind = identity_from_name(column) or identity_from_content(column)
            if kind:
                found[column.name] = kind
        if found:
            # A bare `name` column is a person's name only in a table of people.
            for column in table.columns:
                if column.family == "text" and words(column.name) == ["name"]:
                    found.setdefault(column.name, "name")
        identities[names[(table.schema, table.name)]] = found
    person_tables = {name for name, found in identities.items() if found}

    collections: dict[str, Collection] = {}
    for table in tables:
        cname = names[(table.schema, table.name)]
        key = list(table.primary_key)
        if not key:
            key = next((list(u) for u in table.unique if u), [])
            if key:
                notes.append(f"{cname}: no primary key; keyed by its unique columns {key}")
            else:
                notes.append(f"{cname}: no primary key or unique constraint; name its key")
        fields: dict[str, FieldMap] = {}
        for column in table.columns:
            spec = FieldMap(identity=identities[cname].get(column.name))
            spec.categories = _field_categories(column.name, spec.identity)
            if spec.identity or spec.categories:
                fields[column.name] = spec

        declared = set()
        for fk in table.foreign_keys:
            target_key = (fk.schema if fk.schema is not None else table.schema, fk.table)
            target = by_key.get(target_key) or by_key.get((None, fk.table))
            if target is None:
                notes.append(f"{cname}: foreign key to {fk.table} outside the discovered schema")
                continue
            if len(fk.columns) != 1:
                cols = ", ".join(fk.columns)
                notes.append(
                    f"{cname}: composite foreign key ({cols}) -> {fk.table} not mapped; "
                    "a reference names one field"
                )
                continue
            fk_column = table.column(fk.columns[0])
            assert fk_column is not None  # a foreign key's columns are its own table's
            declared.add(fk.columns[0])
            tname = names[(target.schema, target.name)]
            _add_reference(
                fields, fk_column, tname, fk.referred_columns[0], cname, person_tables, notes, False
            )

        for column in table.columns:
            if column.name in declared or (
                column.name in fields and fields[column.name].references
            ):
                continue
            target, target_field = _inferred_target(table, column, tables)
            if target is None:
                continue
            tname = names[(target.schema, target.name)]
            _add_reference(fields, column, tname, target_field, cname, person_tables, notes, True)

        collections[cname] = Collection(
            location=table.name if cname != table.name else None,
            schema=table.schema,
            key=key,
            fields=fields,
        )
    _draft_staff_mentions(collections, person_tables, notes)
    _draft_roles(collections, person_tables, notes)
    return StoreMap(collections=collections, notes=notes)


def _personal_details(name: str, collection: Collection) -> bool:
    """A table of personal details (addresses) rather than a catalogue: named so, or with two
    or more fields of personal data categories (a city table's one `city` column is not)."""
    if {"address", "addresses"} & set(words(name.split(".")[-1])):
        return True
    personal = [
        f for f in collection.fields.values() if any(c.startswith("user.") for c in f.categories)
    ]
    return len(personal) >= 2


_STAFF_WORDS = {"employee", "employees", "staff", "agent", "agents", "rep", "representative"}
_STAFF_WORDS |= {"salesperson", "manager", "handler", "approver", "reviewer", "operator"}
_STAFF_WORDS |= {"assignee", "clerk", "cashier", "handled", "approved", "processed", "assigned"}
_SUPPLIER_WORDS = {"supplier", "suppliers", "vendor", "vendors", "manufacturer", "manufacturers"}


def _draft_staff_mentions(collections, person_tables, notes) -> None:
    """References to staff from rows another reference ties to a person are mentions."""
    for cname, collection in collections.items():
        to_people = [
            (fname, ref)
            for fname, ref in collection.reference_fields().items()
            if ref.collection in person_tables and ref.kind == RefKind.OWNER
        ]
        if len(to_people) < 2:
            continue
        staff = [
            (fname, ref)
            for fname, ref in to_people
            if (set(words(fname)) | set(words(ref.collection.split(".")[-1]))) & _STAFF_WORDS
        ]
        if len(staff) == len(to_people):
            continue  # nothing else owns the row: leave it to the reviewer
        for fname, ref in staff:
            ref.kind = RefKind.MENTION
            notes.append(
                f"{cname}.{fname} -> {ref.collection}: a mention (a member of staff who handled "
                "a row that belongs to someone else), not ownership"
            )


def _draft_roles(collections, person_tables, notes) -> None:
    referenced = {
        ref.collection
        for collection in collections.values()
        for ref in collection.reference_fields().values()
    }
    candidates = {n for n in collections if n not in person_tables and n in referenced}

    def leading_to_no_person(reference: set[str]) -> set[str]:
        reference = set(reference)
        changed = True
        while changed:
            changed = False
            for name in sorted(reference):
                for ref in collections[name].reference_fields().values():
                    if ref.kind == RefKind.MENTION or ref.collection == name:
                        continue
                    if ref.collection in person_tables or ref.collection not in reference:
                        reference.discard(name)
                        changed = True
                        break
        return reference

    reference = leading_to_no_person(candidates)
    # An address row holds personal data and points at no person: it belongs to the rows that
    # point at it (a customer's own, or one shared by a customer and a member of staff).
    details = {n for n in reference if _personal_details(n, collections[n])}
    reference = leading_to_no_person(reference - details)
    for name in sorted(details):
        for other, collection in collections.items():
            for fname, ref in collection.reference_fields().items():
                if ref.collection != name or other == name or other in reference:
                    continue
                ref.follow = Follow.PARENT
                notes.append(
                    f"{other}.{fname} -> {name}: follow parent (the row pointed at holds "
                    "personal details and belongs to the rows pointing at it)"
                )
    for name, collection in collections.items():
        if name in person_tables:
            collection.role = Role.PERSON
        elif name in reference:
            collection.role = Role.REFERENCE
            notes.append(
                f"{name}: reference data (other tables point at it and it leads to no "
                "person): never erased, never walked onward"
            )
        else:
            collection.role = Role.OWNED


def _collection_name(table: TableInfo) -> str:
    return f"{table.schema}.{table.name}" if table.schema else table.name


def _field_categories(column: str, identity: str | None) -> list[str]:
    if identity == "email":
        return ["user.contact.email"]
    if identity == "phone":
        return ["user.contact.phone_number"]
    if identity == "name":
        return ["user.name"]
    return categories_from_name(column)


def _inferred_target(
    table: TableInfo, column: ColumnInfo, tables: list[TableInfo]
) -> tuple[TableInfo | None, str]:
    stem = _stem(column.name)
    if not stem:
        return None, ""
    forms = _table_forms(stem)
    candidates = [t for t in tables if _flat(t.name) in forms]
    # Prefer the same schema when several schemas hold a table of that name.
    candidates.sort(key=lambda t: t.schema != table.schema)
    for target in candidates:
        if len(target.primary_key) != 1:
            continue
        target_field = target.primary_key[0]
        if target is table and column.name == target_field:
            continue  # the table's own key
        referred = target.column(target_field)
        if referred is None or not _compatible(column.family, referred.family):
            continue
        return target, target_field
    return None, ""


def _add_reference(fields, column, target, target_field, cname, person_tables, notes, inferred):
    kind = RefKind.OWNER
    target_table = target.split(".")[-1]
    if target == cname:
        kind = RefKind.MENTION
        notes.append(
            f"{cname}.{column.name} -> {target}: a mention (a row pointing at another row of "
            "its own table belongs to its own subject)"
        )
    elif (
        cname in person_tables
        and target in person_tables
        and not names_table(column.name, target_table)
    ):
        kind = RefKind.MENTION
        notes.append(
            f"{cname}.{column.name} -> {target}: a mention (both tables describe people and "
            "the column does not name the table: a relationship between two people, not "
            "ownership)"
        )
    elif (
        target in person_tables
        and not names_table(column.name, target_table)
        and set(words(column.name)) & _STAFF_WORDS
    ):
        kind = RefKind.MENTION
        notes.append(
            f"{cname}.{column.name} -> {target}: a mention (a member of staff named by their "
            "function, such as a manager, does not own the row)"
        )
    elif target in person_tables and (
        (set(words(column.name)) | set(words(target_table))) & _SUPPLIER_WORDS
    ):
        kind = RefKind.MENTION
        notes.append(
            f"{cname}.{column.name} -> {target}: a mention (a supplier's contact does not own "
            "the rows that name the supplier)"
        )
    if inferred:
        notes.append(f"{cname}.{column.name} -> {target}.{target_field}: inferred from its name")
    spec = fields.get(column.name) or FieldMap()
    spec.references = Reference(
        collection=target,
        field=target_field,
        follow=Follow.CHILDREN,
        inferred=inferred,
        nullable=column.nullable,
        kind=kind,
    )
    fields[column.name] = spec
