"""Helpers for the access request tests: a person's request taken through the API, and stores."""

from __future__ import annotations

import io
import json
import zipfile

from django.core import mail

from requests.engine.store import Record
from requests.models import ConnectedStore
from tests.conftest import code_from


def file_and_verify(public_api, file_request, *, kind="access", email="ada@example.com") -> str:
    """File through the public API and verify with the emailed code; returns the reference."""
    before = len(mail.outbox)
    reference = file_request(kind=kind, email=email)
    assert len(mail.outbox) == before + 1, "no verification email"
    code = code_from(mail.outbox[-1])
    response = public_api.post(f"/api/v1/requests/{reference}/verify/", {"code": code})
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "in_review"
    return reference


def verify_phone(public_api, reference: str) -> None:
    """Prove the request's phone as the person would: ask for the text message (the console
    sender keeps it in `requests.sms.outbox`) and type its code back."""
    import re

    from requests import sms

    sent = public_api.post(f"/api/v1/requests/{reference}/verify-phone/", {}, format="json")
    assert sent.status_code == 202, sent.content
    message = sms.outbox[-1]
    assert message.reference == reference
    code = re.search(r"\b(\d{6})\b", message.text).group(1)
    checked = public_api.post(f"/api/v1/requests/{reference}/verify-phone/", {"code": code})
    assert checked.status_code == 200, checked.content


def approve(staff_api, capture, reference: str) -> dict:
    """Approve through the staff API and run what the approval queued, as workers would."""
    with capture(execute=True):
        response = staff_api.post(f"/api/v1/staff/requests/{reference}/approve/")
    assert response.status_code == 200, response.content
    return staff_api.get(f"/api/v1/staff/requests/{reference}/").json()


def files_store(name: str, folder, map_yaml: str = "") -> ConnectedStore:
    folder.mkdir(parents=True, exist_ok=True)
    return ConnectedStore.objects.create(
        name=name, kind="files", url=folder.as_uri(), map_yaml=map_yaml
    )


class FakeFinder:
    """Stands in for the finder: hands the sink the records given per store, whatever the identity.

    Used by the tests of delivery and of the order of access and erasure, which are about what the
    portal does with records, not about finding them (the Chinook tests use the real finder)."""

    def __init__(self) -> None:
        self.records: dict[str, list[tuple[str, dict]]] = {}
        self.calls = 0

    def add(self, store: str, collection: str, *rows: dict) -> None:
        self.records.setdefault(store, []).extend((collection, row) for row in rows)

    def __call__(self, identity, connectors, sink) -> None:
        self.calls += 1
        for store in connectors:
            for collection, data in self.records.get(store, []):
                sink(Record(store=store, collection=collection, key=(), data=dict(data)))


def open_zip(content: bytes) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(content))


def zip_of(response) -> zipfile.ZipFile:
    return open_zip(b"".join(response.streaming_content))


def data_json(archive: zipfile.ZipFile) -> dict:
    return json.loads(archive.read("data.json"))
