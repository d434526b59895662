"""Finding the real servers the tests talk to, and fresh databases on them.

On a machine without a server, the tests that need it skip with a message naming it; in CI
(CI=true) a missing server fails the run instead, so nothing passes by skipping.
"""

from __future__ import annotations

import os
import socket
import uuid
from contextlib import contextmanager
from urllib.parse import urlsplit

import pytest

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
MARIADB_URL = os.environ.get("TEST_MARIADB_URL", "mysql://root@127.0.0.1:3306/")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RABBITMQ_URL = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=1.0):
            return True
    except OSError:
        return False


def require(name: str, url: str) -> str:
    """The server's URL, or skip (fail in CI) with a message naming the server."""
    if _reachable(url):
        return url
    message = f"{name} is not reachable at {urlsplit(url).netloc}; start it to run this test"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: tests may not skip)")
    pytest.skip(message)


def postgres_url_for_portal() -> str | None:
    """The portal's own test database server, when PostgreSQL answers."""
    if os.environ.get("PORTAL_TEST_SQLITE"):
        return None
    if _reachable(POSTGRES_URL):
        parts = urlsplit(POSTGRES_URL)
        return f"postgresql://{parts.netloc}/portal"
    if IN_CI:
        raise RuntimeError(f"PostgreSQL is not reachable at {urlsplit(POSTGRES_URL).netloc} (CI)")
    return None


def _unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


@contextmanager
def fresh_postgres_database(prefix: str = "t"):
    """A new, empty PostgreSQL database; yields its SQLAlchemy URL and drops it afterwards."""
    import psycopg

    base = require("PostgreSQL", POSTGRES_URL)
    name = _unique(prefix)
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(base)
    try:
        yield f"postgresql+psycopg://{parts.netloc}/{name}"
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def fresh_mariadb_database(prefix: str = "t"):
    """A new, empty MariaDB database; yields its SQLAlchemy URL and drops it afterwards."""
    import pymysql

    base = require("MariaDB", MARIADB_URL)
    parts = urlsplit(base)
    name = _unique(prefix)
    kwargs = {
        "host": parts.hostname,
        "port": parts.port or 3306,
        "user": parts.username or "root",
        "password": parts.password or "",
    }
    conn = pymysql.connect(**kwargs, autocommit=True)
    try:
        with conn.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    finally:
        conn.close()
    auth = kwargs["user"] + (f":{kwargs['password']}" if kwargs["password"] else "")
    try:
        yield f"mysql+pymysql://{auth}@{kwargs['host']}:{kwargs['port']}/{name}?charset=utf8mb4"
    finally:
        conn = pymysql.connect(**kwargs, autocommit=True)
        try:
            with conn.cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        finally:
            conn.close()


def redis_url() -> str:
    return require("Redis", REDIS_URL)
