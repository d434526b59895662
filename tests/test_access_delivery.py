"""An access request end to end through the API and the pages, and the safe download of its package.

The records come from a stand-in for the finder (`FakeFinder`): these tests are about what the
portal does with a person's records (the package, the email, the download with a single-use code,
expiry, staff downloads). The Chinook tests run the real finder on real databases.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from requests import storage
from requests.engine.package import verify_package
from requests.models import AccessPackage, AuditEvent, DataRequest, DownloadCode, Job
from requests.services import access, packages
from requests.services.errors import RateLimited, VerificationFailed
from tests.access_fixtures import (
    FakeFinder,
    approve,
    data_json,
    file_and_verify,
    files_store,
    open_zip,
    zip_of,
)
from tests.conftest import body_of, code_from

pytestmark = pytest.mark.django_db

SHOP_MAP = """
info:
  purposes: [Selling and delivering your orders]
  legal_basis: contract
  recipients: [Parcel carrier]
  retention: 3 years after your last order
  source: You, when you ordered
collections:
  customers:
    location: "customers/{email}"
    categories: [contact details]
    fields:
      email: {identity: email}
  orders:
    location: "orders/{customer_id}/"
    categories: [purchases]
    fields:
      customer_id: {}
    info:
      purposes: [Invoicing]
      legal_basis: legal obligation (tax law)
      retention: 10 years
"""


@pytest.fixture
def finder(monkeypatch):
    fake = FakeFinder()
    monkeypatch.setattr(access, "_find_into", fake)
    return fake


@pytest.fixture
def shop(tmp_path, settings, finder):
    settings.DATA_DIR = tmp_path / "data"
    store = files_store("shop", tmp_path / "shop", SHOP_MAP)
    finder.add("shop", "customers", {"id": 12, "email": "ada@example.com", "name": "Ada"})
    finder.add(
        "shop",
        "orders",
        *[
            {"id": 1000 + i, "customer_id": 12, "total": Decimal("9.90"), "note": None}
            for i in range(7)
        ],
    )
    return store


@pytest.fixture
def completed(shop, public_api, file_request, staff_api, django_capture_on_commit_callbacks):
    """An access request filed, verified, approved and completed: its package is ready."""
    reference = file_and_verify(public_api, file_request)
    detail = approve(staff_api, django_capture_on_commit_callbacks, reference)
    assert detail["status"] == "completed", detail
    return DataRequest.objects.get(reference=reference)


def _download_page(request: DataRequest) -> str:
    return f"/r/{request.reference}/status/{request.status_token()}/download/"


def _ask_code(client, request, capture) -> str:
    before = len(mail.outbox)
    with capture(execute=True):
        response = client.post(_download_page(request), {"send_code": "1"})
    assert response.status_code == 302
    assert len(mail.outbox) == before + 1, "no download code email"
    message = mail.outbox[-1]
    assert message.to == [request.email]
    return code_from(message)


def _is_zip(response) -> bool:
    return response.status_code == 200 and response["Content-Type"] == "application/zip"


def test_approval_builds_the_package_and_the_completion_email_points_to_the_status_page(
    completed, staff_api
):
    package = AccessPackage.objects.get(request=completed)
    assert package.records == 8
    assert package.counts == {"shop": {"customers": 1, "orders": 7}}
    assert package.expires_at == package.created_at + timedelta(days=7)
    message = mail.outbox[-1]
    assert "ready" in message.subject.lower()
    assert completed.status_url() in body_of(message)
    assert not message.attachments
    detail = staff_api.get(f"/api/v1/staff/requests/{completed.reference}/").json()
    assert detail["jobs"][0]["counts"] == {"customers": {"found": 1}, "orders": {"found": 7}}
    actions = [event["action"] for event in detail["events"]]
    assert actions.index("package.created") < actions.index("request.completed")


def test_the_package_holds_the_records_in_json_and_csv_with_verified_checksums(completed, settings):
    package = AccessPackage.objects.get(request=completed)
    path = settings.DATA_DIR / package.path
    assert verify_package(path) == []
    archive = open_zip(path.read_bytes())
    assert sorted(archive.namelist()) == [
        "data.json",
        "index.html",
        "manifest.json",
        "shop/customers.csv",
        "shop/orders.csv",
    ]
    data = data_json(archive)
    assert data["reference"] == completed.reference
    assert [r["id"] for r in data["stores"]["shop"]["orders"]] == list(range(1000, 1007))
    assert data["stores"]["shop"]["orders"][0]["total"] == "9.90"
    orders_csv = archive.read("shop/orders.csv").decode("utf-8-sig").splitlines()
    assert orders_csv[0] == "id,customer_id,total,note"
    assert orders_csv[1] == "1000,12,9.90,"
    assert len(orders_csv) == 8


def test_the_report_names_the_purposes_recipients_and_rights_with_collection_info_first(
    completed, settings
):
    package = AccessPackage.objects.get(request=completed)
    html = open_zip((settings.DATA_DIR / package.path).read_bytes()).read("index.html").decode()
    customers = html[html.index("<h3>customers</h3>") : html.index("<h3>orders</h3>")]
    orders = html[html.index("<h3>orders</h3>") :]
    assert "Selling and delivering your orders" in customers  # the map's default
    assert "Parcel carrier" in customers
    assert "contact details" in customers
    assert "Invoicing" in orders and "Selling and delivering" not in orders  # its own
    assert "legal obligation (tax law)" in orders and "10 years" in orders
    for right in ("Rectification", "Erasure", "Restriction", "Objection", "Complaint"):
        assert right in html
    assert settings.PORTAL_SUPERVISORY_AUTHORITY in html


def test_the_person_downloads_the_package_with_a_fresh_code(
    completed, client, django_capture_on_commit_callbacks
):
    status = client.get(completed.status_url().removeprefix("http://127.0.0.1:8000"))
    assert "Download my data" in status.content.decode()
    code = _ask_code(client, completed, django_capture_on_commit_callbacks)
    response = client.post(_download_page(completed), {"code": code})
    assert _is_zip(response)
    assert "attachment" in response["Content-Disposition"]
    assert "no-store" in response["Cache-Control"]
    archive = zip_of(response)
    assert len(data_json(archive)["stores"]["shop"]["orders"]) == 7
    event = AuditEvent.objects.filter(request=completed, action="package.downloaded").get()
    assert event.actor == "subject"
    assert event.details == {"via": "code", "sha256": completed.package.sha256}
    assert AccessPackage.objects.get(request=completed).downloads == 1


def test_a_wrong_code_is_refused_without_the_file_and_five_lock_the_code(
    completed, client, django_capture_on_commit_callbacks
):
    code = _ask_code(client, completed, django_capture_on_commit_callbacks)
    wrong = "000000" if code != "000000" else "111111"
    first = client.post(_download_page(completed), {"code": wrong})
    assert first.status_code == 400
    assert first["Content-Type"].startswith("text/html")
    assert "4 attempts left" in first.content.decode()
    for _ in range(4):
        client.post(_download_page(completed), {"code": wrong})
    locked = client.post(_download_page(completed), {"code": code})
    assert not _is_zip(locked)
    assert "Too many wrong codes" in locked.content.decode()
    assert not AuditEvent.objects.filter(action="package.downloaded").exists()
    # A new code works again.
    DownloadCode.objects.update(created_at=timezone.now() - timedelta(minutes=5))
    fresh = _ask_code(client, completed, django_capture_on_commit_callbacks)
    assert _is_zip(client.post(_download_page(completed), {"code": fresh}))


def test_an_expired_code_is_refused_without_the_file(
    completed, client, django_capture_on_commit_callbacks
):
    code = _ask_code(client, completed, django_capture_on_commit_callbacks)
    DownloadCode.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = client.post(_download_page(completed), {"code": code})
    assert response.status_code == 400
    assert not _is_zip(response)
    assert "This code has expired" in response.content.decode()


def test_a_used_code_cannot_open_the_package_again(
    completed, client, django_capture_on_commit_callbacks
):
    code = _ask_code(client, completed, django_capture_on_commit_callbacks)
    assert _is_zip(client.post(_download_page(completed), {"code": code}))
    again = client.post(_download_page(completed), {"code": code})
    assert again.status_code == 400
    assert not _is_zip(again)
    assert "already used" in again.content.decode()
    assert AuditEvent.objects.filter(action="package.downloaded").count() == 1


def test_only_the_newest_code_opens_the_package(
    completed, client, django_capture_on_commit_callbacks
):
    first = _ask_code(client, completed, django_capture_on_commit_callbacks)
    DownloadCode.objects.update(created_at=timezone.now() - timedelta(minutes=5))
    second = _ask_code(client, completed, django_capture_on_commit_callbacks)
    if first != second:
        assert not _is_zip(client.post(_download_page(completed), {"code": first}))
    assert _is_zip(client.post(_download_page(completed), {"code": second}))


def test_asking_for_codes_too_fast_is_refused_with_the_wait(
    completed, client, django_capture_on_commit_callbacks
):
    _ask_code(client, completed, django_capture_on_commit_callbacks)
    response = client.post(_download_page(completed), {"send_code": "1"}, follow=True)
    assert re.search(r"Please wait \d+ seconds", response.content.decode())
    assert DownloadCode.objects.count() == 1


def test_a_package_gets_no_more_download_codes_than_its_cap(
    completed, client, settings, django_capture_on_commit_callbacks
):
    settings.PORTAL_DOWNLOAD_CODES_PER_PACKAGE = 3
    for _ in range(3):
        _ask_code(client, completed, django_capture_on_commit_callbacks)
        DownloadCode.objects.update(created_at=timezone.now() - timedelta(minutes=5))
    sent = len(mail.outbox)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(_download_page(completed), {"send_code": "1"}, follow=True)

    assert "We have sent as many download codes for this copy as we can" in (
        response.content.decode()
    )
    assert DownloadCode.objects.count() == 3
    assert len(mail.outbox) == sent
    with pytest.raises(RateLimited) as refused:
        packages.package_request_code(reference=completed.reference)
    assert refused.value.code == "code_cap_reached"


def test_the_code_is_stored_only_as_a_hash(completed, client, django_capture_on_commit_callbacks):
    code = _ask_code(client, completed, django_capture_on_commit_callbacks)
    row = DownloadCode.objects.get()
    assert code not in row.code_hash and len(row.code_hash) == 64
    assert row.expires_at - row.sent_at == timedelta(minutes=15)


def test_the_download_page_needs_the_private_status_token(completed, client):
    assert client.get(f"/r/{completed.reference}/status/wrong-token/download/").status_code == 404
    assert client.get(_download_page(completed)).status_code == 200


def test_staff_download_the_package_and_it_is_audited(completed, staff_api):
    response = staff_api.get(f"/api/v1/staff/requests/{completed.reference}/package/")
    assert _is_zip(response)
    assert "orders" in data_json(zip_of(response))["stores"]["shop"]
    event = AuditEvent.objects.filter(request=completed, action="package.downloaded").get()
    assert event.actor == "staff:dpo"
    assert event.details["via"] == "staff"


def test_staff_get_a_clear_404_when_there_is_no_package(shop, public_api, file_request, staff_api):
    reference = file_and_verify(public_api, file_request)
    response = staff_api.get(f"/api/v1/staff/requests/{reference}/package/")
    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "code": "not_ready",
            "message": "The package is not ready: the request is in_review.",
            "field": None,
        }
    }
    erasure = file_request(kind="erasure", email="bob@example.com")
    response = staff_api.get(f"/api/v1/staff/requests/{erasure}/package/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_access_request"
    assert staff_api.get("/api/v1/staff/requests/nope/package/").status_code == 404


def test_expiry_deletes_the_file_and_the_page_says_so(
    completed, client, staff_api, settings, django_capture_on_commit_callbacks
):
    _ask_code(client, completed, django_capture_on_commit_callbacks)
    package = AccessPackage.objects.get(request=completed)
    path = settings.DATA_DIR / package.path
    assert path.exists()
    assert packages.packages_delete_expired() == 0
    AccessPackage.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert packages.packages_delete_expired() == 1
    assert not path.exists()
    assert not path.parent.exists()
    package.refresh_from_db()
    assert package.deleted_at is not None
    assert not DownloadCode.objects.exclude(code_hash="").exists()
    status = client.get(completed.status_url().removeprefix("http://127.0.0.1:8000")).content
    assert "Your copy has expired" in status.decode()
    page = client.get(_download_page(completed)).content.decode()
    assert "We have deleted the file" in page
    asked = client.post(_download_page(completed), {"send_code": "1"}, follow=True)
    assert "no longer available" in asked.content.decode()
    response = staff_api.get(f"/api/v1/staff/requests/{completed.reference}/package/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "expired"
    assert AuditEvent.objects.filter(request=completed, action="package.deleted").count() == 1
    assert packages.packages_delete_expired() == 0


def test_a_code_cannot_open_a_package_past_its_expiry(
    completed, client, django_capture_on_commit_callbacks
):
    code = _ask_code(client, completed, django_capture_on_commit_callbacks)
    AccessPackage.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = client.post(_download_page(completed), {"code": code})
    assert response.status_code == 410
    assert not _is_zip(response)


def test_the_package_is_built_once_even_if_the_request_is_advanced_twice(completed):
    first = AccessPackage.objects.get(request=completed)
    details = access.access_finalise(completed)
    assert details["package_sha256"] == first.sha256
    assert AccessPackage.objects.count() == 1


def test_the_parts_are_removed_once_the_package_is_built(completed, settings):
    assert storage.names_under(access.parts_prefix(completed.reference)) == []
    assert not (settings.DATA_DIR / access.parts_prefix(completed.reference)).exists()
    assert (settings.DATA_DIR / completed.package.path).exists()


def test_a_french_request_gets_a_french_report_and_email(
    shop, public_api, staff_api, django_capture_on_commit_callbacks, settings
):
    with django_capture_on_commit_callbacks(execute=True):
        response = public_api.post(
            "/api/v1/requests/",
            {"kind": "access", "identity": {"email": "ada@example.com"}, "language": "fr"},
            format="json",
        )
    reference = response.json()["reference"]
    code = code_from(mail.outbox[-1])
    public_api.post(f"/api/v1/requests/{reference}/verify/", {"code": code})
    approve(staff_api, django_capture_on_commit_callbacks, reference)
    package = AccessPackage.objects.get(request__reference=reference)
    html = open_zip((settings.DATA_DIR / package.path).read_bytes()).read("index.html").decode()
    assert '<html lang="fr">' in html
    assert "Vos droits" in html
    assert "Rectification" in html and "Opposition" in html
    assert "prête" in mail.outbox[-1].subject
    assert "Télécharger mes données" in body_of(mail.outbox[-1])
    request = DataRequest.objects.get(reference=reference)
    page = Client(headers={"accept-language": "fr"}).get(_download_page(request))
    text = page.content.decode()
    assert "Télécharger vos données" in text
    assert "envoyer un code de téléchargement" in text


def test_the_job_fails_cleanly_when_its_part_cannot_be_written(
    shop, public_api, file_request, staff_api, django_capture_on_commit_callbacks, settings
):
    settings.DATA_DIR = settings.DATA_DIR.parent / "missing-parent" / "file"
    settings.DATA_DIR.parent.mkdir(parents=True)
    settings.DATA_DIR.write_text("not a folder")
    reference = file_and_verify(public_api, file_request)
    detail = approve(staff_api, django_capture_on_commit_callbacks, reference)
    assert detail["status"] == "needs_attention"
    job = Job.objects.get()
    assert job.state == "failed"
    assert job.error.startswith("The packages folder cannot be written")


def test_a_download_code_of_a_wrong_shape_is_refused_before_any_lookup(completed):
    with pytest.raises(VerificationFailed):
        packages.package_open_for_subject(reference=completed.reference, code="12ab")
