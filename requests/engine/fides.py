"""Import of a Fides dataset (YAML) as a starting store map.

A Fides dataset lists `collections`, each with `fields`; a field's `fides_meta` (older files:
`fidesops_meta`) may say `identity: <type>`, `primary_key: true`, and `references:` to other
fields (`{dataset, field: "collection.field", direction: from | to}`). `data_categories` are kept
as categories.

How references translate. In Fides, `direction: from` on field F means the referenced field is
processed first and its values are looked up in F; `to` means F's values are looked up in the
referenced field; no direction means either way. In a portal map a reference sits on one field
and `follow` says which way the finder crosses it, so:
- `from` becomes a reference on F with `follow: children` (orders.customer_id from customer.id);
- `to` becomes a reference on F with `follow: parent` (customer.address_id to address.id);
- no direction (either way) says nothing of whose row is whose, and walked both ways as
  ownership it would make a customer belong to their address and so to everyone living there:
  it becomes `children` when the row pointed at leads to a person (an order's customer, an order
  line's order) and `parent` otherwise (an address, a product); each is noted. References to
  another dataset without a direction stay `both`.
When a collection's own primary key declares a reference to a non-key field of another collection
of the same dataset (customer.id `to` orders.customer_id), the reference is written on that other
field instead (orders.customer_id -> customer.id, `follow: children`): the same walk, and erasure
then deletes the orders before the customer, as their foreign key requires.

Identity types: `email` is email, `phone_number` is phone, anything else is kept as a custom type
(declared under `identity_types`). References to other datasets become cross-store references to
the store of the same name, or to the name given in `store_names`.

Roles: a collection with identity fields is `person`; one whose data categories are all
`system.*` (nothing personal: a catalogue, a lookup table) and whose references lead to no
person is `reference` data, never erased and never walked onward, as Fides leaves it alone; the
rest are `owned`. A reference between two `person` collections (a service request found by the
requester's email, pointing at the employee who handled it) is a `mention`: the row is its own
subject's, and the person it points at sees it as a shared row. `fill_from_live` completes
an imported map from the live store's discovered one: keys where the dataset declares no primary
key (Fides erases such collections by their references; the portal needs a key), and `nullable`
references where the column allows null (`manage.py stores import-fides FILE --store NAME`).

Not carried over, and listed in the map's `notes`: nested fields (document stores), a field's
second and later references, and erasure behaviour (Fides masks by policy; every imported
collection starts with the portal's default, delete, for staff to review).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

from requests.engine.mapfile import (
    MapError,
    MapProblem,
    Path,
    check_store_map,
    line_of,
    parse_yaml,
)
from requests.engine.storemap import (
    BUILTIN_IDENTITY_TYPES,
    Collection,
    EraseAction,
    Erasure,
    FieldMap,
    Follow,
    Reference,
    RefKind,
    Role,
    StoreMap,
)

_NO_KEY = "{name}: no primary_key in the dataset; name its key"
IDENTITY_TYPES = {"email": "email", "phone_number": "phone", "phone": "phone"}
MIRROR = {Follow.CHILDREN: Follow.PARENT, Follow.PARENT: Follow.CHILDREN, Follow.BOTH: Follow.BOTH}


def import_fides_dataset(
    yaml_text: str,
    *,
    dataset: str | None = None,
    store_names: Mapping[str, str] | None = None,
) -> StoreMap:
    """A store map drafted from a Fides dataset file. Raises MapError naming the line of each
    problem. `dataset`: the fides_key to import when the file holds several."""
    data, lines = parse_yaml(yaml_text)
    importer = _Importer(lines, store_names or {})
    return importer.run(data, dataset)


class _Importer:
    def __init__(self, lines, store_names: Mapping[str, str]) -> None:
        self.lines = lines
        self.store_names = store_names
        self.problems: list[MapProblem] = []
        self.notes: list[str] = []
        # (collection, field) -> path of the Fides reference it came from, for messages.
        self.origins: dict[tuple[str, str], Path] = {}

    def problem(self, path: Path, message: str) -> None:
        self.problems.append(MapProblem(line_of(self.lines, path), _dotted(path), message))

    def refuse(self, path: Path, message: str) -> NoReturn:
        """A problem that stops the import here: raised with every problem found so far."""
        self.problem(path, message)
        raise MapError(self.problems)

    def fail_if_problems(self) -> None:
        if self.problems:
            raise MapError(self.problems)

    def run(self, data: Any, wanted: str | None) -> StoreMap:
        datasets = data.get("dataset") if isinstance(data, dict) else None
        if isinstance(datasets, dict):
            datasets = [datasets]
        if not isinstance(datasets, list) or not datasets:
            self.refuse((), "a Fides dataset file has a `dataset:` list")
        keys = [d.get("fides_key") if isinstance(d, dict) else None for d in datasets]
        if wanted is not None:
            if wanted not in keys:
                self.refuse(("dataset",), f"no dataset {wanted!r} here (found: {keys})")
            index = keys.index(wanted)
        elif len(datasets) > 1:
            self.refuse(("dataset",), f"several datasets ({keys}); say which to import")
        else:
            index = 0
        store_map = self.dataset(datasets[index], ("dataset", index))
        self.fail_if_problems()
        return store_map

    def dataset(self, spec: Any, path: Path) -> StoreMap:
        if not isinstance(spec, dict):
            self.problem(path, "a dataset is a mapping")
            return StoreMap()
        key = spec.get("fides_key")
        if not isinstance(key, str) or not key:
            self.problem(path, "the dataset needs a `fides_key`")
        collections_spec = spec.get("collections")
        if not isinstance(collections_spec, list):
            self.problem(path, "the dataset needs a `collections` list")
            return StoreMap()
        schema = _namespace_schema(spec)

        # First pass: collections, keys, identities and categories.
        collections: dict[str, Collection] = {}
        field_specs: dict[str, list[tuple[Path, dict]]] = {}
        custom_types: set[str] = set()
        for i, cspec in enumerate(collections_spec):
            cpath = (*path, "collections", i)
            if not isinstance(cspec, dict) or not isinstance(cspec.get("name"), str):
                self.problem(cpath, "a collection needs a `name`")
                continue
            cname = cspec["name"]
            if cname in collections:
                self.problem((*cpath, "name"), f"collection {cname!r} is listed twice")
                continue
            collection = Collection(
                schema=schema,
                categories=_categories(cspec.get("data_categories")),
                erasure=self.erasure(cspec),
            )
            field_specs[cname] = []
            fields_spec = cspec.get("fields") or []
            if not isinstance(fields_spec, list):
                self.problem((*cpath, "fields"), "fields is a list")
                fields_spec = []
            for j, fspec in enumerate(fields_spec):
                fpath = (*cpath, "fields", j)
                if not isinstance(fspec, dict) or not isinstance(fspec.get("name"), str):
                    self.problem(fpath, "a field needs a `name`")
                    continue
                fname = fspec["name"]
                if fspec.get("fields"):
                    self.notes.append(
                        f"{cname}.{fname}: nested fields (a document store) are not imported"
                    )
                meta = _meta(fspec)
                spec_out = FieldMap(categories=_categories(fspec.get("data_categories")))
                identity = meta.get("identity")
                if identity and not isinstance(identity, str):
                    self.problem((*fpath, _meta_key(fspec), "identity"), "identity is a type name")
                elif identity:
                    kind = IDENTITY_TYPES.get(str(identity), str(identity))
                    spec_out.identity = kind
                    if kind not in BUILTIN_IDENTITY_TYPES:
                        custom_types.add(kind)
                if meta.get("primary_key"):
                    collection.key.append(fname)
                collection.fields[fname] = spec_out
                field_specs[cname].append((fpath, fspec))
            if not collection.key:
                self.notes.append(_NO_KEY.format(name=cname))
            collections[cname] = collection

        # Second pass: references, now that every collection's key is known.
        for cname, entries in field_specs.items():
            for fpath, fspec in entries:
                refs = _meta(fspec).get("references") or []
                if not isinstance(refs, list):
                    self.problem((*fpath, "fides_meta", "references"), "references is a list")
                    continue
                for k, ref in enumerate(refs):
                    rpath = (*fpath, _meta_key(fspec), "references", k)
                    self.reference(collections, key, cname, fspec["name"], ref, rpath)

        for collection in collections.values():
            collection.role = _role_from_categories(collection)
        self.settle_undirected(collections)
        _own_what_leads_to_people(collections)
        self.mentions_between_people(collections)
        for cname, collection in collections.items():
            if collection.role == Role.REFERENCE:
                self.notes.append(
                    f"{cname}: reference data (every category is system.*): never erased, "
                    "never walked onward"
                )
        store_map = StoreMap(
            collections=collections,
            identity_types=sorted(custom_types),
            notes=[
                "imported from Fides: review each collection's erasure (Fides masks fields by "
                "policy; the portal's default is to delete the record)",
                *self.notes,
            ],
        )
        for found in check_store_map(store_map):
            # Point at the Fides reference the portal reference came from.
            origin = self._origin_of(found.place)
            self.problems.append(
                MapProblem(
                    line_of(self.lines, origin) if origin else None, found.place, found.message
                )
            )
        return store_map

    def settle_undirected(self, collections: dict[str, Collection]) -> None:
        """A reference with no direction (Fides walks it either way) says nothing of whose row
        is whose, and walked both ways as ownership it would make a customer belong to an
        address and so to everyone else living there. It is settled by the shape: the row
        belongs to the row it points at when that row leads to a person (an order's customer,
        an order line's order); otherwise the row pointed at, which leads to no one (an address,
        a product), belongs to the rows pointing at it, or is shown beside them."""
        undirected = [
            (cname, fname, ref)
            for cname, collection in collections.items()
            for fname, ref in collection.reference_fields().items()
            if ref.follow == Follow.BOTH and not ref.store and ref.collection in collections
        ]
        if not undirected:
            return
        leads = {n for n, c in collections.items() if c.role == Role.PERSON}
        changed = True
        while changed:
            changed = False
            for cname, collection in collections.items():
                if cname in leads:
                    continue
                if any(
                    ref.follow.children and not ref.store and ref.collection in leads
                    for ref in collection.reference_fields().values()
                ):
                    leads.add(cname)
                    changed = True
        for cname, fname, ref in undirected:
            if ref.collection in leads:
                ref.follow = Follow.CHILDREN
                how = f"its rows belong to the {ref.collection} rows they point at"
            else:
                ref.follow = Follow.PARENT
                how = f"the {ref.collection} rows it points at lead to no person"
            self.notes.append(
                f"{cname}.{fname} -> {ref.collection}: no direction in the dataset; follow "
                f"{ref.follow.value} ({how})"
            )

    def mentions_between_people(self, collections: dict[str, Collection]) -> None:
        """A reference from rows that are people found by their own identity (a service request
        found by the requester's email) to another collection of people (the employee who
        handled it) only mentions them: Fides reaches the row from either side, but the row is
        its own subject's, and following it as ownership would erase or hand over other
        people's rows to the person mentioned."""
        for cname, collection in collections.items():
            if collection.role != Role.PERSON:
                continue
            for fname, ref in collection.reference_fields().items():
                target = collections.get(ref.collection)
                if ref.store or target is None:
                    continue
                if target.role == Role.PERSON and ref.kind == RefKind.OWNER:
                    ref.kind = RefKind.MENTION
                    self.notes.append(
                        f"{cname}.{fname} -> {ref.collection}: a mention (both collections hold "
                        "people found by their own identity); say `kind: owner` if the rows "
                        "belong to the row pointed at"
                    )

    def erasure(self, cspec: dict) -> Erasure:
        override = _meta(cspec).get("masking_strategy_override")
        if isinstance(override, dict) and override.get("strategy") == "delete":
            return Erasure(action=EraseAction.DELETE)
        return Erasure()

    def reference(self, collections, own_key, cname, fname, ref, rpath) -> None:
        if not isinstance(ref, dict) or not isinstance(ref.get("field"), str):
            self.problem(rpath, "a reference needs `field: collection.field`")
            return
        target_collection, _, target_field = ref["field"].partition(".")
        if not target_field:
            self.problem((*rpath, "field"), "write the field as `collection.field`")
            return
        direction = ref.get("direction")
        follow = {"from": Follow.CHILDREN, "to": Follow.PARENT, None: Follow.BOTH}.get(direction)
        if follow is None:
            self.problem((*rpath, "direction"), "direction is `from`, `to`, or left out")
            return
        ref_dataset = ref.get("dataset") or own_key
        if ref_dataset != own_key:
            store = self.store_names.get(ref_dataset, ref_dataset)
            self.place(
                collections,
                cname,
                fname,
                Reference(
                    store=store, collection=target_collection, field=target_field, follow=follow
                ),
                rpath,
            )
            return
        target = collections.get(target_collection)
        if target is None:
            self.problem((*rpath, "field"), f"unknown collection {target_collection!r}")
            return
        if target_field not in target.fields:
            head = target_field.split(".")[0]
            if head != target_field and head in target.fields:
                self.notes.append(
                    f"{cname}.{fname}: a reference to the nested field {ref['field']} is not "
                    "imported (nested fields are not)"
                )
                return
            self.problem(
                (*rpath, "field"), f"collection {target_collection!r} has no field {target_field!r}"
            )
            return
        own = collections[cname]
        if own.key == [fname] and target.key != [target_field]:
            # Declared on the referenced side: write it on the referencing field.
            self.place(
                collections,
                target_collection,
                target_field,
                Reference(collection=cname, field=fname, follow=MIRROR[follow]),
                rpath,
            )
            return
        self.place(
            collections,
            cname,
            fname,
            Reference(collection=target_collection, field=target_field, follow=follow),
            rpath,
        )

    def place(self, collections, cname, fname, reference: Reference, rpath: Path) -> None:
        spec = collections[cname].fields.setdefault(fname, FieldMap())
        if spec.references is not None:
            same = (spec.references.collection, spec.references.field, spec.references.store)
            if same == (reference.collection, reference.field, reference.store):
                if spec.references.follow != reference.follow:
                    spec.references.follow = Follow.BOTH
                return
            self.notes.append(
                f"{cname}.{fname}: a second reference (to {reference.collection}."
                f"{reference.field}) is not imported; a field references one field"
            )
            return
        spec.references = reference
        self.origins[(cname, fname)] = rpath

    def _origin_of(self, place: str) -> Path | None:
        parts = place.split(".")
        if len(parts) >= 4 and parts[0] == "collections" and parts[2] == "fields":
            return self.origins.get((parts[1], parts[3]))
        return None


def _role_from_categories(collection: Collection) -> Role:
    """Fides leaves alone a collection none of whose fields is personal: reference data here."""
    if collection.identity_fields():
        return Role.PERSON
    categories = list(collection.categories)
    for spec in collection.fields.values():
        categories.extend(spec.categories)
    if categories and all(c.startswith("system.") for c in categories):
        return Role.REFERENCE
    return Role.OWNED


def _own_what_leads_to_people(collections: dict[str, Collection]) -> None:
    """A collection with only system.* categories whose references lead to the person (order
    lines pointing at orders) is walked and erased with them: owned, not reference data."""
    changed = True
    while changed:
        changed = False
        for collection in collections.values():
            if collection.role != Role.REFERENCE:
                continue
            for ref in collection.reference_fields().values():
                target = collections.get(ref.collection)
                if ref.store or target is None or target.role == Role.REFERENCE:
                    continue
                if ref.follow.children:
                    collection.role = Role.OWNED
                    changed = True
                    break


def fill_from_live(imported: StoreMap, discovered: StoreMap) -> StoreMap:
    """The imported map completed from the live store's discovered one: a collection the
    dataset gives no primary key gets the store's key, and a reference whose column allows null
    is marked `nullable` (Fides does not say). Each change is noted; nothing else is touched."""
    result = imported.model_copy(deep=True)
    live = {}
    for name, collection in discovered.collections.items():
        live[collection.physical_name.lower()] = collection
        live[name.lower()] = collection
    for name, collection in result.collections.items():
        found = live.get(collection.physical_name.lower()) or live.get(name.lower())
        if found is None:
            result.notes.append(f"{name}: not found in the live store")
            continue
        if not collection.key and found.key:
            collection.key = list(found.key)
            result.notes.remove(_NO_KEY.format(name=name))
            result.notes.append(f"{name}: keyed by {found.key}, the live store's primary key")
        for fname, live_spec in found.fields.items():
            live_ref = live_spec.references
            if live_ref is None or live_ref.store:
                continue
            spec = collection.fields.get(fname)
            if spec is not None and spec.references is not None:
                if live_ref.nullable:
                    spec.references.nullable = True
                continue
            target = _imported_name(result, discovered, live_ref.collection)
            if target is None:
                continue
            # A foreign key the dataset does not declare: recorded so erasure respects it, never
            # walked and never making a row anyone's (Fides would not search through it).
            spec = collection.fields.setdefault(fname, FieldMap())
            spec.references = Reference(
                collection=target,
                field=live_ref.field,
                follow=Follow.NONE,
                kind=RefKind.MENTION,
                nullable=live_ref.nullable,
            )
            what = "a column named after" if live_ref.inferred else "a foreign key to"
            result.notes.append(
                f"{name}.{fname} -> {target}: {what} a collection of the live store, which the "
                "dataset does not declare; kept so erasure respects it, not followed"
            )
    return result


def _imported_name(imported: StoreMap, discovered: StoreMap, live_name: str) -> str | None:
    live = discovered.collections.get(live_name)
    wanted = {live_name.lower(), (live.physical_name if live else live_name).lower()}
    for name, collection in imported.collections.items():
        if name.lower() in wanted or collection.physical_name.lower() in wanted:
            return name
    return None


def _categories(value: Any) -> list[str]:
    """A `data_categories` list; one category written without brackets is one category, not
    its letters."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(c) for c in value if c is not None]
    return []


def _meta_key(spec: dict) -> str:
    return "fides_meta" if "fides_meta" in spec else "fidesops_meta"


def _meta(spec: dict) -> dict:
    meta = spec.get("fides_meta") or spec.get("fidesops_meta") or {}
    return meta if isinstance(meta, dict) else {}


def _namespace_schema(spec: dict) -> str | None:
    namespace = _meta(spec).get("namespace") or {}
    schema = namespace.get("schema") if isinstance(namespace, dict) else None
    return schema if isinstance(schema, str) else None


def _dotted(path: Path) -> str:
    return ".".join(str(part) for part in path)
