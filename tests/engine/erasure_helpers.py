"""Helpers for the erasure tests: table snapshots read with plain SQL, apart from the engine."""

from __future__ import annotations

import sqlalchemy as sa

HASH_KEY = b"erasure-test-hash-key"


def engine_for(url: str) -> sa.Engine:
    return sa.create_engine(url, poolclass=sa.pool.NullPool)


def counts(url: str, tables) -> dict[str, int]:
    """Rows per table."""
    engine = engine_for(url)
    try:
        with engine.connect() as conn:
            return {
                table: conn.execute(
                    sa.select(sa.func.count()).select_from(sa.table(table))
                ).scalar_one()
                for table in tables
            }
    finally:
        engine.dispose()


def rows(url: str, table: str, where: str | None = None, params=None) -> list[tuple]:
    """Every row of a table (optionally filtered), sorted, as plain tuples."""
    engine = engine_for(url)
    prep = engine.dialect.identifier_preparer
    query = f"SELECT * FROM {prep.quote(table)}" + (f" WHERE {where}" if where else "")
    try:
        with engine.connect() as conn:
            found = [tuple(row) for row in conn.execute(sa.text(query), params or {})]
    finally:
        engine.dispose()
    return sorted(found, key=repr)


def execute(url: str, *statements: str) -> None:
    engine = engine_for(url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


def fresh_database(kind: str, request, tmp_path, name: str, *schema: str) -> tuple[str, str]:
    """(kind, url) of a new empty database of `kind` (a SQLite file, whose foreign keys are not
    enforced, or a PostgreSQL or MariaDB database), with `schema` run in it."""
    import sqlite3

    if kind == "sqlite":
        path = tmp_path / f"{name}.sqlite"
        sqlite3.connect(path).close()
        url = f"sqlite:///{path}"
    elif kind == "postgresql":
        url = request.getfixturevalue("postgres_database")
    else:
        url = request.getfixturevalue("mariadb_database")
    execute(url, *schema)
    return kind, url
