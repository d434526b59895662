"""Store maps as YAML text: loading with errors that name the line, and dumping.

`load_store_map` reports every problem it can find at once, each with its line (and column for
YAML syntax), the place in the map (`collections.invoice.fields.customer_id.references`) and what
is wrong: YAML syntax, the schema (unknown settings, wrong values), and the meaning (a reference
to a collection or field the map does not have, an unknown store, an unknown identity type, a
hold without its legal basis, a blocking cycle of references; see `requests.engine.graph`).

A map is text staff (or an API client) send, stored and parsed again for every list and preview,
so parsing is bounded: at most `MAX_MAP_BYTES` (callers pass their own limit), no anchors or
aliases (a few hundred bytes of nested aliases expand to minutes of work: "billion laughs"), and
at most `MAX_DEPTH` levels of nesting (the composer recurses). A map never needs any of them.
"""

from __future__ import annotations

from collections.abc import Collection as Names
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import ValidationError

from requests.engine.storemap import (
    BUILTIN_IDENTITY_TYPES,
    EraseAction,
    MaskStrategy,
    StoreMap,
)

Path = tuple[Any, ...]

# Far above a real map (a 500-table database drafts about 300 KB), low enough that parsing one
# stays around a second.
MAX_MAP_BYTES = 1_000_000
# A map is four or five levels deep (collections.<name>.fields.<field>.references.store).
MAX_DEPTH = 32

# libyaml when present: it parses maps about ten times faster than the pure-Python loader.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class MapProblem:
    line: int | None  # 1-based
    place: str  # dotted path in the map, "" for the whole document
    message: str
    column: int | None = None  # 1-based, for syntax errors

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line else "map"
        if self.column:
            where += f", column {self.column}"
        return (
            f"{where}: {self.place}: {self.message}" if self.place else f"{where}: {self.message}"
        )


class MapError(ValueError):
    """The map is not valid; `problems` lists each with its line."""

    def __init__(self, problems: list[MapProblem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class MapTooLarge(MapError):
    """The map is longer than the limit; nothing of it was parsed."""

    def __init__(self, size: int, limit: int):
        self.size = size
        self.limit = limit
        super().__init__(
            [MapProblem(None, "", f"the map is {size} bytes; a map may be at most {limit} bytes")]
        )


def load_store_map(
    text: str,
    *,
    store_names: Names[str] | None = None,
    store_name: str | None = None,
    max_bytes: int = MAX_MAP_BYTES,
) -> StoreMap:
    """Parse and validate map YAML. Raises MapError naming the line of every problem.

    `store_names`: the connected stores a cross-store reference may name (unchecked when None).
    `store_name`: this store's own name, if a reference names it explicitly.
    `max_bytes`: longer text is refused with MapTooLarge before it is parsed.
    """
    data, lines = parse_yaml(text, max_bytes=max_bytes)
    if data is None:
        return StoreMap()
    if not isinstance(data, dict):
        raise MapError([MapProblem(1, "", "a map must be a mapping with a `collections` key")])
    try:
        store_map = StoreMap.model_validate(data)
    except ValidationError as exc:
        raise MapError(_schema_problems(exc, lines)) from None
    problems = check_store_map(
        store_map, store_names=store_names, store_name=store_name, lines=lines
    )
    if problems:
        raise MapError(problems)
    return store_map


def dump_store_map(store_map: StoreMap) -> str:
    """YAML that `load_store_map` reads back to an equal map (settings left at default omitted)."""
    data = store_map.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    for collection in data.get("collections", {}).values():
        collection.pop("name", None)
    if store_map.collections and "collections" not in data:
        data["collections"] = {}
    for name in store_map.collections:
        # A collection with nothing but defaults must still be listed.
        data["collections"].setdefault(name, {})
    data["collections"] = {name: data["collections"][name] for name in store_map.collections}
    return yaml.dump(data, Dumper=_MapDumper, sort_keys=False, allow_unicode=True, width=100)


class _MapDumper(yaml.SafeDumper):
    """Short lists and settings on one line (`key: [id]`, `email: {identity: email}`)."""

    def ignore_aliases(self, data: Any) -> bool:
        # A value seen twice is written out twice: maps with aliases are refused when loaded.
        return True


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _represent_list(dumper: yaml.SafeDumper, value: list) -> yaml.Node:
    flow = all(_is_scalar(v) for v in value) and len(str(value)) <= 80
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flow)


def _represent_dict(dumper: yaml.SafeDumper, value: dict) -> yaml.Node:
    flow = all(_is_scalar(v) for v in value.values()) and len(str(value)) <= 60
    return dumper.represent_mapping("tag:yaml.org,2002:map", value, flow_style=flow)


_MapDumper.add_representer(list, _represent_list)
_MapDumper.add_representer(dict, _represent_dict)


def parse_yaml(
    text: str, *, max_bytes: int = MAX_MAP_BYTES
) -> tuple[Any, dict[Path, tuple[int, int]]]:
    """The document and, for every mapping key and list item, its (line, column), 1-based.

    Refuses text over `max_bytes` (MapTooLarge), anchors and aliases, and nesting deeper than
    MAX_DEPTH, each with its line, before anything is built from the text.
    """
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise MapTooLarge(size, max_bytes)
    try:
        yaml.reader.Reader(text)  # checks every character before the parser sees any
    except yaml.reader.ReaderError as exc:
        # Characters YAML does not allow (control characters) are refused before parsing starts.
        line = text.count("\n", 0, exc.position) + 1
        raise MapError(
            [MapProblem(line, "", f"YAML: character #x{exc.character:04x} is not allowed here")]
        ) from None
    try:
        _refuse_aliases_and_depth(text)
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None, {}
            data = loader.construct_document(node)
            lines: dict[Path, tuple[int, int]] = {(): (node.start_mark.line + 1, 1)}
            duplicates: list[MapProblem] = []
            _mark_lines(loader, node, (), lines, duplicates)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = exc.problem or "invalid YAML"
        if exc.context:
            started = exc.context_mark
            if started and mark and started.line != mark.line:
                message = f"{message} ({exc.context} started on line {started.line + 1})"
            else:
                message = f"{message} ({exc.context})"
        raise MapError(
            [
                MapProblem(
                    mark.line + 1 if mark else None,
                    "",
                    f"YAML syntax: {message}",
                    mark.column + 1 if mark else None,
                )
            ]
        ) from None
    except yaml.YAMLError as exc:
        raise MapError([MapProblem(None, "", f"YAML: {exc}")]) from None
    if duplicates:
        raise MapError(duplicates)
    return data, lines


def _refuse_aliases_and_depth(text: str) -> None:
    """One pass over the parser's events, building nothing: cheap whatever the text holds."""
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        mark = event.start_mark
        assert mark is not None  # the parser marks every event it emits
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise MapError(
                [
                    MapProblem(
                        mark.line + 1,
                        "",
                        "YAML anchors and aliases (&name, *name) are not allowed in a map; "
                        "write the settings out in full",
                        mark.column + 1,
                    )
                ]
            )
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise MapError(
                    [
                        MapProblem(
                            mark.line + 1,
                            "",
                            f"nested more than {MAX_DEPTH} levels deep; a map needs far fewer",
                            mark.column + 1,
                        )
                    ]
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _mark_lines(loader, node, path: Path, lines, duplicates) -> None:
    if isinstance(node, yaml.MappingNode):
        first_seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            try:
                key = loader.construct_object(key_node, deep=True)
            except yaml.YAMLError:
                continue
            if not isinstance(key, str | int | float | bool):
                continue
            line = key_node.start_mark.line + 1
            if key in first_seen:
                duplicates.append(
                    MapProblem(
                        line,
                        _dotted((*path, key)),
                        f"duplicate key (first on line {first_seen[key]})",
                    )
                )
                continue
            first_seen[key] = line
            lines[(*path, key)] = (line, key_node.start_mark.column + 1)
            _mark_lines(loader, value_node, (*path, key), lines, duplicates)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*path, index)] = (item.start_mark.line + 1, item.start_mark.column + 1)
            _mark_lines(loader, item, (*path, index), lines, duplicates)


def _dotted(path: Path) -> str:
    return ".".join(str(part) for part in path)


def line_of(lines: dict[Path, tuple[int, int]], path: Path) -> int | None:
    """The line of `path`, or of its nearest ancestor present in the document."""
    path = tuple(path)
    while path not in lines and path:
        path = path[:-1]
    found = lines.get(path)
    return found[0] if found else None


def _schema_problems(exc: ValidationError, lines) -> list[MapProblem]:
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        # pydantic adds the validator's name for unions and "[key]" steps we do not show.
        loc = tuple(part for part in error["loc"] if not str(part).startswith("function-"))
        kind = error["type"]
        if kind == "extra_forbidden":
            message = f"unknown setting {loc[-1]!r}"
        elif kind == "missing":
            message = f"{loc[-1]!r} is required"
        else:
            message = error["msg"]
        problems.append(MapProblem(line_of(lines, loc), _dotted(loc), message))
    return problems


def check_store_map(
    store_map: StoreMap,
    *,
    store_names: Names[str] | None = None,
    store_name: str | None = None,
    lines: dict[Path, tuple[int, int]] | None = None,
) -> list[MapProblem]:
    """The meaning checks; also usable on a map built in code (lines then unknown)."""
    lines = lines or {}
    problems: list[MapProblem] = []

    def problem(path: Path, message: str) -> None:
        problems.append(MapProblem(line_of(lines, path), _dotted(path), message))

    known_types = set(BUILTIN_IDENTITY_TYPES) | set(store_map.identity_types)
    for cname, collection in store_map.collections.items():
        base = ("collections", cname)
        for fname, spec in collection.fields.items():
            fpath = (*base, "fields", fname)
            if spec.identity and spec.identity not in known_types:
                problem(
                    (*fpath, "identity"),
                    f"unknown identity type {spec.identity!r}; use one of "
                    f"{', '.join(sorted(known_types))} or declare it under `identity_types`",
                )
            if spec.mask == MaskStrategy.FIXED and spec.mask_value is None:
                problem((*fpath, "mask"), "the `fixed` strategy needs a `mask_value`")
            ref = spec.references
            if ref is None:
                continue
            rpath = (*fpath, "references")
            if ref.store and ref.store != store_name:
                if store_names is not None and ref.store not in store_names:
                    known = ", ".join(sorted(store_names)) or "none"
                    problem((*rpath, "store"), f"unknown store {ref.store!r} (known: {known})")
                continue  # the other store's map is checked on its own
            target = store_map.collections.get(ref.collection)
            if target is None:
                problem(
                    (*rpath, "collection"),
                    f"unknown collection {ref.collection!r}"
                    + _suggest(ref.collection, store_map.collections),
                )
                continue
            if ref.field not in target.key and ref.field not in target.fields:
                problem(
                    (*rpath, "field"),
                    f"collection {ref.collection!r} has no field {ref.field!r} "
                    "(neither in its key nor in its fields)",
                )
            elif ref.collection == cname and ref.field == fname:
                problem(rpath, "a field cannot reference itself")
        if collection.erasure.action == EraseAction.HOLD and not collection.erasure.basis:
            problem(
                (*base, "erasure", "action"),
                "a hold needs its legal basis in `basis` (Art. 17(3))",
            )
        if len(set(collection.key)) != len(collection.key):
            problem((*base, "key"), "the key names a field twice")

    # A loop of non-nullable references is no error: erasure masks the person's records in it
    # (requests.engine.readiness says so in `stores check` and the preview).
    return problems


def _suggest(name: str, known: Names[str]) -> str:
    lowered = {k.lower(): k for k in known}
    if name.lower() in lowered:
        return f" (did you mean {lowered[name.lower()]!r}?)"
    return ""
