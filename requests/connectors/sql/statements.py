"""Every statement the SQL connector sends, each defined once, as SQLAlchemy Core.

A statement that binds a list of values has two forms, chosen by `arrays`:
- the list expands to `col IN (...)`: SQLAlchemy runs these (SQLite, MySQL/MariaDB, and
  PostgreSQL through a driver other than psycopg);
- `arrays`: the list is one parameter, `col = ANY(%(values)s::BIGINT[])`, one statement text for
  any batch size, which psycopg prepares after a few runs. The finder's lookups and the erasure's
  hot statements go to psycopg directly in this form, skipping SQLAlchemy's per-execution work:
  `driver_sql` compiles the Core statement for the dialect once per process and table shape and
  keeps the text, so no statement is written twice.

Identifiers are quoted by the dialect; values are always bound. On PostgreSQL a bound value is cast
to a type that never changes it (`bigint`, unbounded `varchar`, `uuid`; never `varchar(n)`, which
would truncate, nor `integer`, which would fail on a large number from another store).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import sqltypes
from sqlalchemy.sql.functions import FunctionElement

# Characters people put between the digits of a phone number; stripped before comparing tails.
PHONE_SEPARATORS = (" ", "-", "(", ")", ".", "+", "/")

# Statement texts compiled for a driver, by (dialect, driver, statement, shape); see driver_sql.
# Each job builds new connectors, so the texts are kept per process, not per connector. The
# bound is far above what a process's maps name; reaching it starts the cache again.
MAX_COMPILED = 4096
_COMPILED: dict[tuple, str] = {}


def driver_sql(dialect: Dialect, key: tuple, build: Callable[[], sa.ClauseElement]) -> str:
    """The text of the statement `build` makes, compiled for `dialect`, once per process for each
    `key`, which must name the statement and everything its text depends on (`table_shape`)."""
    full = (dialect.name, dialect.driver, *key)
    text = _COMPILED.get(full)
    if text is None:
        if len(_COMPILED) >= MAX_COMPILED:
            _COMPILED.clear()
        text = _COMPILED[full] = str(build().compile(dialect=dialect))
    return text


def table_shape(table: sa.Table) -> tuple:
    """What a compiled statement over `table` depends on: its name and its columns' names and
    types (a column added, dropped or retyped makes a new text)."""
    return (table.schema, table.name, tuple((c.name, type(c.type)) for c in table.columns))


def is_text(column: sa.Column) -> bool:
    return isinstance(column.type, sqltypes.String)


def cast_type(column: sa.Column) -> sa.types.TypeEngine | None:
    """The type a bound value for `column` is cast to in the arrays form: one that never changes
    a value. None: no cast (the server infers the column's type)."""
    kind = column.type
    if isinstance(kind, sqltypes.Integer):
        return sa.BigInteger()
    if isinstance(kind, sqltypes.String):
        return sa.Text()
    if isinstance(kind, sqltypes.Uuid):
        return sa.Uuid()
    return None


# Expressions whose SQL differs by dialect -------------------------------------------------------


class Folded(FunctionElement):
    """A text in lower case, as identity values are compared. SQLite's lower() folds ASCII only,
    so there it is the connector's own `dsr_lower` (registered on each connection)."""

    type = sa.String()
    inherit_cache = True


@compiles(Folded)
def _folded(element, compiler, **kw) -> str:
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(Folded, "sqlite")
def _folded_sqlite(element, compiler, **kw) -> str:
    return f"dsr_lower({compiler.process(element.clauses, **kw)})"


class PhoneTail(FunctionElement):
    """The last `length` digits of a phone number as a store holds it, separators stripped."""

    type = sa.String()
    inherit_cache = True

    def __init__(self, column: sa.Column, length: int) -> None:
        digits: Any = column if is_text(column) else sa.cast(column, sa.String)
        for separator in PHONE_SEPARATORS:
            digits = sa.func.replace(digits, _constant(separator), _constant(""))
        # Literal, not bound: part of the statement's text and of SQLAlchemy's cache key.
        super().__init__(digits, sa.literal_column(str(int(length))))


@compiles(PhoneTail)
def _phone_tail(element, compiler, **kw) -> str:
    digits, length = element.clauses.clauses
    start = sa.func.length(digits) - sa.literal_column(str(int(length.name) - 1))
    return compiler.process(sa.func.substr(digits, start), **kw)


@compiles(PhoneTail, "postgresql")
def _phone_tail_postgresql(element, compiler, **kw) -> str:
    return compiler.process(sa.func.right(*element.clauses.clauses), **kw)


def _constant(text: str):
    """A string constant written into the statement (the separators: fixed, no quotes in them)."""
    return sa.literal_column("'" + text.replace("'", "''") + "'")


def _member(target, name: str, element_type, arrays: bool):
    """`target` is one of the values bound as `name`."""
    if not arrays:
        return target.in_(sa.bindparam(name, expanding=True))
    if element_type is None:
        return target == sa.any_(sa.bindparam(name))
    return target == sa.any_(sa.bindparam(name, type_=sa.ARRAY(element_type)))


def _key_in(key_columns: Sequence[sa.Column], arrays: bool, name: str = "keys"):
    """The records whose key is one of those bound as `name` (composite keys: row values)."""
    if len(key_columns) == 1:
        return _member(key_columns[0], name, cast_type(key_columns[0]), arrays)
    if arrays:
        raise ValueError("the arrays form binds single-column keys only")
    return sa.tuple_(*key_columns).in_(sa.bindparam(name, expanding=True))


# Finding ----------------------------------------------------------------------------------------


def lookup(
    table: sa.Table,
    column: sa.Column,
    mode: str,
    shape: Any,
    *,
    case_blind: bool = False,
    arrays: bool = False,
) -> sa.Select:
    """The table's rows whose `column` matches the bound values, every column selected.

    mode: exact, email, name (compared in lower case unless the column's collation already ignores
    case), phone (the digits' tails). shape: "one" (bound as `value`), "many" (`values`), or for
    phones the names of the bound lists of tails, `t<length>` each.
    """
    query = sa.select(*table.columns)
    if mode == "phone":
        tails = [
            _member(PhoneTail(column, int(name[1:])), name, sa.Text(), arrays) for name in shape
        ]
        return query.where(sa.or_(*tails))
    target: Any = column
    value_type = cast_type(column) if arrays else column.type
    if mode in ("email", "name") and not case_blind:
        target = Folded(column)
        if arrays:
            value_type = sa.Text()
    if shape == "one":
        return query.where(target == sa.bindparam("value", type_=value_type))
    return query.where(_member(target, "values", value_type, arrays))


def probe(statement: sa.Select, rows: int) -> sa.Select:
    """The first `rows` rows of a lookup: most answers are small, and this one runs prepared."""
    return statement.limit(sa.literal_column(str(int(rows))))


def column_values(column: sa.Column) -> sa.Select:
    """Every value of a column but null, for the suppression ledger's reapply scan."""
    return sa.select(column).where(column.is_not(None))


# Erasure ----------------------------------------------------------------------------------------


def delete_by_key(table: sa.Table, key_columns: Sequence[sa.Column], *, arrays: bool = False):
    """Delete the records whose keys are bound as `keys`."""
    return table.delete().where(_key_in(key_columns, arrays))


def delete_unreferenced(
    table: sa.Table,
    key_columns: Sequence[sa.Column],
    guards: Sequence[tuple[sa.Column, sa.Column]],
    *,
    arrays: bool = False,
):
    """Delete the records keyed `keys` that no row refers to: each guard is (referring column,
    referred column of `table`), and a record some guard finds a referrer for stays."""
    unreferenced = [~sa.exists().where(referring == referred) for referring, referred in guards]
    return table.delete().where(_key_in(key_columns, arrays), *unreferenced)


def referrers(
    table: sa.Table,
    key_columns: Sequence[sa.Column],
    column: sa.Column,
    *,
    arrays: bool = False,
) -> sa.Select:
    """Key and `column` of the rows whose `column` is one of the values bound as `values`."""
    where = _member(column, "values", cast_type(column), arrays)
    return sa.select(*key_columns, column).where(where)


def nullify(table: sa.Table, column: sa.Column):
    """Clear `column` where it holds one of the values bound as `values`."""
    return (
        table.update()
        .where(column.in_(sa.bindparam("values", expanding=True)))
        .values({column.name: None})
    )


def mask_constant(table: sa.Table, key_columns: Sequence[sa.Column], columns: Sequence[sa.Column]):
    """Set each of `columns` to its constant, bound as `v_<i>`, in the records keyed `keys`; a
    record that holds those values already is neither written nor counted."""
    differs = sa.or_(*[c.is_distinct_from(sa.bindparam(f"v_{i}")) for i, c in enumerate(columns)])
    return (
        table.update()
        .where(_key_in(key_columns, False), differs)
        .values({c.name: sa.bindparam(f"v_{i}") for i, c in enumerate(columns)})
    )


def mask_read(
    table: sa.Table, key_columns: Sequence[sa.Column], columns: Sequence[sa.Column]
) -> sa.Select:
    """Key and current values of `columns` of the records keyed `keys`."""
    return sa.select(*key_columns, *columns).where(_key_in(key_columns, False))


def mask_per_record(
    table: sa.Table,
    key_columns: Sequence[sa.Column],
    constants: dict[sa.Column, Any],
    changes: dict[sa.Column, list[tuple[tuple, Any]]],
):
    """Set columns in the records keyed `keys`: those of `constants` to one value each, those of
    `changes` to a value per record (`(key, value)` pairs; records not listed keep theirs). Every
    value is bound: one statement for the batch, whatever the values."""
    values: dict[str, Any] = {
        c.name: sa.bindparam(f"c_{i}", v, type_=c.type)
        for i, (c, v) in enumerate(constants.items())
    }
    for column, pairs in changes.items():
        whens = [
            (_key_equals(key_columns, key), sa.bindparam(None, new, type_=column.type))
            for key, new in pairs
        ]
        values[column.name] = sa.case(*whens, else_=column)
    return table.update().where(_key_in(key_columns, False)).values(values)


def _key_equals(key_columns: Sequence[sa.Column], key: tuple):
    tests = [
        c == sa.bindparam(None, v, type_=c.type) for c, v in zip(key_columns, key, strict=True)
    ]
    return tests[0] if len(tests) == 1 else sa.and_(*tests)


# Catalogues: reflection, checks and discovery -----------------------------------------------------

_PG_CLASS = sa.table(
    "pg_class",
    sa.column("oid"),
    sa.column("relname"),
    sa.column("relnamespace"),
    sa.column("relispartition"),
)
_PG_NAMESPACE = sa.table("pg_namespace", sa.column("oid"), sa.column("nspname"))
_PG_CONSTRAINT = sa.table(
    "pg_constraint",
    sa.column("conname"),
    sa.column("condeferrable"),
    sa.column("contype"),
    sa.column("conrelid"),
    sa.column("confrelid"),
    sa.column("conkey", postgresql.ARRAY(sa.SmallInteger)),
    sa.column("confkey", postgresql.ARRAY(sa.SmallInteger)),
)
_PG_ATTRIBUTE = sa.table(
    "pg_attribute", sa.column("attrelid"), sa.column("attnum"), sa.column("attname")
)
_MYSQL_COLUMNS = sa.table(
    "COLUMNS",
    sa.column("COLUMN_NAME"),
    sa.column("COLLATION_NAME"),
    sa.column("TABLE_SCHEMA"),
    sa.column("TABLE_NAME"),
    schema="information_schema",
)


def mysql_collations() -> sa.Select:
    """Name and collation of each column of the table bound as `table` (in `schema`, or the
    connection's database when that is null)."""
    columns = _MYSQL_COLUMNS.c
    schema: sa.ColumnElement[Any] = sa.func.coalesce(sa.bindparam("schema"), sa.func.database())
    return sa.select(columns["COLUMN_NAME"], columns["COLLATION_NAME"]).where(
        columns["TABLE_SCHEMA"] == schema, columns["TABLE_NAME"] == sa.bindparam("table")
    )


def pg_partitions() -> sa.Select:
    """Names of the partitions in the schema bound as `schema` (null: the current schema)."""
    c, n = _PG_CLASS.c, _PG_NAMESPACE.c
    return (
        sa.select(c.relname)
        .select_from(_PG_CLASS.join(_PG_NAMESPACE, n.oid == c.relnamespace))
        .where(
            c.relispartition,
            n.nspname == sa.func.coalesce(sa.bindparam("schema"), sa.func.current_schema()),
        )
    )


def rows_up_to(table: sa.Table, limit: int) -> sa.Select:
    """How many rows `table` holds, counting no further than `limit`: a bounded read, exact
    where an estimate may be missing (a table PostgreSQL has not analysed yet)."""
    head = sa.select(sa.literal_column("1")).select_from(table).limit(limit).subquery()
    return sa.select(sa.func.count()).select_from(head)


def sample(name: str, schema: str | None, columns: Sequence[str], rows: int) -> sa.Select:
    """The first `rows` rows' values of text `columns`, each cut to 100 characters."""
    source = sa.table(name, *[sa.column(c) for c in columns], schema=schema)
    return sa.select(*[sa.func.substr(source.c[c], 1, 100) for c in columns]).limit(rows)


def pg_foreign_keys() -> sa.Select:
    """Single-column foreign keys from the table whose quoted name is bound as `referring` to the
    one bound as `referred`: name, whether it is DEFERRABLE, the column and the referred column."""
    con = _PG_CONSTRAINT.c
    column, referred = _PG_ATTRIBUTE.alias("a"), _PG_ATTRIBUTE.alias("fa")
    return (
        sa.select(
            con.conname.label("name"),
            con.condeferrable.label("deferrable"),
            column.c.attname.label("column"),
            referred.c.attname.label("referred_column"),
        )
        .select_from(
            _PG_CONSTRAINT.join(
                column,
                sa.and_(column.c.attrelid == con.conrelid, column.c.attnum == con.conkey[1]),
            ).join(
                referred,
                sa.and_(referred.c.attrelid == con.confrelid, referred.c.attnum == con.confkey[1]),
            )
        )
        .where(
            con.contype == "f",
            sa.func.cardinality(con.conkey) == 1,
            con.conrelid
            == sa.cast(sa.bindparam("referring", type_=sa.Text()), postgresql.REGCLASS),
            con.confrelid
            == sa.cast(sa.bindparam("referred", type_=sa.Text()), postgresql.REGCLASS),
        )
    )
