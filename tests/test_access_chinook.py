"""Access to Luís Gonçalves's data in Chinook, end to end through the API with the real finder,
in SQLite, PostgreSQL and MariaDB: the store is connected with discovery, the map is given its
Art. 15 information, and the package holds exactly his 1 customer, 7 invoices and 38 lines."""

from __future__ import annotations

import csv
import hashlib
import io
import sqlite3
import zipfile

import pytest
import yaml

from requests.engine.package import verify_package
from requests.models import AccessPackage
from tests.access_fixtures import approve, data_json, file_and_verify, zip_of
from tests.engine import chinook
from tests.engine.chinook import LUIS_COUNTS, LUIS_EMAIL

pytestmark = pytest.mark.django_db

ART15 = {
    "purposes": ["Selling and delivering music"],
    "legal_basis": "contract (Art. 6(1)(b))",
    "recipients": ["Payment processor", "Tax authority"],
    "retention": "10 years after the last purchase",
    "source": "You, when you bought music",
}


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def chinook_store(request, tmp_path, staff_api, settings):
    """Chinook in one engine, connected through the staff API with a discovered map, to which
    the DPO added the Art. 15 information."""
    settings.DATA_DIR = tmp_path / "data"
    kind = request.param
    url = chinook.load_into(kind, request, tmp_path)
    drafted = chinook.connect_through_api(staff_api, kind, url)
    names = chinook.NAMES[kind]
    drafted["info"] = ART15
    drafted["collections"][names["invoice"]]["info"] = {
        "purposes": ["Invoicing"],
        "legal_basis": "legal obligation (tax law)",
    }
    drafted["collections"][names["customer"]]["categories"] = ["contact details"]
    updated = staff_api.put(
        "/api/v1/staff/stores/chinook/map/",
        {"map": yaml.safe_dump(drafted, sort_keys=False)},
        format="json",
    )
    assert updated.status_code == 200, updated.content
    return names


def _csv_rows(archive, name):
    return list(csv.DictReader(io.StringIO(archive.read(name).decode("utf-8-sig"))))


def test_the_package_for_luis_holds_exactly_his_records_in_json_and_csv(
    chinook_store, public_api, file_request, staff_api, django_capture_on_commit_callbacks
):
    names = chinook_store
    reference = file_and_verify(public_api, file_request, email="LUISG@Embraer.com.br ")
    detail = approve(staff_api, django_capture_on_commit_callbacks, reference)
    assert detail["status"] == "completed", detail

    expected = {names[role]: count for role, count in LUIS_COUNTS.items()}
    package = AccessPackage.objects.get(request__reference=reference)
    assert package.counts == {"chinook": expected}
    assert detail["jobs"][0]["counts"] == {name: {"found": n} for name, n in expected.items()}

    response = staff_api.get(f"/api/v1/staff/requests/{reference}/package/")
    assert response.status_code == 200
    archive = zip_of(response)
    stores = data_json(archive)["stores"]
    assert {name: len(rows) for name, rows in stores["chinook"].items()} == expected
    (customer,) = stores["chinook"][names["customer"]]
    assert customer[names["email"]] == LUIS_EMAIL
    invoice_ids = {row[names["invoice_id"]] for row in stores["chinook"][names["invoice"]]}
    assert {row[names["invoice_id"]] for row in stores["chinook"][names["invoice_line"]]} == (
        invoice_ids
    )
    for name, count in expected.items():
        rows = _csv_rows(archive, f"chinook/{name}.csv")
        assert len(rows) == count
    (customer_row,) = _csv_rows(archive, f"chinook/{names['customer']}.csv")
    assert customer_row[names["email"]] == LUIS_EMAIL
    assert customer_row[names["customer_id"]] == "1"


def test_the_checksums_verify_and_the_report_names_the_purposes_and_recipients(
    chinook_store,
    public_api,
    file_request,
    staff_api,
    django_capture_on_commit_callbacks,
    settings,
):
    names = chinook_store
    reference = file_and_verify(public_api, file_request, email=LUIS_EMAIL)
    approve(staff_api, django_capture_on_commit_callbacks, reference)
    package = AccessPackage.objects.get(request__reference=reference)
    path = settings.DATA_DIR / package.path
    assert verify_package(path) == []
    download = staff_api.get(f"/api/v1/staff/requests/{reference}/package/")
    content = b"".join(download.streaming_content)
    assert hashlib.sha256(content).hexdigest() == package.sha256
    html = zipfile.ZipFile(io.BytesIO(content)).read("index.html").decode()
    customer = html[html.index(f"<h3>{names['customer']}</h3>") :]
    customer = customer[: customer.index("</dl>")]
    invoice = html[html.index(f"<h3>{names['invoice']}</h3>") :]
    invoice = invoice[: invoice.index("</dl>")]
    assert "Selling and delivering music" in customer
    assert "Payment processor; Tax authority" in customer
    assert "contact details" in customer
    assert "10 years after the last purchase" in customer
    assert "Invoicing" in invoice and "legal obligation (tax law)" in invoice
    assert "Payment processor" in invoice  # the map's recipients where the collection has none
    assert "46 records" in html


@pytest.mark.parametrize("chinook_store", ["sqlite"], indirect=True)
def test_an_erasure_approved_first_runs_only_after_the_access_package_holds_the_data(
    chinook_store, public_api, file_request, staff_api, django_capture_on_commit_callbacks, tmp_path
):
    def luis_rows() -> int:
        with sqlite3.connect(tmp_path / "chinook.sqlite") as conn:
            (count,) = conn.execute(
                "SELECT COUNT(*) FROM Customer WHERE lower(Email) = ?", (LUIS_EMAIL,)
            ).fetchone()
        return count

    capture = django_capture_on_commit_callbacks
    access_ref = file_and_verify(public_api, file_request, email=LUIS_EMAIL)
    erasure_ref = file_and_verify(public_api, file_request, kind="erasure", email=LUIS_EMAIL)
    held = approve(staff_api, capture, erasure_ref)
    assert held["status"] == "processing"
    assert [job["state"] for job in held["jobs"]] == ["held"]
    assert luis_rows() == 1  # nothing erased while the access request is open

    approve(staff_api, capture, access_ref)
    package = AccessPackage.objects.get(request__reference=access_ref)
    assert package.counts == {
        "chinook": {chinook_store[role]: count for role, count in LUIS_COUNTS.items()}
    }
    assert luis_rows() == 0  # then the erasure ran
    erasure = staff_api.get(f"/api/v1/staff/requests/{erasure_ref}/").json()
    assert erasure["status"] == "completed", erasure["attention_reason"]
