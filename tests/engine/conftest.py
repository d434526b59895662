"""Fixtures for the engine tests: Chinook in each SQL engine, and connectors that close."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.engine import chinook


@dataclass
class ChinookStore:
    kind: str  # the store kind: sqlite, postgresql, mysql
    url: str
    names: dict[str, str]  # role -> the variant's table or column name

    def __getitem__(self, role: str) -> str:
        return self.names[role]


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def chinook_store(request, tmp_path) -> ChinookStore:
    """Chinook loaded into a fresh SQLite file, PostgreSQL database or MariaDB database."""
    kind = request.param
    return ChinookStore(kind, chinook.load_into(kind, request, tmp_path), chinook.NAMES[kind])


@pytest.fixture
def connect():
    """connect(kind, url, map, name=...) -> a connector closed after the test."""
    from requests.connectors.registry import connector_for

    made = []

    def make(kind, url, store_map, *, name="store", **kwargs):
        connector = connector_for(kind, url, store_map, name=name, **kwargs)
        made.append(connector)
        return connector

    yield make
    for connector in made:
        connector.close()
