"""Staff preview: what a request would find or erase in each store, before they decide."""

import sqlite3

import pytest

from requests.demo import DEMO_MAP, demo_database_build
from requests.services import lifecycle, stores
from requests.services.audit import SYSTEM
from tests.processes import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_shop(tmp_path):
    path = tmp_path / "shop.sqlite3"
    demo_database_build(path)
    return stores.store_create(
        name="shop", kind="sqlite", url=f"sqlite:///{path}", map_yaml=DEMO_MAP, actor=SYSTEM
    )


def _verified(email, kind="erasure"):
    request = lifecycle.request_file(kind=kind, identity={"email": email})
    return lifecycle.request_mark_verified(request=request, method="code")


def test_the_preview_counts_the_persons_records_per_store_and_collection(staff_api, demo_shop):
    request = _verified("GRACE@demo.example ")
    response = staff_api.get(f"/api/v1/staff/requests/{request.reference}/preview/")
    assert response.status_code == 200, response.content
    shop = response.json()["stores"]["shop"]["collections"]
    # Grace is customer 2: three orders of two lines each (see requests.demo).
    assert shop["customers"]["count"] == 1
    assert shop["orders"]["count"] == 3
    assert shop["order_lines"]["count"] == 6
    assert shop["customers"]["sample"][0]["email"] == "grace@demo.example"
    assert shop["customers"]["erasure"] == "delete"
    assert shop["orders"]["erasure"] == "hold"
    assert "Accounting law" in shop["orders"]["hold_basis"]


def test_the_preview_of_someone_not_held_is_empty(staff_api, demo_shop):
    request = _verified("nobody@demo.example")
    body = staff_api.get(f"/api/v1/staff/requests/{request.reference}/preview/").json()
    assert body["total"] == 0


def test_a_store_that_is_down_is_named_in_the_preview_and_the_others_still_answer(
    staff_api, demo_shop
):
    stores.store_create(
        name="sessions",
        kind="redis",
        url=f"redis://127.0.0.1:{free_port()}/0",
        map_yaml=(
            "collections:\n  sessions:\n    location: 'session:{email}:*'\n    key: [key]\n"
            "    fields:\n      email: {identity: email}\n"
        ),
        actor=SYSTEM,
    )
    request = _verified("ada@demo.example")
    body = staff_api.get(f"/api/v1/staff/requests/{request.reference}/preview/").json()
    assert "sessions" in body["errors"]
    assert body["stores"]["shop"]["collections"]["customers"]["count"] == 1


def test_an_unverified_request_has_no_preview(staff_api, demo_shop):
    request = lifecycle.request_file(kind="access", identity={"email": "ada@demo.example"})
    response = staff_api.get(f"/api/v1/staff/requests/{request.reference}/preview/")
    assert response.status_code == 400
    assert "verified" in response.json()["error"]["message"]


def test_the_demo_database_has_what_the_demo_map_names(tmp_path):
    path = tmp_path / "demo.sqlite3"
    demo_database_build(path)
    with sqlite3.connect(path) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"customers", "orders", "order_lines"}
