"""The webhook erase is idempotent per request *and* collection (docs/webhook-protocol.md): the
portal sends one erase per collection with the same request id, and a service that follows the
protocol (the tests' service does) erases every collection, while a repeated call for the same
pair answers the same job and erases nothing more."""

from __future__ import annotations

import pytest

from requests.connectors.registry import connector_for
from requests.engine.erasure import erase_person
from requests.engine.storemap import StoreMap
from tests.engine.erasure_helpers import HASH_KEY
from tests.engine.webhook_server import WebhookService

SECRET = "test-signing-secret-0123456789"
ADA = "ada@example.com"
MAP = StoreMap.model_validate(
    {
        "collections": {
            "tickets": {"key": ["id"], "fields": {"email": {"identity": "email"}}},
            "surveys": {"key": ["id"], "fields": {"email": {"identity": "email"}}},
        }
    }
)


@pytest.fixture
def service():
    records = {
        "tickets": [{"id": 1, "email": ADA}, {"id": 2, "email": "bob@example.com"}],
        "surveys": [{"id": 7, "email": ADA}, {"id": 8, "email": ADA}],
    }
    with WebhookService(SECRET, records) as running:
        yield running


def _connect(url):
    return connector_for(
        "webhook",
        url,
        MAP,
        name="helpdesk",
        timeout=5.0,
        options={"secret": SECRET, "allow_private": True},
    )


def test_every_collection_of_one_request_is_erased_though_they_share_the_request_id(service):
    with _connect(service.url) as connector:
        result = erase_person(
            {"helpdesk": connector}, {"email": ADA}, store="helpdesk", hash_key=HASH_KEY,
            request_id="DSR-1",
        )  # fmt: skip
    assert service.records == {"tickets": [{"id": 2, "email": "bob@example.com"}], "surveys": []}
    erased = {name: c["deleted"] for name, c in result.to_json()["collections"].items()}
    assert erased == {"tickets": 1, "surveys": 2}


def test_a_repeated_erase_of_the_same_request_and_collection_answers_the_same_job(service):
    surveys = MAP.collections["surveys"]
    with _connect(service.url) as connector:
        first = connector.erase({"email": [ADA]}, request_id="DSR-2", collection=surveys)
        service.records["surveys"].append({"id": 9, "email": ADA})  # came back meanwhile
        again = connector.erase({"email": [ADA]}, request_id="DSR-2", collection=surveys)
    assert again == first == {"status": "done", "erased": 2, "job": "job-DSR-2-surveys"}
    assert service.records["surveys"] == [{"id": 9, "email": ADA}]  # the repeat erased nothing
