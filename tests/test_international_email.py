"""Internationalised email addresses (RFC 6531): a non-ASCII local part and an IDN domain are
accepted at intake, kept in one normal form, matched in real stores (SQLite and PostgreSQL) and
sent their code over SMTP with SMTPUTF8."""

from __future__ import annotations

import socket
import sqlite3
import threading
import unicodedata

import pytest
import sqlalchemy as sa
from django.core import mail

from requests.engine.normalise import normalise_email
from requests.models import ConnectedStore, DataRequest
from tests.access_fixtures import approve, data_json, zip_of
from tests.conftest import body_of, code_from

pytestmark = pytest.mark.django_db

STANISLAW = "stanisław.wójcik@wp.pl"

MAP = """
collections:
  customers:
    key: [id]
    fields:
      email: {identity: email}
  orders:
    key: [id]
    fields:
      customer_id: {references: {collection: customers, field: id}}
"""

ROWS = [
    "CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT, name TEXT)",
    "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, item TEXT)",
    "INSERT INTO customers VALUES (1, 'stanisław.wójcik@wp.pl', 'Stanisław Wójcik'), "
    "(2, 'stanislaw.wojcik@wp.pl', 'Someone Else')",
    "INSERT INTO orders VALUES (10, 1, 'kajak'), (11, 2, 'rower')",
    # One system keeps the domain in its ASCII (punycode) form, another in Unicode; a third
    # address only looks alike.
    "INSERT INTO customers VALUES (3, 'jürgen@xn--bcher-kva.example', 'Jürgen'), "
    "(4, 'jürgen@bücher.example', 'Jürgen'), (5, 'jurgen@bucher.example', 'Someone Else')",
    "INSERT INTO orders VALUES (12, 3, 'buch'), (13, 4, 'heft'), (14, 5, 'stift')",
]


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        ("Stanisław.Wójcik@WP.pl", STANISLAW),
        (unicodedata.normalize("NFD", "Stanisław.Wójcik@wp.pl"), STANISLAW),
        ("Jürgen@BÜCHER.example", "jürgen@bücher.example"),
        ("jürgen@xn--bcher-kva.example", "jürgen@bücher.example"),
        ("用户@例子.广告", "用户@例子.广告"),
    ],
)
def test_an_internationalised_address_is_accepted_and_kept_in_one_normal_form(
    public_api, typed, kept
):
    response = public_api.post(
        "/api/v1/requests/", {"kind": "access", "identity": {"email": typed}}, format="json"
    )
    assert response.status_code == 201, response.content
    request = DataRequest.objects.get(reference=response.json()["reference"])
    assert request.email == kept
    assert normalise_email(typed) == kept


@pytest.mark.parametrize(
    "typed",
    [
        "stanisław wójcik@wp.pl",
        "stanisław..wójcik@wp.pl",
        ".ó@wp.pl",
        "ó@",
        "ó@wp..pl",
        "ó\u200b@wp.pl",
    ],
)
def test_a_malformed_internationalised_address_is_refused_with_a_clear_400(public_api, typed):
    response = public_api.post(
        "/api/v1/requests/", {"kind": "access", "identity": {"email": typed}}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["field"].endswith("email")


def test_the_public_form_accepts_an_internationalised_address(client):
    page = client.get("/")
    assert 'type="email"' not in page.content.decode()  # browsers refuse non-ASCII local parts
    response = client.post("/", {"kind": "access", "email": "Stanisław.Wójcik@wp.pl"})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert DataRequest.objects.get().email == STANISLAW


def _sqlite_store(tmp_path) -> str:
    path = tmp_path / "shop.sqlite3"
    with sqlite3.connect(path) as conn:
        for statement in ROWS:
            conn.execute(statement)
    return f"sqlite:///{path}"


def _postgres_store(url: str) -> str:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for statement in ROWS:
            conn.execute(sa.text(statement))
    engine.dispose()
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path, settings):
    settings.DATA_DIR = tmp_path / "data"
    if request.param == "sqlite":
        return _sqlite_store(tmp_path)
    return _postgres_store(request.getfixturevalue("postgres_database"))


def test_a_store_holding_an_internationalised_address_finds_and_packages_its_records(
    store_url, public_api, file_request, staff_api, django_capture_on_commit_callbacks
):
    kind = "sqlite" if store_url.startswith("sqlite") else "postgresql"
    ConnectedStore.objects.create(name="shop", kind=kind, url=store_url, map_yaml=MAP)
    reference = file_request(kind="access", email="Stanisław.Wójcik@WP.pl")
    (message,) = mail.outbox
    assert message.to == [STANISLAW]
    verified = public_api.post(
        f"/api/v1/requests/{reference}/verify/", {"code": code_from(message)}
    )
    assert verified.status_code == 200, verified.content

    preview = staff_api.get(f"/api/v1/staff/requests/{reference}/preview/").json()
    collections = preview["stores"]["shop"]["collections"]
    assert (collections["customers"]["count"], collections["orders"]["count"]) == (1, 1)
    assert collections["customers"]["sample"][0]["email"] == STANISLAW

    detail = approve(staff_api, django_capture_on_commit_callbacks, reference)
    assert detail["status"] == "completed", detail
    package = staff_api.get(f"/api/v1/staff/requests/{reference}/package/")
    rows = data_json(zip_of(package))["stores"]["shop"]
    assert [r["id"] for r in rows["customers"]] == [1]  # not the ASCII look-alike
    assert [r["id"] for r in rows["orders"]] == [10]


def test_a_store_holding_the_punycode_form_of_a_domain_is_matched_and_erased(
    store_url, public_api, file_request, staff_api, django_capture_on_commit_callbacks
):
    kind = "sqlite" if store_url.startswith("sqlite") else "postgresql"
    ConnectedStore.objects.create(name="shop", kind=kind, url=store_url, map_yaml=MAP)
    reference = file_request(kind="erasure", email="Jürgen@BÜCHER.example")
    (message,) = mail.outbox
    verified = public_api.post(
        f"/api/v1/requests/{reference}/verify/", {"code": code_from(message)}
    )
    assert verified.status_code == 200, verified.content

    preview = staff_api.get(f"/api/v1/staff/requests/{reference}/preview/").json()
    collections = preview["stores"]["shop"]["collections"]
    assert (collections["customers"]["count"], collections["orders"]["count"]) == (2, 2)

    detail = approve(staff_api, django_capture_on_commit_callbacks, reference)
    assert detail["status"] == "completed", detail
    engine = sa.create_engine(store_url)
    with engine.connect() as conn:
        customers = sorted(r[0] for r in conn.execute(sa.text("SELECT id FROM customers")))
        orders = sorted(r[0] for r in conn.execute(sa.text("SELECT id FROM orders")))
    engine.dispose()
    assert customers == [1, 2, 5]  # both forms of the address gone, the look-alike kept
    assert orders == [10, 11, 14]


class _Inbox:
    def __init__(self):
        self.envelopes = []
        self.arrived = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        self.arrived.set()
        return "250 OK"


def test_the_code_reaches_an_internationalised_address_over_smtputf8(settings, file_request):
    from email import message_from_bytes, policy

    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, enable_SMTPUTF8=True)
    controller.start()
    try:
        settings.EMAIL_BACKEND = "requests.mail_smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
        settings.DEFAULT_FROM_EMAIL = "privacy@portal.test"
        file_request(email="Stanisław.Wójcik@wp.pl")
        assert inbox.arrived.wait(30)
    finally:
        controller.stop()
    (envelope,) = inbox.envelopes
    assert envelope.rcpt_tos == [STANISLAW]
    assert "SMTPUTF8" in [option.upper() for option in envelope.mail_options]
    message = message_from_bytes(envelope.original_content, policy=policy.SMTPUTF8)
    assert message["To"] == STANISLAW
    assert len(code_from(message)) == 6
    assert "code" in body_of(message).lower()
