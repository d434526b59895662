"""Helpers for the erasure tests: small SQLite stores, a stand-in engine, API shortcuts."""

from __future__ import annotations

import contextlib
import shutil
import socket
import sqlite3
import subprocess
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.core import mail

from requests.engine.erasure import DONE, StoreErasure
from requests.engine.store import TransientStoreError
from requests.models import ConnectedStore
from tests.conftest import code_from
from tests.processes import free_port, portal_env
from tests.servers import IN_CI

PERSON = "ada@example.com"

SHOP_MAP = """
collections:
  customers:
    key: [id]
    fields:
      email: {identity: email}
      phone: {identity: phone}
  orders:
    key: [id]
    fields:
      customer_id: {references: {collection: customers, field: id}}
    erasure: {action: hold, basis: "Tax law keeps orders for 10 years (Art. 17(3)(b))"}
"""

# The CRM's contacts are found through the shop's customer ids: the shop is erased after it.
CRM_MAP = """
collections:
  contacts:
    key: [id]
    fields:
      shop_customer_id: {references: {store: shop, collection: customers, field: id}}
"""


def sqlite_shop(path: Path) -> str:
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT, phone TEXT, name TEXT);
        CREATE TABLE orders (id INTEGER PRIMARY KEY,
                             customer_id INTEGER REFERENCES customers(id), total REAL);
        INSERT INTO customers VALUES (1, 'ada@example.com', '+442079460000', 'Ada'),
                                     (2, 'bob@example.com', NULL, 'Bob');
        INSERT INTO orders VALUES (10, 1, 9.5), (11, 1, 3.0), (12, 2, 7.0);
        """
    )
    conn.commit()
    conn.close()
    return f"sqlite:///{path}"


def sqlite_crm(path: Path) -> str:
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE contacts (id INTEGER PRIMARY KEY, shop_customer_id INTEGER, note TEXT);
        INSERT INTO contacts VALUES (100, 1, 'prefers email'), (101, 2, 'called twice');
        """
    )
    conn.commit()
    conn.close()
    return f"sqlite:///{path}"


def shop_and_crm(tmp_path: Path) -> tuple[ConnectedStore, ConnectedStore]:
    shop = ConnectedStore.objects.create(
        name="shop", kind="sqlite", url=sqlite_shop(tmp_path / "shop.sqlite"), map_yaml=SHOP_MAP
    )
    crm = ConnectedStore.objects.create(
        name="crm", kind="sqlite", url=sqlite_crm(tmp_path / "crm.sqlite"), map_yaml=CRM_MAP
    )
    return shop, crm


class FakeEngine:
    """Stands in for requests.engine.erasure in tests of the pipeline around it: records which
    store was erased when, returns the results set per store, and raises what it is told to."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.results: dict[str, StoreErasure] = {}
        self.remaining: dict[str, dict[str, dict[str, int]]] = {}
        self.fail_with: dict[str, list[Exception]] = {}
        self.progress_calls = 0
        self.sweeps = 0
        self.identities: list[dict] = []
        self.request_ids: list[str | None] = []

    def result(self, store: str, kind: str = "sqlite", **collections: dict) -> StoreErasure:
        erasure = StoreErasure(store=store, kind=kind, status=DONE)
        for name, counts in collections.items():
            target = erasure.collection(name)
            for key, value in counts.items():
                setattr(target, key, value)
        self.results[store] = erasure
        return erasure

    def erase_person(
        self,
        connectors,
        identity,
        *,
        store,
        hash_key,
        phone_region=None,
        progress=None,
        request_id=None,
    ):
        assert isinstance(hash_key, bytes) and hash_key
        assert store in connectors, f"no connector for {store}"
        self.calls.append(store)
        self.identities.append(dict(identity))
        self.request_ids.append(request_id)
        failures = self.fail_with.get(store)
        if failures:
            raise failures.pop(0)
        if progress is not None:
            for _ in range(3):
                progress()
                self.progress_calls += 1
        return self.results.get(store) or StoreErasure(store=store, kind="sqlite")

    def find_remaining(self, connectors, identity, *, phone_region=None):
        self.sweeps += 1
        return self.remaining


def down(message: str = "could not connect to the store (connection refused)") -> Exception:
    return TransientStoreError(message)


def file_erasure(public_api, file_request, **identity) -> str:
    """File an erasure through the public API and verify it with the emailed code (and a phone,
    when one is given, with the text-message code: only proven identifiers are searched)."""
    identity.setdefault("email", PERSON)
    before = len(mail.outbox)
    reference = file_request(kind="erasure", **identity)
    assert len(mail.outbox) == before + 1, "no verification email"
    response = public_api.post(
        f"/api/v1/requests/{reference}/verify/", {"code": code_from(mail.outbox[-1])}
    )
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "in_review"
    if identity.get("phone"):
        from tests.access_fixtures import verify_phone

        verify_phone(public_api, reference)
    return reference


# --- real processes ------------------------------------------------------------------------------


def wait_until(predicate, *, timeout: float = 60.0, every: float = 0.1, what: str = "condition"):
    """Poll `predicate` until it returns something true; that value is returned."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


def portal_database_url() -> str:
    """The test database as a URL for a worker process (it shares the rows with the test)."""
    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{database['NAME']}"
    return (
        f"postgresql://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"
    )


def worker_env(broker: tuple[str, str], data_dir: Path, **extra: str) -> dict[str, str]:
    return portal_env(
        DATABASE_URL=portal_database_url(),
        CELERY_BROKER_URL=broker[0],
        PORTAL_QUEUE=broker[1],
        SECRET_KEY=settings.SECRET_KEY,
        PORTAL_ENCRYPTION_KEYS=",".join(settings.PORTAL_ENCRYPTION_KEYS),
        PORTAL_HASH_KEY=settings.PORTAL_HASH_KEY,
        PORTAL_DATA_DIR=str(data_dir),
        PORTAL_BASE_URL="http://portal.test",
        **extra,
    )


class TcpProxy:
    """A TCP forwarder on a local port that the test can stop and start: a store that goes
    down (connections refused, open ones cut) and comes back on the same address."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._server = None
        self._open: set = set()
        self._lock = threading.Lock()

    def start(self) -> TcpProxy:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone would leave the
            # port accepting until then.
            with contextlib.suppress(OSError):
                self._server.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                self._server.close()
            self._server = None
        with self._lock:
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self, server) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open.update({client, upstream})
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source, sink) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(2)


@contextmanager
def private_redis(tmp_path: Path):
    """A redis-server of the test's own on a free port (it may be flushed at will)."""
    binary = shutil.which("redis-server")
    if binary is None:
        message = "redis-server is not installed; the broker-flush test starts its own"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        wait_until(lambda: _pings(client), timeout=20, what="the private redis-server")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


def _pings(client) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False
