"""SQL stores through SQLAlchemy Core: PostgreSQL, MySQL/MariaDB and SQLite (kinds `postgresql`,
`mysql`, `sqlite`); other SQLAlchemy dialects work in principle under the kind of their family.

One module per feature:
- `connection`: URLs, drivers, the engine and the connections a connector reads through;
- `tables`: the tables a map names, read once and shared by a process's connectors for a while;
- `statements`: every statement the connector sends, each defined once as SQLAlchemy Core, and
  compiled once per dialect where PostgreSQL's hot path sends the driver's own SQL;
- `find`: lookups (`find`, `find_identity`), streamed, and how identities are compared;
- `transaction`, `erase` and `masks`: the erasure's transaction (one per store), its
  primitives, and the field masks;
- `checks` and `schema`: the store's check, the value scan, and what discovery reads;
- `errors`: driver errors in the project's words, never quoting a password or a row;
- `connector`: the connector classes, one per kind (requests.connectors.registry lists them).
"""

from requests.connectors.sql.connector import (
    MysqlConnector,
    PostgresConnector,
    SqlConnector,
    SqliteConnector,
)

__all__ = ["MysqlConnector", "PostgresConnector", "SqlConnector", "SqliteConnector"]
