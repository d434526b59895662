"""Access across stores with the real finder: a shop in PostgreSQL and an uploads folder keyed by
the shop's customer id. The uploads job can only find the person's folder through the shop, and
the package holds the person's own files, never a look-alike customer's."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from requests.engine.package import verify_package
from requests.models import AccessPackage, Job
from tests.access_fixtures import approve, data_json, file_and_verify, open_zip

pytestmark = pytest.mark.django_db

SHOP_SQL = [
    "CREATE TABLE customers (id INTEGER PRIMARY KEY, email VARCHAR(200), first_name VARCHAR(100))",
    """CREATE TABLE orders (id INTEGER PRIMARY KEY,
        customer_id INTEGER NOT NULL REFERENCES customers (id), total NUMERIC(10, 2))""",
    "INSERT INTO customers VALUES (12, 'Ada@Example.com', 'Ada'), (123, 'bob@example.com', 'Bob')",
    "INSERT INTO orders VALUES (1001, 12, 30.00), (1002, 12, 12.50), (1003, 123, 99.99)",
]

SHOP_MAP = """
info: {purposes: [Orders], recipients: [Carrier]}
collections:
  customers:
    key: [id]
    fields:
      email: {identity: email}
  orders:
    key: [id]
    fields:
      customer_id: {references: {collection: customers, field: id}}
"""

UPLOADS_MAP = """
info: {purposes: [Identity checks], retention: 1 year}
collections:
  files:
    location: "{customer_id}/"
    key: [path]
    fields:
      customer_id: {references: {store: shop, collection: customers, field: id}}
"""


@pytest.fixture
def stores(postgres_database, tmp_path, settings, staff_api):
    settings.DATA_DIR = tmp_path / "data"
    engine = sa.create_engine(postgres_database)
    with engine.begin() as conn:
        for statement in SHOP_SQL:
            conn.execute(sa.text(statement))
    engine.dispose()
    uploads = tmp_path / "uploads"
    for relative, content in [
        ("12/passport.png", b"ada's passport"),
        ("12/letters/complaint.pdf", b"ada's letter"),
        ("123/id.png", b"bob's id"),
    ]:
        (uploads / relative).parent.mkdir(parents=True, exist_ok=True)
        (uploads / relative).write_bytes(content)
    for name, kind, url, map_yaml in [
        ("shop", "postgresql", postgres_database, SHOP_MAP),
        ("uploads", "files", uploads.as_uri(), UPLOADS_MAP),
    ]:
        response = staff_api.post(
            "/api/v1/staff/stores/",
            {"name": name, "kind": kind, "url": url, "map": map_yaml},
            format="json",
        )
        assert response.status_code == 201, response.content


def test_each_store_job_keeps_its_own_records_found_through_every_store(
    stores, public_api, file_request, staff_api, django_capture_on_commit_callbacks, settings
):
    reference = file_and_verify(public_api, file_request, email="ada@example.com")
    detail = approve(staff_api, django_capture_on_commit_callbacks, reference)
    assert detail["status"] == "completed", detail
    counts = {job["store"]: job["counts"] for job in detail["jobs"]}
    assert counts == {
        "shop": {"customers": {"found": 1}, "orders": {"found": 2}},
        "uploads": {"files": {"found": 2, "files": 2}},
    }
    assert Job.objects.filter(request__reference=reference, state="done").count() == 2

    package = AccessPackage.objects.get(request__reference=reference)
    path = settings.DATA_DIR / package.path
    assert verify_package(path) == []
    archive = open_zip(path.read_bytes())
    data = data_json(archive)
    assert [o["id"] for o in data["stores"]["shop"]["orders"]] == [1001, 1002]
    assert sorted(f["path"] for f in data["stores"]["uploads"]["files"]) == [
        "12/letters/complaint.pdf",
        "12/passport.png",
    ]
    assert archive.read("uploads/files/files/12/passport.png") == b"ada's passport"
    assert archive.read("uploads/files/files/12/letters/complaint.pdf") == b"ada's letter"
    assert not [name for name in archive.namelist() if "123" in name]
    html = archive.read("index.html").decode()
    assert "Identity checks" in html and "Carrier" in html
