"""Imports every connector module so each registers its kind."""

# Each module below calls `register` on import. Add a new kind by adding its module here.
from requests.connectors import (
    files,  # noqa: F401
    manual,  # noqa: F401
    redis_store,  # noqa: F401
    sql,  # noqa: F401
    webhook,  # noqa: F401
)
