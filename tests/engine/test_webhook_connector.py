"""The webhook connector against a real HTTP service that implements the signed protocol."""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest

from requests.connectors import webhook
from requests.connectors.registry import connector_for
from requests.connectors.webhook import sign, verify_signature
from requests.engine.store import PermanentStoreError, TransientStoreError
from requests.engine.storemap import StoreMap
from tests.engine.webhook_server import WebhookService

SECRET = "test-signing-secret-0123456789"

TICKETS = [
    {"id": 1, "email": "ada@example.com", "customer_id": 12, "subject": "Refund"},
    {"id": 2, "email": "Ada@Example.com", "customer_id": 12, "subject": "Delivery"},
    {"id": 3, "email": "bob@example.com", "customer_id": 123, "subject": "Invoice"},
]

STORE_MAP = StoreMap.model_validate(
    {
        "collections": {
            "tickets": {
                "key": ["id"],
                "fields": {
                    "email": {"identity": "email"},
                    "customer_id": {
                        "references": {"store": "shop", "collection": "customers", "field": "id"}
                    },
                },
            }
        }
    }
)
TICKETS_COLLECTION = STORE_MAP.collections["tickets"]


@pytest.fixture
def service():
    with WebhookService(SECRET, {"tickets": [dict(t) for t in TICKETS]}) as running:
        yield running


def connect(url, *, secret=SECRET, allow_private=True, timeout=5.0, **options):
    options = {"secret": secret, "allow_private": allow_private, **options}
    return connector_for(
        "webhook", url, STORE_MAP, name="helpdesk", timeout=timeout, options=options
    )


def test_a_signed_find_returns_the_records_of_the_identity_and_sends_its_type(service):
    with connect(service.url, request_id="REQ-1") as connector:
        records = list(connector.find(TICKETS_COLLECTION, "email", ["ada@example.com"]))

    assert sorted(r["id"] for r in records) == [1, 2]
    (call,) = service.calls
    assert call["signature_ok"]
    assert call["payload"]["action"] == "find"
    assert call["payload"]["request_id"] == "REQ-1"
    assert call["payload"]["collection"] == "tickets"
    assert call["payload"]["identities"] == {"email": ["ada@example.com"]}


def test_a_reference_field_is_sent_under_its_own_name_with_the_referenced_values(service):
    with connect(service.url) as connector:
        records = list(connector.find(TICKETS_COLLECTION, "customer_id", [123]))

    assert [r["id"] for r in records] == [3]
    assert service.calls[0]["payload"]["identities"] == {"customer_id": [123]}
    assert service.calls[0]["payload"]["field"] == "customer_id"


def test_large_answers_are_paged_with_the_cursor_until_it_is_null(service):
    service.records["tickets"] = [{"id": n, "email": "ada@example.com"} for n in range(25)]
    service.max_page = 10

    with connect(service.url) as connector:
        ids = [r["id"] for r in connector.find(TICKETS_COLLECTION, "email", ["ada@example.com"])]

    assert ids == list(range(25))
    assert [c["payload"]["cursor"] for c in service.calls] == [None, "10", "20"]


def test_the_service_rejects_a_wrong_secret_and_the_connector_reports_a_permanent_401(service):
    with connect(service.url, secret="not-the-secret") as connector:
        with pytest.raises(PermanentStoreError, match="HTTP 401") as raised:
            list(connector.find(TICKETS_COLLECTION, "email", ["ada@example.com"]))
        result = connector.check()

    assert [c["signature_ok"] for c in service.calls] == [False, False]
    assert "not-the-secret" not in str(raised.value)
    assert not result.ok and "check the shared secret" in result.message


def test_the_service_rejects_an_altered_body_and_a_stale_timestamp(service):
    body = json.dumps({"action": "ping", "protocol": 1}).encode()
    fresh = str(int(time.time()))
    stale = str(int(time.time()) - 301)

    def post(content, timestamp, signature):
        headers = {"X-Portal-Timestamp": timestamp, "X-Portal-Signature": signature}
        return httpx.post(service.url, content=content, headers=headers, timeout=5).status_code

    assert post(body, fresh, sign(SECRET, fresh, body)) == 200
    assert post(body.replace(b"ping", b"find"), fresh, sign(SECRET, fresh, body)) == 401
    assert post(body, stale, sign(SECRET, stale, body)) == 401
    assert post(body, fresh, "sha256=" + "0" * 64) == 401


def test_verify_signature_accepts_a_fresh_genuine_call_and_nothing_else():
    body = b'{"action":"ping"}'
    signature = sign(SECRET, 1_700_000_000, body)

    assert signature.startswith("sha256=") and len(signature) == 7 + 64
    assert verify_signature(SECRET, "1700000000", body, signature, now=1_700_000_299)
    assert not verify_signature(SECRET, "1700000000", body, signature, now=1_700_000_301)
    assert not verify_signature(SECRET, "1700000000", body, signature, now=1_699_999_699)
    assert not verify_signature("other", "1700000000", body, signature, now=1_700_000_000)
    assert not verify_signature(SECRET, "1700000001", body, signature, now=1_700_000_000)
    assert not verify_signature(SECRET, "1700000000", body + b" ", signature, now=1_700_000_000)
    assert not verify_signature(SECRET, None, body, signature, now=1_700_000_000)
    assert not verify_signature(SECRET, "soon", body, signature, now=1_700_000_000)


def test_a_service_slower_than_the_timeout_is_a_transient_error(service):
    service.delay = 3.0

    started = time.monotonic()
    with (
        connect(service.url, timeout=0.5) as connector,
        pytest.raises(TransientStoreError, match=r"did not answer within 0.5 s"),
    ):
        list(connector.find(TICKETS_COLLECTION, "email", ["ada@example.com"]))

    assert time.monotonic() - started < 2.5


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, TransientStoreError),
        (503, TransientStoreError),
        (429, TransientStoreError),
        (400, PermanentStoreError),
        (404, PermanentStoreError),
        (403, PermanentStoreError),
        (302, PermanentStoreError),
    ],
)
def test_server_errors_are_transient_and_client_errors_permanent_naming_the_status(
    service, status, error
):
    service.fail_with = status

    with (
        connect(service.url) as connector,
        pytest.raises(error, match=f"HTTP {status}") as raised,
    ):
        list(connector.find(TICKETS_COLLECTION, "email", ["ada@example.com"]))

    assert type(raised.value) is error


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "localhost", "10.1.2.3", "169.254.169.254", "[::1]", "[::ffff:127.0.0.1]"],
)
def test_private_loopback_and_link_local_addresses_are_refused_unless_allowed(service, host):
    url = f"http://{host}:{service.port}/portal-hook"

    with connect(url, allow_private=False, allow_http=True, timeout=1) as connector:
        result = connector.check()
        with pytest.raises(PermanentStoreError, match="private, loopback or link-local"):
            list(connector.find(TICKETS_COLLECTION, "email", ["ada@example.com"]))

    assert not result.ok and "refused unless the portal allows" in result.message
    assert service.calls == []


def test_a_public_host_is_reached_at_the_address_that_was_checked_with_its_own_host_name(
    service, monkeypatch
):
    # Only the classification changes: 127.0.0.1 counts as public so that the pinned path, which
    # public services take, runs against the real local server.
    monkeypatch.setattr(webhook, "_blocked", lambda address: False)
    url = f"http://localhost:{service.port}/portal-hook"

    with connect(url, allow_private=False, allow_http=True) as connector:
        records = list(connector.find(TICKETS_COLLECTION, "email", ["bob@example.com"]))

    assert [r["id"] for r in records] == [3]
    assert service.calls[0]["host"] == f"localhost:{service.port}"


def test_plain_http_to_a_public_address_is_refused_before_any_connection():
    with (
        connect("http://93.184.215.14/hook", allow_private=False) as connector,
        pytest.raises(PermanentStoreError, match="plain http is refused"),
    ):
        list(connector.find(TICKETS_COLLECTION, "email", ["ada@example.com"]))


def test_a_service_where_nothing_listens_fails_the_check_clearly_and_find_is_transient():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with connect(f"http://127.0.0.1:{port}/hook", timeout=2) as connector:
        result = connector.check()
        with pytest.raises(TransientStoreError):
            list(connector.find(TICKETS_COLLECTION, "email", ["ada@example.com"]))

    assert not result.ok
    assert result.message == f"could not connect to webhook http://127.0.0.1:{port}"


def test_the_check_pings_and_names_a_collection_the_service_does_not_know(service):
    with connect(service.url) as connector:
        healthy = connector.check()
    service.records = {"orders": []}
    with connect(service.url) as connector:
        unknown = connector.check()

    assert healthy.ok and "answered ping" in healthy.message
    assert not unknown.ok
    assert unknown.problems == ["collection tickets: the service does not know 'tickets'"]
    assert all(c["payload"]["action"] == "ping" for c in service.calls)


def test_an_answer_that_does_not_follow_the_protocol_is_a_permanent_error(service):
    service.answer_raw = b"<html>maintenance</html>"
    with (
        connect(service.url) as connector,
        pytest.raises(PermanentStoreError, match="not JSON"),
    ):
        list(connector.find(TICKETS_COLLECTION, "email", ["ada@example.com"]))
    service.answer_raw = b'{"records": [{"collection": "tickets"}]}'
    with (
        connect(service.url) as connector,
        pytest.raises(PermanentStoreError, match="`data` object"),
    ):
        list(connector.find(TICKETS_COLLECTION, "email", ["ada@example.com"]))


def test_erase_reports_done_with_a_count_and_a_pending_erase_is_followed_by_status(service):
    with connect(service.url) as connector:
        done = connector.erase({"email": ["ada@example.com"]}, request_id="REQ-1")
        left = list(connector.find(TICKETS_COLLECTION, "email", ["ada@example.com"]))
        service.pending_erase = True
        pending = connector.erase({"customer_id": [123]}, request_id="REQ-2")
        later = connector.status(pending["job"], request_id="REQ-2")

    assert done == {"status": "done", "erased": 2, "job": "job-REQ-1"}
    assert left == []
    assert pending["status"] == "pending" and pending["job"] == "job-REQ-2"
    assert later["status"] == "done" and later["erased"] == 1
    assert [r["id"] for r in service.records["tickets"]] == []
    assert all(c["signature_ok"] for c in service.calls)
