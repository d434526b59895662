"""Identity assurance through the API against real SQLite stores: only identifiers the person
proved (the email by its code, a phone by a text-message code) or staff confirmed are searched.

The attack of issue 8: filing with one's own email and a victim's phone, name or account id, and
verifying one's own mailbox, must show the victim's records only as candidates (counts, no
values), put none of them in the package and erase none of them."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from django.core import mail

from requests import sms
from requests.models import AccessPackage, AuditEvent, ConnectedStore
from tests.access_fixtures import approve, data_json, zip_of
from tests.conftest import code_from

pytestmark = pytest.mark.django_db

ATTACKER = "attacker@evil.example"
VICTIM = {
    "email": "victim@example.com",
    "phone": "+447700900123",
    "name": "Victor Victim",
    "account_id": "V-42",
}
ADA_PHONE = "+33612345678"

SHOP_MAP = """
collections:
  customers:
    key: [id]
    fields:
      email: {identity: email}
      phone: {identity: phone}
      name: {identity: name}
      account_id: {identity: account_id}
  orders:
    key: [id]
    fields:
      customer_id: {references: {collection: customers, field: id}}
"""


def _shop(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        conn.executescript(
            """
            CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT, phone TEXT, name TEXT,
                                    account_id TEXT);
            CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, item TEXT);
            INSERT INTO customers VALUES
              (2, 'victim@example.com', '+447700900123', 'Victor Victim', 'V-42'),
              (3, 'ada@example.com', '+33612345678', 'Ada Lovelace', 'ADA-1'),
              (4, 'ada.old@example.net', '+33612345678', 'A. Lovelace', 'ADA-OLD'),
              (5, 'ada@example.com', '+441234567890', 'Ada Lovelace', NULL);
            INSERT INTO orders VALUES (20, 2, 'victim order'), (21, 2, 'victim order 2'),
                                      (30, 3, 'engine'), (40, 4, 'old engine');
            """
        )
    return f"sqlite:///{path}"


@pytest.fixture
def shop(tmp_path, settings):
    settings.DATA_DIR = tmp_path / "data"
    path = tmp_path / "shop.sqlite3"
    ConnectedStore.objects.create(name="shop", kind="sqlite", url=_shop(path), map_yaml=SHOP_MAP)
    return path


def _rows(path: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


def _file_and_verify_email(public_api, file_request, kind: str, **identity) -> str:
    before = len(mail.outbox)
    reference = file_request(kind=kind, **identity)
    assert len(mail.outbox) == before + 1
    response = public_api.post(
        f"/api/v1/requests/{reference}/verify/", {"code": code_from(mail.outbox[-1])}
    )
    assert response.status_code == 200, response.content
    return reference


def _preview(staff_api, reference: str) -> dict:
    response = staff_api.get(f"/api/v1/staff/requests/{reference}/preview/")
    assert response.status_code == 200, response.content
    return response.json()


def _package_rows(staff_api, reference: str) -> dict:
    response = staff_api.get(f"/api/v1/staff/requests/{reference}/package/")
    assert response.status_code == 200
    return data_json(zip_of(response))["stores"].get("shop", {})


ATTACKS = [
    pytest.param("phone", VICTIM["phone"], id="phone"),
    pytest.param("name", VICTIM["name"], id="name"),
    pytest.param("account_id", VICTIM["account_id"], id="account_id"),
]


@pytest.mark.parametrize(("identity_type", "value"), ATTACKS)
def test_an_access_request_with_someone_elses_identifier_shows_their_records_only_as_candidates(
    shop,
    identity_type,
    value,
    public_api,
    file_request,
    staff_api,
    django_capture_on_commit_callbacks,
):
    reference = _file_and_verify_email(
        public_api, file_request, "access", email=ATTACKER, **{identity_type: value}
    )

    preview = _preview(staff_api, reference)
    assert preview["total"] == 0
    assert preview["stores"]["shop"]["collections"]["customers"]["sample"] == []
    candidates = preview["candidates"]
    assert candidates["identifier_types"] == [identity_type]
    assert candidates["stores"]["shop"]["collections"] == {
        "customers": {"count": 1},
        "orders": {"count": 2},
    }
    text = json.dumps(preview)
    for victim_value in VICTIM.values():
        assert victim_value not in text  # counts only: nothing of the victim's is shown
    states = {s["type"]: s for s in preview["identifiers"]}
    assert states["email"]["verified"] and states["email"]["method"] == "email_code"
    assert not states[identity_type]["verified"] and not states[identity_type]["searched"]

    detail = approve(staff_api, django_capture_on_commit_callbacks, reference)
    assert detail["status"] == "completed", detail
    assert AccessPackage.objects.get(request__reference=reference).records == 0
    package = json.dumps(_package_rows(staff_api, reference))
    for victim_value in VICTIM.values():
        assert victim_value not in package


@pytest.mark.parametrize(("identity_type", "value"), ATTACKS)
def test_an_erasure_with_someone_elses_identifier_erases_nothing_of_theirs(
    shop,
    identity_type,
    value,
    public_api,
    file_request,
    staff_api,
    django_capture_on_commit_callbacks,
):
    before = _rows(shop, "SELECT * FROM customers ORDER BY id") + _rows(
        shop, "SELECT * FROM orders ORDER BY id"
    )
    reference = _file_and_verify_email(
        public_api, file_request, "erasure", email=ATTACKER, **{identity_type: value}
    )
    assert _preview(staff_api, reference)["candidates"]["total"] == 3

    detail = approve(staff_api, django_capture_on_commit_callbacks, reference)

    assert detail["status"] == "completed", detail["attention_reason"]
    after = _rows(shop, "SELECT * FROM customers ORDER BY id") + _rows(
        shop, "SELECT * FROM orders ORDER BY id"
    )
    assert after == before
    certificate = staff_api.get(f"/api/v1/staff/requests/{reference}/certificate/").json()
    assert certificate["totals"]["deleted"] == 0
    assert certificate["identity_types"] == ["email"]
    # Only the proven email is kept in the suppression ledger, never the victim's identifier.
    assert certificate["suppression"]["types"] == ["email"]


def test_a_custom_identity_type_cannot_be_filed_so_it_cannot_be_searched(public_api, shop):
    response = public_api.post(
        "/api/v1/requests/",
        {"kind": "access", "identity": {"email": ATTACKER, "loyalty_card": "LC-1"}},
        format="json",
    )
    assert response.status_code == 400
    assert "loyalty_card" in response.json()["error"]["field"]


def test_a_record_found_by_the_email_with_a_different_phone_is_flagged_without_values(
    shop, public_api, file_request, staff_api
):
    reference = _file_and_verify_email(
        public_api, file_request, "access", email="ada@example.com", phone=ADA_PHONE
    )
    preview = _preview(staff_api, reference)
    customers = preview["stores"]["shop"]["collections"]["customers"]
    # Rows 3 and 5 hold her email; row 5's phone is not the one she gave.
    assert customers["count"] == 2
    assert customers["identity_mismatch"] == {"count": 1, "types": ["phone"]}
    assert preview["identity_mismatches"] == 1
    assert preview["stores"]["shop"]["collections"]["orders"]["identity_mismatch"]["count"] == 0
    # Row 4 holds only her (unproven) phone: a candidate until she proves it.
    assert preview["candidates"]["stores"]["shop"]["collections"] == {
        "customers": {"count": 1},
        "orders": {"count": 1},
    }


def test_a_person_who_proves_their_phone_by_text_message_gets_the_records_held_under_it(
    shop, public_api, file_request, staff_api, django_capture_on_commit_callbacks, settings
):
    settings.PORTAL_SMS_SENDER = "console"
    reference = _file_and_verify_email(
        public_api, file_request, "access", email="ada@example.com", phone=ADA_PHONE
    )
    sms.outbox.clear()
    sent = public_api.post(f"/api/v1/requests/{reference}/verify-phone/", {}, format="json")
    assert sent.status_code == 202, sent.content
    assert sent.json()["phone"] == "code_sent"
    (message,) = sms.outbox
    assert message.to == ADA_PHONE and message.reference == reference
    wrong = public_api.post(f"/api/v1/requests/{reference}/verify-phone/", {"code": "000000"})
    right_code = code_from_text(message.text)
    assert wrong.status_code == 400 and right_code != "000000"
    assert wrong.json()["error"]["code"] == "wrong_code"
    assert "4 attempt(s) left" in wrong.json()["error"]["message"]

    checked = public_api.post(f"/api/v1/requests/{reference}/verify-phone/", {"code": right_code})
    assert checked.status_code == 200, checked.content
    assert checked.json() == {"reference": reference, "status": "in_review", "phone": "verified"}

    preview = _preview(staff_api, reference)
    assert preview["stores"]["shop"]["collections"]["customers"]["count"] == 3
    assert preview["candidates"]["total"] == 0
    detail = approve(staff_api, django_capture_on_commit_callbacks, reference)
    assert detail["status"] == "completed", detail
    rows = _package_rows(staff_api, reference)
    assert sorted(r["id"] for r in rows["customers"]) == [3, 4, 5]
    assert sorted(r["id"] for r in rows["orders"]) == [30, 40]
    phone = next(s for s in detail["identifiers"] if s["type"] == "phone")
    assert (phone["verified"], phone["method"]) == (True, "sms_code")
    assert phone["verified_by"] == "subject"
    events = AuditEvent.objects.filter(request__reference=reference, action="identity.verified")
    assert [e.details for e in events] == [
        {"type": "email", "method": "email_code"},
        {"type": "phone", "method": "sms_code"},
    ]
    assert ADA_PHONE not in json.dumps([e.details for e in AuditEvent.objects.all()])


def code_from_text(text: str) -> str:
    import re

    match = re.search(r"\b(\d{6})\b", text)
    assert match, "no code in the text message"
    return match.group(1)


def test_staff_confirmation_makes_an_account_id_searchable_and_is_audited_without_the_note(
    shop, public_api, file_request, staff_api, django_capture_on_commit_callbacks
):
    reference = _file_and_verify_email(
        public_api, file_request, "access", email=ATTACKER, account_id="V-42"
    )
    assert _preview(staff_api, reference)["total"] == 0
    note = "Saw passport no. 12AB34567 sent through the information step"
    response = staff_api.post(
        f"/api/v1/staff/requests/{reference}/confirm-identity/",
        {"types": ["account_id"], "note": note},
        format="json",
    )
    assert response.status_code == 200, response.content
    account = next(s for s in response.json()["identifiers"] if s["type"] == "account_id")
    assert account["verified"] and account["method"] == "staff"
    assert account["verified_by"] == "staff:dpo" and account["searched"]

    preview = _preview(staff_api, reference)
    assert preview["stores"]["shop"]["collections"]["customers"]["count"] == 1
    assert preview["stores"]["shop"]["collections"]["orders"]["count"] == 2
    event = AuditEvent.objects.get(
        request__reference=reference, action="identity.confirmed_by_staff"
    )
    assert event.actor == "staff:dpo"
    assert event.details == {
        "types": ["account_id"],
        "note_length": len(note),
        "searched": ["account_id"],
    }
    assert "12AB34567" not in json.dumps([e.details for e in AuditEvent.objects.all()])

    detail = approve(staff_api, django_capture_on_commit_callbacks, reference)
    assert detail["status"] == "completed", detail
    assert sorted(r["id"] for r in _package_rows(staff_api, reference)["customers"]) == [2]


def test_a_name_confirmed_by_staff_is_still_never_searched_on_its_own(
    shop, public_api, file_request, staff_api
):
    reference = _file_and_verify_email(
        public_api, file_request, "access", email=ATTACKER, name="Victor Victim"
    )
    response = staff_api.post(
        f"/api/v1/staff/requests/{reference}/confirm-identity/",
        {"types": ["name"], "note": "Name on the ID card matches"},
        format="json",
    )
    assert response.status_code == 200
    name = next(s for s in response.json()["identifiers"] if s["type"] == "name")
    assert name["verified"] and not name["searched"]
    preview = _preview(staff_api, reference)
    assert preview["total"] == 0
    assert preview["candidates"]["total"] == 3


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ({"types": [], "note": "x"}, "types", "empty"),
        ({"types": ["phone"], "note": "seen"}, "types", "no phone"),
        ({"types": ["shoe_size"], "note": "seen"}, "types", "Unknown identity type"),
        ({"types": ["email"]}, "note", "required"),
        ({"types": ["email"], "note": "seen"}, "types", "already verified (email_code)"),
        ({"types": ["email"], "note": "  "}, "note", ""),
    ],
)
def test_confirm_identity_refuses_bad_input_with_a_clear_400(
    shop, public_api, file_request, staff_api, body, field, fragment
):
    reference = _file_and_verify_email(public_api, file_request, "access", email=ATTACKER)
    response = staff_api.post(
        f"/api/v1/staff/requests/{reference}/confirm-identity/", body, format="json"
    )
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["field"] == field
    assert fragment in error["message"] + error["code"]


def test_confirm_identity_of_a_closed_or_unverified_request_is_refused(
    shop, public_api, file_request, staff_api
):
    unverified = file_request(kind="access", email=ATTACKER, phone=VICTIM["phone"])
    response = staff_api.post(
        f"/api/v1/staff/requests/{unverified}/confirm-identity/",
        {"types": ["phone"], "note": "seen"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "not_reviewable"
    reference = _file_and_verify_email(
        public_api, file_request, "access", email=ATTACKER, phone=VICTIM["phone"]
    )
    rejected = staff_api.post(
        f"/api/v1/staff/requests/{reference}/reject/",
        {"reason": "identity_not_confirmed"},
        format="json",
    )
    assert rejected.status_code == 200, rejected.content
    response = staff_api.post(
        f"/api/v1/staff/requests/{reference}/confirm-identity/",
        {"types": ["phone"], "note": "seen"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "request_closed"


def test_the_phone_cannot_be_verified_before_the_email_nor_twice(
    shop, public_api, file_request, settings
):
    settings.PORTAL_SMS_SENDER = "console"
    reference = file_request(kind="access", email="ada@example.com", phone=ADA_PHONE)
    sms.outbox.clear()
    response = public_api.post(f"/api/v1/requests/{reference}/verify-phone/", {})
    assert response.status_code == 400
    assert "email address first" in json.dumps(response.json())
    assert list(sms.outbox) == []
    no_phone = _file_and_verify_email(public_api, file_request, "access", email="x@example.com")
    response = public_api.post(f"/api/v1/requests/{no_phone}/verify-phone/", {})
    assert response.status_code == 400 and response.json()["error"]["code"] == "no_phone"


@pytest.mark.parametrize("kind", ["access", "erasure"])
def test_the_attack_on_the_chinook_sample_store_finds_luis_only_as_a_candidate(
    kind,
    request,
    tmp_path,
    settings,
    public_api,
    file_request,
    staff_api,
    django_capture_on_commit_callbacks,
):
    from tests.engine import chinook
    from tests.engine.erasure_helpers import counts

    settings.DATA_DIR = tmp_path / "data"
    url = chinook.load_into("sqlite", request, tmp_path)
    drafted = chinook.connect_through_api(staff_api, "sqlite", url)
    tables = list(drafted["collections"])
    before = counts(url, tables)
    reference = _file_and_verify_email(
        public_api, file_request, kind, email=ATTACKER, phone="+55 (12) 3923-5555"
    )

    preview = _preview(staff_api, reference)
    assert preview["total"] == 0
    found = preview["candidates"]["stores"]["chinook"]["collections"]
    assert found["Customer"] == {"count": 1}
    assert (found["Invoice"], found["InvoiceLine"]) == ({"count": 7}, {"count": 38})
    assert "Gonçalves" not in json.dumps(preview) and chinook.LUIS_EMAIL not in json.dumps(preview)

    detail = approve(staff_api, django_capture_on_commit_callbacks, reference)
    assert detail["status"] == "completed", detail["attention_reason"]
    assert counts(url, tables) == before
    if kind == "access":
        assert AccessPackage.objects.get(request__reference=reference).records == 0
