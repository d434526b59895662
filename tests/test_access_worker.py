"""An access request carried by a real Celery worker process on Redis: the job, the package, the
emails and the download code all go through the broker, as in production."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings

from requests.models import AccessPackage, DataRequest
from tests.access_fixtures import data_json, zip_of
from tests.conftest import code_from
from tests.engine import chinook
from tests.engine.chinook import LUIS_EMAIL
from tests.processes import celery_worker, portal_env
from tests.servers import redis_url
from tests.test_celery_worker import sending_over

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

MAP = """
info: {purposes: [Selling music], recipients: [Payment processor]}
collections:
  Customer:
    key: [CustomerId]
    fields:
      Email: {identity: email}
  Invoice:
    key: [InvoiceId]
    fields:
      CustomerId: {references: {collection: Customer, field: CustomerId}}
  InvoiceLine:
    key: [InvoiceLineId]
    fields:
      InvoiceId: {references: {collection: Invoice, field: InvoiceId}}
"""


@pytest.fixture
def broker():
    with sending_over(redis_url(), {"visibility_timeout": 3600}) as sent:
        yield sent


def test_a_worker_builds_the_package_and_sends_the_download_code(
    broker, smtp_server, public_api, staff_api, client, tmp_path, settings
):
    host, port, inbox = smtp_server
    settings.DATA_DIR = tmp_path / "data"  # shared by this process (the web) and the worker
    store_url = chinook.load_sqlite(tmp_path / "chinook.sqlite")
    created = staff_api.post(
        "/api/v1/staff/stores/",
        {"name": "chinook", "kind": "sqlite", "url": store_url, "map": MAP},
        format="json",
    )
    assert created.status_code == 201, created.content
    database = django_settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        db_url = f"sqlite:///{database['NAME']}"
    else:
        db_url = (
            f"postgresql://{database['USER']}@{database['HOST']}:{database['PORT']}/"
            f"{database['NAME']}"
        )
    env = portal_env(
        DATABASE_URL=db_url,
        CELERY_BROKER_URL=broker[0],
        PORTAL_QUEUE=broker[1],
        EMAIL_HOST=host,
        EMAIL_PORT=str(port),
        SECRET_KEY=django_settings.SECRET_KEY,
        PORTAL_ENCRYPTION_KEYS=",".join(django_settings.PORTAL_ENCRYPTION_KEYS),
        PORTAL_DATA_DIR=str(settings.DATA_DIR),
        PORTAL_BASE_URL="http://portal.test",
    )
    with celery_worker(env, tmp_path / "worker.log", "--pool", "solo", "-Q", broker[1]):
        filed = public_api.post(
            "/api/v1/requests/",
            {"kind": "access", "identity": {"email": LUIS_EMAIL}},
            format="json",
        )
        reference = filed.json()["reference"]
        verified = public_api.post(
            f"/api/v1/requests/{reference}/verify/",
            {"code": code_from(inbox.wait_for(1))},
            format="json",
        )
        assert verified.json()["status"] == "in_review"
        assert staff_api.post(f"/api/v1/staff/requests/{reference}/approve/").status_code == 200
        ready = inbox.wait_for(2)
        assert "ready" in ready["Subject"].lower()
        request = DataRequest.objects.get(reference=reference)
        assert request.status == "completed"
        assert AccessPackage.objects.get(request=request).counts == {
            "chinook": {"Customer": 1, "Invoice": 7, "InvoiceLine": 38}
        }

        page = f"/r/{reference}/status/{request.status_token()}/download/"
        assert client.post(page, {"send_code": "1"}).status_code == 302
        code = code_from(inbox.wait_for(3))
        response = client.post(page, {"code": code})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    stores = data_json(zip_of(response))["stores"]
    assert len(stores["chinook"]["InvoiceLine"]) == 38
