"""The SQL connector, one class per store kind, assembled from its features."""

from __future__ import annotations

from requests.connectors.sql.checks import SqlChecks
from requests.connectors.sql.erase import SqlErasure
from requests.connectors.sql.find import SqlFinder


class SqlConnector(SqlFinder, SqlErasure, SqlChecks):
    """The shared implementation; registered once per kind by the subclasses below."""

    concurrent_finds = True
    supports_masking = True
    can_discover = True
    reads_phone_regions = True
    can_scan_values = True


class PostgresConnector(SqlConnector):
    kind = "postgresql"
    family = "postgresql"


class MysqlConnector(SqlConnector):
    kind = "mysql"
    family = "mysql"


class SqliteConnector(SqlConnector):
    kind = "sqlite"
    family = "sqlite"
