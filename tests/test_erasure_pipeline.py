"""The erasure pipeline around the engine: jobs per store in the order the maps require, leases,
retries and staff's retry, recipients still erasing, manual tasks, the verification sweep, the
certificate, the email to the person and the suppression ledger.

The engine is stood in for (`FakeEngine`) so that each test sets what a store's erasure reports;
the Chinook and worker tests run the real one."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core import mail

from requests import tasks
from requests.crypto import keyed_hash
from requests.engine import erasure as engine
from requests.engine.erasure import store_dependencies
from requests.engine.store import PermanentStoreError
from requests.models import (
    AuditEvent,
    ConnectedStore,
    DataRequest,
    ErasureCertificate,
    Job,
    SuppressionEntry,
)
from requests.services import processing
from requests.services.audit import audit_verify
from requests.services.erasure.certificate import certificate_digest, erasure_finalise
from requests.services.erasure.run import JobLease, LeaseLost, erasure_execute
from tests.access_fixtures import approve, file_and_verify
from tests.conftest import body_of
from tests.engine.webhook_server import WebhookService
from tests.erasure_fixtures import PERSON, FakeEngine, down, file_erasure, shop_and_crm

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake(monkeypatch, tmp_path, settings):
    settings.DATA_DIR = tmp_path / "data"
    settings.PORTAL_JOB_RETRY_BASE = 0
    stand_in = FakeEngine()
    monkeypatch.setattr(engine, "erase_person", stand_in.erase_person)
    monkeypatch.setattr(engine, "find_remaining", stand_in.find_remaining)
    return stand_in


@pytest.fixture
def stores(tmp_path):
    return shop_and_crm(tmp_path)


def _detail(staff_api, reference):
    return staff_api.get(f"/api/v1/staff/requests/{reference}/").json()


def _jobs(detail):
    return {job["store"]: job for job in detail["jobs"]}


def _erasure(public_api, file_request, **identity):
    return file_erasure(public_api, file_request, **identity)


def test_an_approved_erasure_erases_each_store_once_then_completes_with_a_certificate(
    fake, stores, public_api, file_request, staff_api, django_capture_on_commit_callbacks
):
    fake.result("shop", customers={"deleted": 1}, orders={"held": 2, "masked": 2})
    fake.result("crm", contacts={"deleted": 1})
    reference = _erasure(public_api, file_request)

    detail = approve(staff_api, django_capture_on_commit_callbacks, reference)

    assert detail["status"] == "completed", detail["attention_reason"]
    assert sorted(fake.calls) == ["crm", "shop"]
    assert fake.identities[0] == {"email": PERSON}
    assert set(fake.request_ids) == {reference}
    assert fake.sweeps == 1
    jobs = _jobs(detail)
    assert {name: job["state"] for name, job in jobs.items()} == {"crm": "done", "shop": "done"}
    assert jobs["shop"]["counts"]["collections"]["customers"]["deleted"] == 1
    assert ErasureCertificate.objects.filter(request__reference=reference).exists()
    completed = AuditEvent.objects.get(request__reference=reference, action="request.completed")
    certificate = ErasureCertificate.objects.get(request__reference=reference)
    assert completed.details["certificate_sha256"] == certificate.sha256
    assert completed.details["deleted"] == 2
    assert audit_verify().ok


def test_a_store_whose_records_are_found_through_another_is_erased_before_it(
    fake, stores, public_api, file_request, staff_api, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    reference = _erasure(public_api, file_request)
    # While the CRM's job has not run, the shop's waits, with the reason shown to staff.
    with capture(execute=False):
        response = staff_api.post(f"/api/v1/staff/requests/{reference}/approve/")
    assert response.status_code == 200
    jobs = _jobs(_detail(staff_api, reference))
    assert (jobs["shop"]["state"], jobs["shop"]["held_for"]) == ("held", "order")
    assert "Waits for the erasure in crm" in jobs["shop"]["error"]
    assert jobs["shop"]["waiting_for"] == "other_work"
    assert jobs["crm"]["state"] == "queued"
    # A delivered message for the shop's job does nothing while it waits.
    shop_job = Job.objects.get(request__reference=reference, store__name="shop")
    with capture(execute=True):
        tasks.job_run.delay(shop_job.pk)
    assert fake.calls == []

    crm_job = Job.objects.get(request__reference=reference, store__name="crm")
    with capture(execute=True):
        tasks.job_run.delay(crm_job.pk)

    assert fake.calls == ["crm", "shop"]
    assert _detail(staff_api, reference)["status"] == "completed"
    ordered = AuditEvent.objects.get(request__reference=reference, action="request.erasure_ordered")
    assert ordered.details == {"order": {"shop": ["crm"]}}


def test_store_order_comes_from_cross_store_references_and_ignores_loops():
    from requests.engine.storemap import StoreMap

    def with_reference(store, follow):
        return StoreMap.model_validate(
            {
                "collections": {
                    "rows": {
                        "key": ["id"],
                        "fields": {
                            "ref": {
                                "references": {
                                    "store": store,
                                    "collection": "rows",
                                    "field": "id",
                                    "follow": follow,
                                }
                            }
                        },
                    }
                }
            }
        )

    plain = StoreMap.model_validate({"collections": {"rows": {"key": ["id"]}}})
    assert store_dependencies({"shop": plain, "crm": with_reference("shop", "children")})[
        "shop"
    ] == {"crm"}
    parent = with_reference("shop", "parent")
    parent_first = store_dependencies({"shop": plain, "crm": parent})
    assert parent_first == {"shop": set(), "crm": {"shop"}}
    unordered = store_dependencies({"shop": plain, "crm": with_reference("shop", "none")})
    assert unordered == {"shop": set(), "crm": set()}
    loop = store_dependencies(
        {"a": with_reference("b", "children"), "b": with_reference("a", "children")}
    )
    assert loop == {"a": set(), "b": set()}


def test_the_job_renews_its_lease_between_batches_and_stops_once_another_worker_took_it(
    fake, stores, public_api, file_request, staff_api, django_capture_on_commit_callbacks, settings
):
    settings.PORTAL_JOB_LEASE = timedelta(seconds=0)  # renew at every batch
    reference = _erasure(public_api, file_request)
    detail = approve(staff_api, django_capture_on_commit_callbacks, reference)
    assert detail["status"] == "completed"
    assert fake.progress_calls == 6  # three batches per store, each renewing the lease

    lease = JobLease(Job.objects.get(request__reference=reference, store__name="crm"))
    Job.objects.filter(pk=lease.job.pk).update(state="running", attempts=lease.job.attempts + 1)
    with pytest.raises(LeaseLost):
        lease()


def test_a_store_that_is_down_is_retried_with_backoff_then_needs_staff_who_retry_it(
    fake, stores, public_api, file_request, staff_api, django_capture_on_commit_callbacks, settings
):
    capture = django_capture_on_commit_callbacks
    settings.PORTAL_JOB_MAX_ATTEMPTS = 3
    settings.PORTAL_JOB_RETRY_BASE = 10
    fake.fail_with["crm"] = [down(), down(), down()]
    reference = _erasure(public_api, file_request)
    approve(staff_api, capture, reference)
    crm = Job.objects.get(request__reference=reference, store__name="crm")
    assert (crm.state, crm.attempts) == ("queued", 1)
    for _ in range(2):
        Job.objects.filter(pk=crm.pk).update(not_before=None)  # the backoff has passed
        with capture(execute=True):
            tasks.job_run.delay(crm.pk)
    crm.refresh_from_db()
    assert (crm.state, crm.attempts) == ("failed", 3)
    retries = AuditEvent.objects.filter(request__reference=reference, action="job.retry_scheduled")
    assert [event.details["in_seconds"] for event in retries] == [10, 20]
    detail = _detail(staff_api, reference)
    assert detail["status"] == "needs_attention"
    assert "connection refused" in detail["attention_reason"]
    assert "gave up after 3 attempts" in _jobs(detail)["crm"]["error"]
    assert fake.calls == ["crm", "crm", "crm"]  # the shop waited for the CRM throughout

    with capture(execute=True):
        retried = staff_api.post(f"/api/v1/staff/requests/{reference}/retry/")
    assert retried.status_code == 200, retried.content
    assert _detail(staff_api, reference)["status"] == "completed"
    assert fake.calls[3:] == ["crm", "shop"]


def test_retrying_a_request_that_does_not_need_attention_is_refused_with_a_reason(
    fake, stores, public_api, file_request, staff_api
):
    reference = _erasure(public_api, file_request)
    response = staff_api.post(f"/api/v1/staff/requests/{reference}/retry/")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "transition_not_allowed"
    assert "needs attention" in response.json()["error"]["message"]
    assert staff_api.post("/api/v1/staff/requests/nope/retry/").status_code == 404


def test_a_permanent_store_error_needs_staff_at_once_with_the_reason(
    fake, stores, public_api, file_request, staff_api, django_capture_on_commit_callbacks
):
    fake.fail_with["crm"] = [PermanentStoreError("table contacts does not exist in crm")]
    reference = _erasure(public_api, file_request)
    detail = approve(staff_api, django_capture_on_commit_callbacks, reference)
    assert detail["status"] == "needs_attention"
    assert detail["attention_reason"] == "crm: table contacts does not exist in crm"
    assert _jobs(detail)["crm"]["attempts"] == 1


def test_records_left_after_the_erasure_stop_the_request_with_counts_and_no_data(
    fake, stores, public_api, file_request, staff_api, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    fake.remaining = {"crm": {"contacts": {"remaining": 2, "held": 0}}}
    reference = _erasure(public_api, file_request)
    detail = approve(staff_api, capture, reference)

    assert detail["status"] == "needs_attention"
    assert "crm.contacts: 2" in detail["attention_reason"]
    assert PERSON not in json.dumps(detail["events"])
    assert _jobs(detail)["crm"]["state"] == "failed"
    assert "found records left: contacts: 2" in _jobs(detail)["crm"]["error"]
    assert not ErasureCertificate.objects.exists()
    response = staff_api.get(f"/api/v1/staff/requests/{reference}/certificate/")
    assert response.status_code == 404

    fake.remaining = {"shop": {"orders": {"remaining": 0, "held": 2}}}
    with capture(execute=True):
        assert staff_api.post(f"/api/v1/staff/requests/{reference}/retry/").status_code == 200
    assert _detail(staff_api, reference)["status"] == "completed"
    assert fake.calls.count("crm") == 2
    certificate = staff_api.get(f"/api/v1/staff/requests/{reference}/certificate/").json()
    assert certificate["sweep"]["remaining"] == 0
    assert certificate["sweep"]["held"] == 2


def test_the_certificate_is_a_404_with_a_clear_message_until_the_erasure_completes(
    fake, stores, public_api, file_request, staff_api
):
    reference = _erasure(public_api, file_request)
    response = staff_api.get(f"/api/v1/staff/requests/{reference}/certificate/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"]["message"] == (
        "The certificate is issued when the erasure is completed and verified; this request is "
        "in_review."
    )
    html = staff_api.get(f"/api/v1/staff/requests/{reference}/certificate/?format=html")
    assert html.status_code == 404 and b"completed and verified" in html.content
    access = file_and_verify(public_api, file_request, kind="access")
    response = staff_api.get(f"/api/v1/staff/requests/{access}/certificate/")
    assert response.json()["error"]["message"] == "Only erasure requests have a certificate."
    assert staff_api.get("/api/v1/staff/requests/nope/certificate/").status_code == 404


def test_the_certificate_says_what_was_done_where_and_why_without_personal_data(
    fake, stores, public_api, file_request, staff_api, django_capture_on_commit_callbacks
):
    fake.result(
        "shop",
        customers={"deleted": 1},
        orders={"held": 2, "masked": 2, "basis": "Tax law keeps orders for 10 years"},
    )
    fake.result(
        "crm",
        contacts={"kept": 1, "notes": ["1 record kept: other people's records refer to it"]},
    )
    fake.remaining = {"shop": {"orders": {"remaining": 0, "held": 2}}}
    reference = _erasure(public_api, file_request, phone="+44 20 7946 0000")
    approve(staff_api, django_capture_on_commit_callbacks, reference)

    response = staff_api.get(f"/api/v1/staff/requests/{reference}/certificate/")
    assert response.status_code == 200
    certificate = response.json()
    text = response.content.decode()
    for personal in (PERSON, "+442079460000", "7946"):
        assert personal not in text
    assert certificate["reference"] == reference
    assert certificate["identity_types"] == ["email", "phone"]
    assert certificate["totals"] == {
        "deleted": 1,
        "masked": 2,
        "nullified": 0,
        "held": 2,
        "kept": 1,
    }
    stores_by_name = {store["store"]: store for store in certificate["stores"]}
    assert [c["name"] for c in stores_by_name["shop"]["collections"]] == ["customers", "orders"]
    assert certificate["held"] == [
        {
            "store": "shop",
            "collection": "orders",
            "count": 2,
            "basis": "Tax law keeps orders for 10 years",
        }
    ]
    (kept,) = certificate["kept"]
    assert kept["reasons"] == ["1 record kept: other people's records refer to it"]
    assert certificate["sweep"]["remaining"] == 0
    assert certificate["suppression"] == {"identifiers": 2, "types": ["email", "phone"]}
    # Vouched for by the audit chain: the completion event carries the digest.
    event = AuditEvent.objects.get(sequence=certificate["audit"]["event"])
    assert event.action == "request.completed"
    assert event.hash == certificate["audit"]["hash"]
    assert event.details["certificate_sha256"] == certificate["certificate_sha256"]
    stored = ErasureCertificate.objects.get(request__reference=reference)
    assert certificate_digest(stored.content) == certificate["certificate_sha256"]

    page = staff_api.get(
        f"/api/v1/staff/requests/{reference}/certificate/", HTTP_ACCEPT="text/html"
    )
    assert page.status_code == 200 and page["Content-Type"].startswith("text/html")
    html = page.content.decode()
    assert "Erasure certificate" in html and reference in html
    assert "Tax law keeps orders for 10 years" in html
    assert certificate["audit"]["hash"] in html
    # In the reader's language; what the store's map says stays in its own words.
    french = staff_api.get(
        f"/api/v1/staff/requests/{reference}/certificate/",
        HTTP_ACCEPT="text/html",
        HTTP_ACCEPT_LANGUAGE="fr",
    ).content.decode()
    assert '<html lang="fr">' in french
    assert "Certificat d\u2019effacement" in french and "Recherche de vérification" in french
    assert "Tax law keeps orders for 10 years" in french
    assert PERSON not in html and "7946" not in html
    same = staff_api.get(f"/api/v1/staff/requests/{reference}/certificate/?format=html")
    assert same.content == page.content


def test_the_person_is_told_what_was_erased_what_is_kept_and_why_and_may_complain(
    fake, stores, public_api, file_request, staff_api, django_capture_on_commit_callbacks, settings
):
    settings.PORTAL_SUPERVISORY_AUTHORITY = "the CNIL"
    fake.result("shop", customers={"deleted": 1}, orders={"held": 2, "basis": "Tax law: 10 years"})
    fake.result("crm", contacts={"deleted": 1, "kept": 1})
    reference = _erasure(public_api, file_request)
    approve(staff_api, django_capture_on_commit_callbacks, reference)

    message = mail.outbox[-1]
    assert message.to == [PERSON]
    assert message.subject == "Your data was erased by Example Organisation"
    body = body_of(message)
    assert "- customers (shop): 1 record erased" in body
    assert "- contacts (crm): 1 record erased" in body
    assert (
        "- orders (shop): 2 records, with your personal details removed where the law allows."
    ) in body
    assert "Why: Tax law: 10 years" in body
    assert "- contacts (crm): 1 record kept, because other people's records depend on it" in body
    assert "lodge a complaint with the CNIL" in body
    assert DataRequest.objects.get(reference=reference).status_url() in body


def test_the_email_is_in_french_for_a_request_filed_in_french(
    fake, stores, public_api, staff_api, django_capture_on_commit_callbacks
):
    fake.result("shop", customers={"deleted": 1}, orders={"held": 2, "basis": "Code de commerce"})
    fake.result("crm", contacts={"kept": 1})
    with django_capture_on_commit_callbacks(execute=True):
        filed = public_api.post(
            "/api/v1/requests/",
            {"kind": "erasure", "identity": {"email": PERSON}, "language": "fr"},
            format="json",
        )
    reference = filed.json()["reference"]
    from tests.conftest import code_from

    code = code_from(mail.outbox[-1])
    public_api.post(f"/api/v1/requests/{reference}/verify/", {"code": code})
    approve(staff_api, django_capture_on_commit_callbacks, reference)
    message = mail.outbox[-1]
    assert message.subject.startswith("Vos données ont été effacées")
    body = body_of(message)
    assert "Ce que nous avons effacé" in body
    assert "Ce que nous conservons, et pourquoi" in body
    assert "Pourquoi : Code de commerce" in body
    assert "- customers (shop): 1 enregistrement effacé" in body
    assert "1 enregistrement conservé, car les données d\u2019autres personnes en dépendent" in body


def test_a_recipient_still_erasing_keeps_the_job_waiting_until_it_says_done(
    fake, public_api, file_request, staff_api, django_capture_on_commit_callbacks, settings
):
    settings.PORTAL_WEBHOOK_ALLOW_PRIVATE = True
    capture = django_capture_on_commit_callbacks
    with WebhookService("s3cret", {"tickets": []}) as service:
        ConnectedStore.objects.create(
            name="helpdesk",
            kind="webhook",
            url=service.url,
            secret="s3cret",
            map_yaml="collections:\n  tickets:\n    key: [id]\n"
            "    fields:\n      email: {identity: email}\n",
        )
        pending = fake.result("helpdesk", kind="webhook", tickets={"deleted": 0})
        pending.status = engine.PENDING
        pending.jobs = ["job-1"]
        service.jobs["job-1"] = {"status": "pending", "erased": 0}
        reference = _erasure(public_api, file_request)
        detail = approve(staff_api, capture, reference)
        assert detail["status"] == "processing"
        job = _jobs(detail)["helpdesk"]
        assert job["state"] == "waiting"
        assert "still erasing" in job["error"]
        tasks_list = staff_api.get("/api/v1/staff/tasks/").json()["results"]
        assert [(t["store"], t["task"]) for t in tasks_list] == [("helpdesk", "recipient_erasing")]

        with capture(execute=True):
            assert tasks.erasure_recipients_check.delay().get() == {
                "done": 0,
                "failed": 0,
                "flagged": 0,
            }
        assert _detail(staff_api, reference)["status"] == "processing"
        service.jobs["job-1"] = {"status": "done", "erased": 3}
        with capture(execute=True):
            tasks.erasure_recipients_check.delay()
        status_calls = [c["payload"] for c in service.calls if c["payload"]["action"] == "status"]
        assert status_calls[-1]["request_id"] == reference
    detail = _detail(staff_api, reference)
    assert detail["status"] == "completed"
    certificate = staff_api.get(f"/api/v1/staff/requests/{reference}/certificate/").json()
    (entry,) = certificate["stores"]
    assert entry["recipient"]["status"] == "done" and entry["recipient"]["erased"] == 3
    assert certificate["recipients"][0]["store"] == "helpdesk"


def test_a_recipient_that_reports_failure_needs_staff(
    fake, public_api, file_request, staff_api, django_capture_on_commit_callbacks, settings
):
    settings.PORTAL_WEBHOOK_ALLOW_PRIVATE = True
    capture = django_capture_on_commit_callbacks
    with WebhookService("s3cret", {"tickets": []}) as service:
        ConnectedStore.objects.create(
            name="helpdesk", kind="webhook", url=service.url, secret="s3cret",
            map_yaml="collections:\n  tickets:\n    key: [id]\n",
        )  # fmt: skip
        pending = fake.result("helpdesk", kind="webhook")
        pending.status, pending.jobs = engine.PENDING, ["job-9"]
        service.jobs["job-9"] = {"status": "failed", "reason": "archive is read-only"}
        reference = _erasure(public_api, file_request)
        approve(staff_api, capture, reference)
        with capture(execute=True):
            tasks.erasure_recipients_check.delay()
    detail = _detail(staff_api, reference)
    assert detail["status"] == "needs_attention"
    assert "recipient reported that its erasure failed" in detail["attention_reason"]
    assert "20 characters" in detail["attention_reason"]
    # The service's own words (they may quote the person's data) are kept nowhere.
    events = AuditEvent.objects.filter(request__reference=reference).values_list("details")
    assert "read-only" not in json.dumps(list(events))
    assert "read-only" not in json.dumps(detail)


MANUAL_MAP = """
system: Payroll (paper files)
owner: payroll-lead@example.com
collections:
  payslips: {}
"""


def test_a_manual_store_is_a_staff_task_with_a_due_date_and_the_request_waits_for_it(
    fake, stores, public_api, file_request, staff_api, django_capture_on_commit_callbacks, settings
):
    settings.PORTAL_MANUAL_TASK_DAYS = 3
    capture = django_capture_on_commit_callbacks
    ConnectedStore.objects.create(name="payroll", kind="manual", map_yaml=MANUAL_MAP)
    reference = _erasure(public_api, file_request)
    detail = approve(staff_api, capture, reference)

    assert detail["status"] == "processing"
    job = _jobs(detail)["payroll"]
    assert job["state"] == "waiting"
    assert "erase the person's records from Payroll (paper files)" in job["error"]
    assert job["waiting_for"] == "staff" and job["overdue"] is False
    (task,) = staff_api.get("/api/v1/staff/tasks/").json()["results"]
    request = DataRequest.objects.get(reference=reference)
    started = Job.objects.get(request=request, store__name="payroll").started_at.date()
    assert task["due_on"] == min(request.due_on, started + timedelta(days=3)).isoformat()
    assert task["owner"] == "payroll-lead@example.com"
    assert task["overdue"] is False
    assert job["due_on"] == task["due_on"]
    assert task["confirm_url"] == f"/api/v1/staff/requests/{reference}/jobs/payroll/confirm/"
    assert staff_api.get("/api/v1/staff/tasks/?overdue=true").json()["count"] == 0
    assert staff_api.get("/api/v1/staff/tasks/?overdue=maybe").status_code == 400

    with capture(execute=True):
        confirmed = staff_api.post(
            task["confirm_url"], {"note": "Shredded Ada Lovelace's payslips"}, format="json"
        )
    assert confirmed.status_code == 200, confirmed.content
    assert _jobs(confirmed.json())["payroll"]["state"] == "done"
    assert _detail(staff_api, reference)["status"] == "completed"
    certificate = staff_api.get(f"/api/v1/staff/requests/{reference}/certificate/")
    assert "Shredded" not in certificate.content.decode()
    entry = {s["store"]: s for s in certificate.json()["stores"]}["payroll"]
    assert entry["confirmed_by"] == "staff:dpo"
    assert certificate.json()["sweep"]["not_checked"] == ["payroll"]


def test_an_overdue_manual_task_needs_attention_until_staff_confirm_it(
    fake, stores, public_api, file_request, staff_api, django_capture_on_commit_callbacks, settings
):
    capture = django_capture_on_commit_callbacks
    ConnectedStore.objects.create(name="payroll", kind="manual", map_yaml=MANUAL_MAP)
    reference = _erasure(public_api, file_request)
    approve(staff_api, capture, reference)
    job = Job.objects.get(request__reference=reference, store__name="payroll")
    Job.objects.filter(pk=job.pk).update(started_at=job.started_at - timedelta(days=30))

    with capture(execute=True):
        tasks.erasure_recipients_check.delay()
    detail = _detail(staff_api, reference)
    assert detail["status"] == "needs_attention"
    assert (
        "payroll: the manual task in Payroll (paper files) was due on"
        in (detail["attention_reason"])
    )
    (task,) = staff_api.get("/api/v1/staff/tasks/?overdue=true").json()["results"]
    assert task["overdue"] is True

    with capture(execute=True):
        confirmed = staff_api.post(task["confirm_url"], {"note": "done"}, format="json")
    assert confirmed.status_code == 200, confirmed.content
    assert _detail(staff_api, reference)["status"] == "completed"
    actions = AuditEvent.objects.filter(request__reference=reference).values_list(
        "action", flat=True
    )
    assert "request.resumed" in actions


def test_only_keyed_hashes_of_identifiers_that_single_the_person_out_are_kept(
    fake, stores, public_api, file_request, staff_api, django_capture_on_commit_callbacks
):
    reference = _erasure(public_api, file_request, phone="+44 20 7946 0000", name="Ada Lovelace")
    approve(staff_api, django_capture_on_commit_callbacks, reference)
    entries = {e.identity_type: e.value_hash for e in SuppressionEntry.objects.all()}
    assert entries == {
        "email": keyed_hash(PERSON, purpose="suppression:email"),
        "phone": keyed_hash("+442079460000", purpose="suppression:phone"),
    }
    # A second erasure of the same person adds nothing.
    again = _erasure(public_api, file_request)
    approve(staff_api, django_capture_on_commit_callbacks, again)
    assert SuppressionEntry.objects.count() == 2


def test_a_stand_in_registered_before_the_kinds_load_is_not_replaced():
    # The executors are registered when processing is imported, not lazily at the first job.
    assert processing.EXECUTORS["erasure"] is erasure_execute
    assert processing.FINALISERS["erasure"] is erasure_finalise


def test_the_staff_console_links_a_completed_erasure_to_its_certificate(
    fake, stores, public_api, file_request, staff_api, client, staff_user,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    reference = _erasure(public_api, file_request)
    client.force_login(staff_user)
    page = client.get(f"/staff/requests/{reference}/").content.decode()
    assert "/certificate/" not in page
    approve(staff_api, django_capture_on_commit_callbacks, reference)
    page = client.get(f"/staff/requests/{reference}/").content.decode()
    link = f"/api/v1/staff/requests/{reference}/certificate/?format=html"
    assert link in page
    certificate = client.get(link)  # the console's session opens it
    assert certificate.status_code == 200 and b"Erasure certificate" in certificate.content
