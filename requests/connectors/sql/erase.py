"""The SQL connector's erasure primitives (requests.engine.store): one transaction per store,
set-based statements by key (requests.connectors.sql.statements defines each).

The erasure keeps its own connection while `transaction()` is open, and reads its tables again
inside it, with each column's nullability (a mask defaults to null only where the column allows
it), once per connector.

Statements, each for a batch of keys (the engine sends at most ERASE_BATCH):
- delete: `DELETE FROM t WHERE key IN (...)` (`(k1, k2) IN (...)` for composite keys), and the
  same guarded by `NOT EXISTS` a referrer for each reference the engine names;
- mask with constants only (null, fixed): `UPDATE t SET f = ... WHERE key IN (...) AND (f IS
  DISTINCT FROM ...)`, so records already masked are neither written nor counted;
- mask with per-record values (hash, random): one SELECT of the batch's current values, then one
  `UPDATE t SET f = CASE WHEN key = ... THEN ... END WHERE key IN (...)` for the records that
  change: values computed here (requests.connectors.sql.masks), still one statement per batch;
- nullify: `UPDATE t SET f = NULL WHERE f IN (...)`;
- referrers: `SELECT key, f FROM t WHERE f IN (...)`, inside the transaction so it sees the
  deletes made so far.
On PostgreSQL through psycopg the hot ones (deletes by key, referrers) go to the driver directly,
as the finder's lookups do, in their `key = ANY(%(keys)s)` form, compiled once.

A loop of references no null can break: `defer_references` defers its foreign keys to the
commit on PostgreSQL when every one is DEFERRABLE, so the engine can delete the loop at once.

The transaction, and the driver's cursor the hot statements use:
requests.connectors.sql.transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa

from requests.connectors.sql import statements
from requests.connectors.sql.errors import is_driver_error
from requests.connectors.sql.masks import Mask, resolve_mask
from requests.connectors.sql.tables import as_stored
from requests.connectors.sql.transaction import REFERRER_CHUNK, SqlTransaction
from requests.engine.store import (
    FieldMask,
    PermanentStoreError,
)
from requests.engine.storemap import Collection

# Bound parameters one masking UPDATE may carry (keys and per-record values): under SQLite's
# limit of 32766, itself the lowest of the three engines (PostgreSQL and MySQL allow 65535).
MAX_PARAMETERS = 30_000


class SqlErasure(SqlTransaction):
    """Erasure primitives (see the module docstring)."""

    _erase_cache: dict[Any, Any] | None = None

    def _cache(self) -> dict[Any, Any]:
        if self._erase_cache is None:
            self._erase_cache = {}
        return self._erase_cache

    def _erase_table(self, collection: Collection) -> sa.Table:
        """The collection's table with types and nullability, read once per connector."""
        key = ("table", collection.schema_name, collection.physical_name)
        table = self._cache().get(key)
        if table is not None:
            return table
        doing = f"reading the table of collection {collection.name}"
        try:
            found = sa.inspect(self._tx()).get_columns(
                collection.physical_name, schema=collection.schema_name
            )
        except sa.exc.NoSuchTableError:
            found = []
        except sa.exc.DBAPIError as exc:
            raise self._erase_error(exc, doing) from None
        if not found:
            raise PermanentStoreError(
                f"collection {collection.name}: table {collection.physical_name!r} not found"
            )
        table = sa.Table(
            collection.physical_name,
            sa.MetaData(),
            *[
                sa.Column(
                    c["name"],
                    as_stored(self.family, c["type"]),
                    nullable=bool(c.get("nullable", True)),
                )
                for c in found
            ],
            schema=collection.schema_name,
        )
        self._cache()[key] = table
        return table

    def _key_columns(self, table: sa.Table, collection: Collection) -> list[sa.Column]:
        if not collection.key:
            raise PermanentStoreError(
                f"collection {collection.name}: no key, so its records cannot be erased one by "
                "one; give it a key in the map"
            )
        return [self._column(table, collection, k) for k in collection.key]

    def _statement(self, name: tuple, build: Callable[[], Any]) -> Any:
        """A statement kept per connector by `name` (its kind, the table, what else shapes it)."""
        statement = self._cache().get(name)
        if statement is None:
            statement = self._cache()[name] = build()
        return statement

    def _driver_text(self, name: tuple, table: sa.Table, build: Callable[[], Any]) -> str:
        """The psycopg text of a statement, kept per connector by `name` and compiled once per
        process for the table's shape (statements.driver_sql)."""
        text = self._cache().get(("driver", *name))
        if text is None:
            shape = (name[0], statements.table_shape(table), *name[3:])
            text = statements.driver_sql(self.engine.dialect, shape, build)
            self._cache()[("driver", *name)] = text
        return text

    @staticmethod
    def _key_params(collection: Collection, keys: Sequence[tuple]) -> list[Any]:
        if len(collection.key) == 1:
            return [k[0] if isinstance(k, tuple | list) else k for k in keys]
        return [tuple(k) for k in keys]

    # Primitives --------------------------------------------------------------------------------

    def delete_keys(self, collection: Collection, keys: Sequence[tuple]) -> int:
        if not keys:
            return 0
        doing = f"erasing records of collection {collection.name}"
        table = self._erase_table(collection)
        key_columns = self._key_columns(table, collection)
        name = ("delete", table.schema, table.name)
        if self._psycopg() and len(key_columns) == 1:
            text = self._driver_text(
                name, table, lambda: statements.delete_by_key(table, key_columns, arrays=True)
            )
            wanted = _coerce(key_columns[0], [k[0] for k in keys])
            return max(self._pg_run(text, {"keys": wanted}, doing), 0)
        statement = self._statement(name, lambda: statements.delete_by_key(table, key_columns))
        result = self._execute(statement, {"keys": self._key_params(collection, keys)}, doing)
        return max(result.rowcount or 0, 0)

    def delete_unreferenced(
        self,
        collection: Collection,
        keys: Sequence[tuple],
        references: Sequence[tuple[Collection, str, str]],
    ) -> int | None:
        if not keys:
            return 0
        doing = f"erasing records of collection {collection.name}"
        table = self._erase_table(collection)
        guards = []
        for referring, field_name, referred in references:
            other = self._erase_table(referring)
            if (other.schema, other.name) == (table.schema, table.name):
                return None  # a table referring to itself: checked row by row by the engine
            guards.append(
                (
                    self._column(other, referring, field_name),
                    self._column(table, collection, referred),
                )
            )
        key_columns = self._key_columns(table, collection)
        shape = tuple((f.table.schema, f.table.name, f.name, g.name) for f, g in guards)
        name = ("delete-unreferenced", table.schema, table.name, shape)
        if self._psycopg() and len(key_columns) == 1:
            text = self._driver_text(
                name,
                table,
                lambda: statements.delete_unreferenced(table, key_columns, guards, arrays=True),
            )
            wanted = _coerce(key_columns[0], [k[0] for k in keys])
            return max(self._pg_run(text, {"keys": wanted}, doing), 0)
        statement = self._statement(
            name, lambda: statements.delete_unreferenced(table, key_columns, guards)
        )
        result = self._execute(statement, {"keys": self._key_params(collection, keys)}, doing)
        return max(result.rowcount or 0, 0)

    def mask_keys(
        self,
        collection: Collection,
        keys: Sequence[tuple],
        masks: Sequence[FieldMask],
        *,
        hash_key: bytes,
    ) -> int:
        if not keys:
            return 0
        table = self._erase_table(collection)
        resolved = [
            m
            for m in (
                resolve_mask(self._column(table, collection, fm.field), collection, fm)
                for fm in masks
            )
            if m
        ]
        if not resolved:
            return 0
        if all(m.constant for m in resolved):
            return self._mask_constant(table, collection, keys, resolved)
        per_record = 1 + sum(1 for m in resolved if not m.constant)
        step = max(1, min(len(keys), MAX_PARAMETERS // (per_record * len(collection.key) + 1)))
        changed = 0
        for start in range(0, len(keys), step):
            changed += self._mask_computed(
                table, collection, keys[start : start + step], resolved, hash_key
            )
        return changed

    def _mask_constant(self, table, collection, keys, masks: list[Mask]) -> int:
        doing = f"masking records of collection {collection.name}"
        key_columns = self._key_columns(table, collection)
        columns = [m.column for m in masks]
        statement = self._statement(
            ("mask", table.schema, table.name, tuple(c.name for c in columns)),
            lambda: statements.mask_constant(table, key_columns, columns),
        )
        params = {f"v_{i}": m.value for i, m in enumerate(masks)}
        params["keys"] = self._key_params(collection, keys)
        return max(self._execute(statement, params, doing).rowcount or 0, 0)

    def _mask_computed(self, table, collection, keys, masks: list[Mask], hash_key) -> int:
        doing = f"masking records of collection {collection.name}"
        key_columns = self._key_columns(table, collection)
        read = statements.mask_read(table, key_columns, [m.column for m in masks])
        rows = self._execute(read, {"keys": self._key_params(collection, keys)}, doing).all()
        width = len(key_columns)
        changes: list[tuple[tuple, list[Any]]] = []
        for row in rows:
            current = list(row[width:])
            new = [m.new_value(v, hash_key) for m, v in zip(masks, current, strict=True)]
            if new != current:
                changes.append((tuple(row[:width]), new))
        if not changes:
            return 0
        constants = {m.column: m.value for m in masks if m.constant}
        per_record = {
            m.column: [(key, new[i]) for key, new in changes]
            for i, m in enumerate(masks)
            if not m.constant
        }
        statement = statements.mask_per_record(table, key_columns, constants, per_record)
        changed_keys = [k[0] if width == 1 else k for k, _ in changes]
        result = self._execute(statement, {"keys": changed_keys}, doing)
        return max(result.rowcount or 0, 0)

    def nullify(self, collection: Collection, field_name: str, values: Sequence[Any]) -> int:
        doing = f"clearing references in collection {collection.name}"
        table = self._erase_table(collection)
        column = self._column(table, collection, field_name)
        if not column.nullable:
            raise PermanentStoreError(
                f"collection {collection.name}: {field_name} may not be null, so it cannot be "
                "cleared; set `nullable: false` on its reference or change the fallback"
            )
        wanted = _coerce(column, values)
        if not wanted:
            return 0
        statement = statements.nullify(table, column)
        return max(self._execute(statement, {"values": wanted}, doing).rowcount or 0, 0)

    def defer_references(
        self, references: Sequence[tuple[Collection, str, Collection, str]]
    ) -> bool:
        """PostgreSQL through psycopg: when a DEFERRABLE foreign key backs every reference,
        `SET CONSTRAINTS ... DEFERRED` for this transaction (checked at the commit instead)."""
        if not self._psycopg() or not references:
            return False
        doing = "reading the foreign keys of a loop of references"
        prep = self.engine.dialect.identifier_preparer
        names: list[str] = []
        for referring, field_name, referred, referred_field in references:
            table, target = self._erase_table(referring), self._erase_table(referred)
            params = {"referring": prep.format_table(table), "referred": prep.format_table(target)}
            found = [
                row
                for row in self._execute(statements.pg_foreign_keys(), params, doing)
                if (row.column, row.referred_column) == (field_name, referred_field)
            ]
            if not found or not all(row.deferrable for row in found):
                return False
            schema = f"{prep.quote_schema(table.schema)}." if table.schema else ""
            names.extend(schema + prep.quote(row.name) for row in found)
        try:
            # The driver's own execute: no parameters, so nothing in a name is a placeholder.
            self._pg_cursor().execute(f"SET CONSTRAINTS {', '.join(dict.fromkeys(names))} DEFERRED")
        except Exception as exc:
            if is_driver_error(exc):
                raise self._erase_error(exc, doing) from None
            raise
        return True

    def referrers(
        self, collection: Collection, field_name: str, values: Sequence[Any]
    ) -> Iterator[tuple[tuple, Any]]:
        if self._erase_conn is None:
            yield from super().referrers(collection, field_name, values)
            return
        doing = f"checking references from collection {collection.name}"
        table = self._erase_table(collection)
        column = self._column(table, collection, field_name)
        wanted = _coerce(column, values)
        if not wanted:
            return
        key_columns = [self._column(table, collection, k) for k in collection.key]
        width = len(key_columns)
        name = ("referrers", table.schema, table.name, column.name)
        if self._psycopg():

            def build() -> sa.Select:
                return statements.referrers(table, key_columns, column, arrays=True)

            whole = self._driver_text(name, table, build)
            probe = self._driver_text(
                ("referrers-probe", *name[1:]),
                table,
                lambda: statements.probe(build(), REFERRER_CHUNK + 1),
            )
            for row in self._pg_rows(probe, whole, {"values": wanted}, doing):
                yield tuple(row[:width]), row[width]
            return
        statement = statements.referrers(table, key_columns, column)
        try:
            # Per statement: a connection's own execution_options would stay for what follows.
            result = self._tx().execute(
                statement,
                {"values": wanted},
                execution_options={"stream_results": True, "yield_per": REFERRER_CHUNK},
            )
            try:
                for partition in result.partitions():
                    for found in partition:
                        yield tuple(found[:width]), found[width]
            finally:
                result.close()
        except sa.exc.DBAPIError as exc:
            raise self._erase_error(exc, doing) from None


def _coerce(column: sa.Column, values: Sequence[Any]) -> list[Any]:
    """Values in the column's Python type; those that cannot be are dropped (they match nothing).
    A reference across stores can carry "42" to an integer column, which PostgreSQL refuses."""
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        return [v for v in values if v is not None]
    out = []
    for value in values:
        if value is None or isinstance(value, bool):
            continue
        if python_type is int and not isinstance(value, int):
            text = str(value).strip()
            if not text.lstrip("-").isdigit():
                continue
            value = int(text)
        elif python_type is str and not isinstance(value, str):
            value = str(value)
        out.append(value)
    return list(dict.fromkeys(out))
