"""Whose record is it, end to end through the HTTP API (issue 9), on a rental shop written like
a public sample database and connected with discovery, untouched, in SQLite, PostgreSQL and
MariaDB: Bo paid part of one of Ann's rentals, and Ann part of one of Bo's.

- The preview classifies the rows as the package and the erasure will: Ann's own payments, and
  the two payments she shares with Bo, with the reason.
- Ann's package holds her rows in full and the shared payments with the reference to Bo's rows
  withheld, and nothing of Bo (not his email, not his names) anywhere in the ZIP.
- Ann's erasure deletes her own rows, never the shared payments, sets to null only the shared
  payment's reference to her rental, leaves every row of Bo's and Cy's otherwise byte-identical,
  completes with nothing left, and its certificate explains the payments it kept.
"""

from __future__ import annotations

import pytest

from requests.engine.ownership import WITHHELD
from tests.access_fixtures import approve, data_json, file_and_verify, zip_of
from tests.engine.erasure_helpers import fresh_database, rows
from tests.engine.ownership_corpus import RENTALS
from tests.erasure_fixtures import file_erasure

pytestmark = pytest.mark.django_db

ANN = "ann.rental@example.org"


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def rentals(request, tmp_path, staff_api, settings):
    settings.DATA_DIR = tmp_path / "data"
    _, url = fresh_database(request.param, request, tmp_path, "rentals", *RENTALS)
    created = staff_api.post(
        "/api/v1/staff/stores/",
        {"name": "rentals", "kind": request.param, "url": url, "discover": True},
        format="json",
    )
    assert created.status_code == 201, created.content
    return url


def _payments(preview):
    return preview["stores"]["rentals"]["collections"]["payment"]


def test_ann_sees_her_payments_and_the_shared_ones_without_bos_data(
    rentals, public_api, file_request, staff_api, django_capture_on_commit_callbacks
):
    reference = file_and_verify(public_api, file_request, email=ANN)
    preview = staff_api.get(f"/api/v1/staff/requests/{reference}/preview/").json()
    assert _payments(preview)["ownership"] == {
        "alone": 2,
        "shared": 2,
        "reference": 0,
        "reasons": {"shared_owner": 2},
    }

    detail = approve(staff_api, django_capture_on_commit_callbacks, reference)

    assert detail["status"] == "completed", detail
    response = staff_api.get(f"/api/v1/staff/requests/{reference}/package/")
    archive = zip_of(response)
    payments = {row["id"]: row for row in data_json(archive)["stores"]["rentals"]["payment"]}
    assert sorted(payments) == [100, 101, 102, 103]
    assert payments[100]["rental_id"] == 10 and payments[100]["customer_id"] == 1
    assert payments[102]["customer_id"] == WITHHELD and payments[102]["rental_id"] == 11
    assert payments[103]["rental_id"] == WITHHELD and payments[103]["customer_id"] == 1
    everything = b"".join(archive.read(name) for name in archive.namelist()).lower()
    for bo in (b"bo.rental@example.org", b"bohdan", b"vrana", b"cy.rental", b"cyprian"):
        assert bo not in everything


def test_erasing_ann_keeps_the_shared_payments_and_changes_nothing_of_bos(
    rentals, public_api, file_request, staff_api, django_capture_on_commit_callbacks
):
    url = rentals
    bo_and_cy = {
        "customer": rows(url, "customer", "id <> 1"),
        "rental": rows(url, "rental", "customer_id <> 1"),
        "payment": rows(url, "payment", "id IN (104, 105, 103)"),
    }
    shared_by_bo = rows(url, "payment", "id = 102")
    reference = file_erasure(public_api, file_request, email=ANN)

    detail = approve(staff_api, django_capture_on_commit_callbacks, reference)

    assert detail["status"] == "completed", detail["attention_reason"]
    assert rows(url, "customer", "id <> 1") == bo_and_cy["customer"]
    assert rows(url, "rental", "customer_id <> 1") == bo_and_cy["rental"]
    assert rows(url, "payment", "id IN (104, 105, 103)") == bo_and_cy["payment"]
    # Bo's payment on Ann's rental stays; only its reference to her rental is cleared.
    (before,) = shared_by_bo
    assert rows(url, "payment", "id = 102") == [(102, 2, None, *before[3:])]
    assert rows(url, "payment", "id IN (100, 101)") == []
    assert rows(url, "rental", "customer_id = 1") == []
    # Her customer row stays masked: her payment on Bo's rental (103) still points at it.
    (ann,) = rows(url, "customer", "id = 1")
    assert "ann.rental" not in str(ann).lower() and "quist" not in str(ann).lower()
    certificate = staff_api.get(f"/api/v1/staff/requests/{reference}/certificate/").json()
    assert certificate["sweep"]["remaining"] == 0
    (store,) = certificate["stores"]
    payment = next(c for c in store["collections"] if c["name"] == "payment")
    # Shared payments stay: 102 with its reference to her rental set to null, 103 as it was.
    assert (payment["deleted"], payment["nullified"], payment["kept"]) == (2, 1, 1)
    assert any("shared_owner" in reason for reason in payment["reasons"])
    assert ANN not in str(certificate).lower()
