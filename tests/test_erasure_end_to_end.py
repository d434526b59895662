"""Erasing Luís Gonçalves from Chinook end to end through the API, in SQLite, PostgreSQL and
MariaDB, with the real engine: the store is connected with discovery, the request is filed,
verified and approved; exactly his 1 customer, 7 invoices and 38 invoice lines go, every other
table is unchanged, the sweep finds nothing, and the certificate says so without his email."""

from __future__ import annotations

import json

import pytest
import yaml
from django.core import mail

from requests.models import AuditEvent, SuppressionEntry
from requests.services.audit import audit_verify
from tests.access_fixtures import approve
from tests.conftest import body_of
from tests.engine import chinook
from tests.engine.chinook import LUIS_COUNTS, LUIS_EMAIL
from tests.engine.erasure_helpers import counts, rows
from tests.erasure_fixtures import file_erasure

pytestmark = pytest.mark.django_db

TAX_BASIS = "Tax law keeps invoices for 10 years (Art. 17(3)(b) GDPR)"


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def chinook_store(request, tmp_path, staff_api, settings):
    """Chinook in one engine, connected through the staff API with a discovered map."""
    settings.DATA_DIR = tmp_path / "data"
    kind = request.param
    url = chinook.load_into(kind, request, tmp_path)
    drafted = chinook.connect_through_api(staff_api, kind, url)
    return kind, url, chinook.NAMES[kind], list(drafted["collections"])


def _luis(public_api, file_request):
    return file_erasure(public_api, file_request, email="LUISG@Embraer.com.br ")


def test_erasing_luis_through_the_api_removes_exactly_his_rows_and_certifies_it(
    chinook_store, public_api, file_request, staff_api, django_capture_on_commit_callbacks
):
    kind, url, names, tables = chinook_store
    before = counts(url, tables)
    others = f"{chinook.NAMES[kind]['customer_id']} <> 1"
    other_customers = rows(url, names["customer"], others)
    reference = _luis(public_api, file_request)
    preview = staff_api.get(f"/api/v1/staff/requests/{reference}/preview/").json()
    assert preview["stores"]["chinook"]["collections"][names["invoice_line"]]["count"] == 38

    detail = approve(staff_api, django_capture_on_commit_callbacks, reference)

    assert detail["status"] == "completed", detail["attention_reason"]
    after = counts(url, tables)
    gone = {
        table: before[table] - after[table] for table in tables if before[table] != after[table]
    }
    expected = {names[role]: n for role, n in LUIS_COUNTS.items()}
    assert gone == expected  # and every other table's rows unchanged
    assert rows(url, names["customer"], others) == other_customers
    (job,) = detail["jobs"]
    assert job["state"] == "done" and job["attempts"] == 1
    assert {
        name: c["deleted"] for name, c in job["counts"]["collections"].items() if c["deleted"]
    } == (expected)

    response = staff_api.get(f"/api/v1/staff/requests/{reference}/certificate/")
    assert response.status_code == 200
    assert LUIS_EMAIL not in response.content.decode().lower()
    certificate = response.json()
    assert certificate["sweep"]["remaining"] == 0 and certificate["sweep"]["stores"] == {}
    assert certificate["totals"]["deleted"] == 46
    (store,) = certificate["stores"]
    assert {c["name"]: c["deleted"] for c in store["collections"] if c["deleted"]} == expected
    html = staff_api.get(f"/api/v1/staff/requests/{reference}/certificate/?format=html")
    page = html.content.decode()
    assert html.status_code == 200 and "nothing left" in page
    assert LUIS_EMAIL not in page.lower() and "Gonçalves" not in page
    assert f'<td>{names["invoice_line"]}</td><td class="n">38</td>' in page

    completed = AuditEvent.objects.get(request__reference=reference, action="request.completed")
    assert completed.details["certificate_sha256"] == certificate["certificate_sha256"]
    assert (
        LUIS_EMAIL
        not in json.dumps(list(AuditEvent.objects.values_list("details", flat=True))).lower()
    )
    assert audit_verify().ok
    assert SuppressionEntry.objects.filter(identity_type="email").count() == 1
    email = mail.outbox[-1]
    assert email.to == [LUIS_EMAIL] and "erased" in email.subject
    assert f"- {names['invoice_line']} (chinook): 38 records erased" in body_of(email)


def test_with_invoices_held_for_tax_law_they_stay_and_the_certificate_gives_the_basis(
    chinook_store, public_api, file_request, staff_api, django_capture_on_commit_callbacks
):
    _kind, url, names, tables = chinook_store
    drafted = yaml.safe_load(staff_api.get("/api/v1/staff/stores/chinook/map/").json()["map"])
    for role in ("invoice", "invoice_line"):
        drafted["collections"][names[role]]["erasure"] = {"action": "hold", "basis": TAX_BASIS}
    updated = staff_api.put(
        "/api/v1/staff/stores/chinook/map/",
        {"map": yaml.safe_dump(drafted, sort_keys=False)},
        format="json",
    )
    assert updated.status_code == 200, updated.content
    before = counts(url, tables)
    reference = _luis(public_api, file_request)

    detail = approve(staff_api, django_capture_on_commit_callbacks, reference)

    assert detail["status"] == "completed", detail["attention_reason"]
    assert counts(url, tables) == before  # held invoices keep the customer: masked, not deleted
    certificate = staff_api.get(f"/api/v1/staff/requests/{reference}/certificate/").json()
    held = {row["collection"]: row for row in certificate["held"]}
    assert held[names["invoice"]]["count"] == 7
    assert held[names["invoice_line"]]["count"] == 38
    assert held[names["invoice"]]["basis"] == TAX_BASIS
    assert certificate["totals"]["masked"] >= 1  # the customer, by the fallback
    assert certificate["sweep"]["remaining"] == 0
    body = body_of(mail.outbox[-1])
    assert f"Why: {TAX_BASIS}" in body


def test_a_crm_found_through_the_shop_is_erased_first_and_the_fallback_is_certified(
    tmp_path, settings, public_api, file_request, staff_api, django_capture_on_commit_callbacks
):
    from requests.models import Job
    from tests.erasure_fixtures import PERSON, shop_and_crm

    settings.DATA_DIR = tmp_path / "data"
    shop, crm = shop_and_crm(tmp_path)  # the shop holds orders for tax law
    bob = {
        "customers": rows(shop.url, "customers", "id = 2"),
        "orders": rows(shop.url, "orders", "customer_id = 2"),
        "contacts": rows(crm.url, "contacts", "shop_customer_id = 2"),
    }
    reference = file_erasure(public_api, file_request)

    detail = approve(staff_api, django_capture_on_commit_callbacks, reference)

    assert detail["status"] == "completed", detail["attention_reason"]
    jobs = {job.store.name: job for job in Job.objects.filter(request__reference=reference)}
    assert jobs["crm"].finished_at <= jobs["shop"].started_at  # the CRM first: found via the shop
    assert rows(crm.url, "contacts", "shop_customer_id = 1") == []
    # Ada's orders stay for tax law, so her customer row is masked rather than deleted.
    assert len(rows(shop.url, "orders", "customer_id = 1")) == 2
    (ada,) = rows(shop.url, "customers", "id = 1")
    assert PERSON not in ada and "+442079460000" not in ada
    assert bob == {  # nobody else's data changed
        "customers": rows(shop.url, "customers", "id = 2"),
        "orders": rows(shop.url, "orders", "customer_id = 2"),
        "contacts": rows(crm.url, "contacts", "shop_customer_id = 2"),
    }
    certificate = staff_api.get(f"/api/v1/staff/requests/{reference}/certificate/").json()
    by_store = {s["store"]: {c["name"]: c for c in s["collections"]} for s in certificate["stores"]}
    assert by_store["crm"]["contacts"]["deleted"] == 1
    assert by_store["shop"]["orders"]["held"] == 2
    assert "Tax law" in by_store["shop"]["orders"]["basis"]
    customers = by_store["shop"]["customers"]
    assert customers["masked"] == 1 and customers["deleted"] == 0
    assert any("referenced by" in reason for reason in customers["reasons"]), customers
    assert certificate["sweep"]["remaining"] == 0


REFERRALS_MAP = """
collections:
  customers:
    key: [id]
    fields:
      email: {identity: email}
      name: {categories: [contact details]}
      referred_by:
        references: {collection: customers, field: id, follow: none, nullable: true}
    erasure: {action: delete, fallback: mask}
"""


def test_a_record_someone_else_refers_to_is_masked_not_deleted_and_theirs_is_untouched(
    tmp_path, settings, public_api, file_request, staff_api, django_capture_on_commit_callbacks
):
    import sqlite3

    from requests.models import ConnectedStore

    settings.DATA_DIR = tmp_path / "data"
    path = tmp_path / "referrals.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT, name TEXT,
                                referred_by INTEGER REFERENCES customers(id));
        INSERT INTO customers VALUES (1, 'ada@example.com', 'Ada', NULL),
                                     (2, 'bob@example.com', 'Bob', 1),
                                     (3, 'eve@example.com', 'Eve', NULL);
        """
    )
    conn.commit()
    conn.close()
    url = f"sqlite:///{path}"
    ConnectedStore.objects.create(name="shop", kind="sqlite", url=url, map_yaml=REFERRALS_MAP)
    bob_before = rows(url, "customers", "id = 2")
    reference = file_erasure(public_api, file_request)

    detail = approve(staff_api, django_capture_on_commit_callbacks, reference)

    assert detail["status"] == "completed", detail["attention_reason"]
    assert rows(url, "customers", "id = 2") == bob_before  # Bob still says Ada referred him
    (ada,) = rows(url, "customers", "id = 1")  # kept for Bob's reference, but no longer Ada's
    assert "ada@example.com" not in ada and "Ada" not in ada
    certificate = staff_api.get(f"/api/v1/staff/requests/{reference}/certificate/").json()
    (customers,) = certificate["stores"][0]["collections"]
    assert (customers["deleted"], customers["masked"]) == (0, 1)
    assert any("referenced by" in reason for reason in customers["reasons"]), customers
    page = staff_api.get(f"/api/v1/staff/requests/{reference}/certificate/?format=html")
    assert customers["reasons"][0] in page.content.decode()
    assert certificate["sweep"]["remaining"] == 0


def test_a_recipient_that_erases_in_the_background_is_polled_until_done(
    tmp_path, settings, public_api, file_request, staff_api, django_capture_on_commit_callbacks
):
    from requests import tasks
    from requests.models import ConnectedStore
    from tests.engine.webhook_server import WebhookService
    from tests.erasure_fixtures import PERSON

    settings.DATA_DIR = tmp_path / "data"
    settings.PORTAL_WEBHOOK_ALLOW_PRIVATE = True
    capture = django_capture_on_commit_callbacks
    tickets = [
        {"id": 1, "email": PERSON, "subject": "Refund"},
        {"id": 2, "email": "bob@example.com", "subject": "Late"},
    ]
    with WebhookService("s3cret", {"tickets": tickets}) as service:
        service.pending_erase = True
        ConnectedStore.objects.create(
            name="helpdesk",
            kind="webhook",
            url=service.url,
            secret="s3cret",
            map_yaml="collections:\n  tickets:\n    key: [id]\n"
            "    fields:\n      email: {identity: email}\n",
        )
        reference = file_erasure(public_api, file_request)
        detail = approve(staff_api, capture, reference)
        (job,) = detail["jobs"]
        assert (detail["status"], job["state"], job["waiting_for"]) == (
            "processing",
            "waiting",
            "recipient",
        )
        erase = [c["payload"] for c in service.calls if c["payload"]["action"] == "erase"]
        assert erase[0]["request_id"] == reference
        assert erase[0]["identities"]["email"] == [PERSON]
        with capture(execute=True):
            tasks.erasure_recipients_check.delay()
        assert service.records["tickets"] == [tickets[1]]
    detail = staff_api.get(f"/api/v1/staff/requests/{reference}/").json()
    assert detail["status"] == "completed", detail["attention_reason"]
    certificate = staff_api.get(f"/api/v1/staff/requests/{reference}/certificate/").json()
    assert certificate["stores"][0]["recipient"]["status"] == "done"
    assert certificate["stores"][0]["recipient"]["erased"] == 1
    assert certificate["recipients"] == [
        {
            "store": "helpdesk",
            "kind": "webhook",
            "method": "sent to the recipient (Art. 19)",
            "finished_at": certificate["stores"][0]["finished_at"],
        }
    ]
