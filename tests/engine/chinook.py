"""The Chinook sample database, loaded from `../shared/datasets/chinook/` at run time.

The scripts are never copied into the repository. Where the folder is absent (a user's machine)
the tests that need it skip with a message; in CI (CI=true) they fail instead.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from tests.servers import IN_CI

# The `shared` folder sits next to the repository's root.
CHINOOK_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets" / "chinook"

# Luís Gonçalves, customer 1 in every variant: what the finder must return for his email.
LUIS_EMAIL = "luisg@embraer.com.br"
LUIS_COUNTS = {"customer": 1, "invoice": 7, "invoice_line": 38}


def script(name: str) -> str:
    path = CHINOOK_DIR / name
    if not path.is_file():
        message = f"the Chinook dataset is not at {CHINOOK_DIR.resolve()} ({name} missing)"
        if IN_CI:
            pytest.fail(f"{message} (CI=true: tests may not skip)")
        pytest.skip(message)
    return path.read_text(encoding="utf-8")


def load_sqlite(path: Path) -> str:
    """Chinook in a new SQLite file; returns its SQLAlchemy URL."""
    conn = sqlite3.connect(path)
    try:
        conn.executescript(script("Chinook_Sqlite.sql"))
        conn.commit()
    finally:
        conn.close()
    return f"sqlite:///{path}"


def load_postgres(url: str) -> str:
    """Chinook into the empty PostgreSQL database at `url` (its own DROP/CREATE/\\c lines cut)."""
    import psycopg

    text = script("Chinook_PostgreSql.sql")
    text = re.sub(r"(?im)^\s*(DROP DATABASE|CREATE DATABASE|\\c)\b[^\n]*$", "", text)
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        # Without parameters psycopg sends the script as one simple query: many statements.
        conn.execute(text)
    return url


def load_mariadb(url: str) -> str:
    """Chinook into the empty MariaDB database at `url` (its own CREATE DATABASE/USE lines cut)."""
    import pymysql
    from pymysql.constants import CLIENT
    from sqlalchemy.engine import make_url

    text = script("Chinook_MySql.sql")
    text = re.sub(r"(?im)^\s*(DROP DATABASE|CREATE DATABASE|USE)\b[^\n]*$", "", text)
    parts = make_url(url)
    conn = pymysql.connect(
        host=parts.host,
        port=parts.port or 3306,
        user=parts.username,
        password=parts.password or "",
        database=parts.database,
        charset="utf8mb4",
        client_flag=CLIENT.MULTI_STATEMENTS,
        autocommit=True,
    )
    try:
        with conn.cursor() as cursor:
            cursor.execute(text)
            while cursor.nextset():
                pass
    finally:
        conn.close()
    return url


# The three variants name things their own way: (collection, field) for each role in the tests.
NAMES = {
    "sqlite": {
        "customer": "Customer",
        "employee": "Employee",
        "invoice": "Invoice",
        "invoice_line": "InvoiceLine",
        "email": "Email",
        "phone": "Phone",
        "customer_id": "CustomerId",
        "invoice_id": "InvoiceId",
        "support_rep_id": "SupportRepId",
        "reports_to": "ReportsTo",
        "employee_id": "EmployeeId",
    },
    "postgresql": {
        "customer": "customer",
        "employee": "employee",
        "invoice": "invoice",
        "invoice_line": "invoice_line",
        "email": "email",
        "phone": "phone",
        "customer_id": "customer_id",
        "invoice_id": "invoice_id",
        "support_rep_id": "support_rep_id",
        "reports_to": "reports_to",
        "employee_id": "employee_id",
    },
}
NAMES["mysql"] = NAMES["sqlite"]


def load_into(kind: str, request, tmp_path: Path) -> str:
    """Chinook in a fresh database of `kind` (sqlite, postgresql, mysql); returns its URL.

    `request` is the pytest fixture request, used to get a fresh server database."""
    if kind == "sqlite":
        return load_sqlite(tmp_path / "chinook.sqlite")
    if kind == "postgresql":
        return load_postgres(request.getfixturevalue("postgres_database"))
    return load_mariadb(request.getfixturevalue("mariadb_database"))


def connect_through_api(staff_api, kind: str, url: str) -> dict:
    """Connect Chinook as the store `chinook` with discovery, as staff would; the drafted map."""
    import yaml

    created = staff_api.post(
        "/api/v1/staff/stores/",
        {"name": "chinook", "kind": kind, "url": url, "discover": True},
        format="json",
    )
    assert created.status_code == 201, created.content
    return yaml.safe_load(staff_api.get("/api/v1/staff/stores/chinook/map/").json()["map"])
