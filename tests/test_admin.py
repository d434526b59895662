"""The Django admin: stores with write-only credentials; requests and audit read-only."""

import pytest

from requests.models import AuditEvent, ConnectedStore
from requests.services import lifecycle

pytestmark = pytest.mark.django_db

MAP = "collections:\n  customers:\n    key: [id]\n    fields:\n      email: {identity: email}\n"


@pytest.fixture
def admin_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(user)
    return client


def _add(admin_client, **data):
    form = {"name": "shop", "kind": "sqlite", "url": "sqlite:////tmp/shop.db", "secret": ""}
    form.update({"map_yaml": MAP, "enabled": "on", "queue": "", "options": "{}", **data})
    return admin_client.post("/admin/requests/connectedstore/add/", form)


def test_staff_add_a_store_in_the_admin_and_its_url_is_never_shown_back(admin_client):
    response = _add(admin_client, url="postgresql://app:s3cret-pw@db/shop", kind="postgresql")
    assert response.status_code == 302
    store = ConnectedStore.objects.get(name="shop")
    assert store.url == "postgresql://app:s3cret-pw@db/shop"
    page = admin_client.get(f"/admin/requests/connectedstore/{store.pk}/change/")
    assert page.status_code == 200
    assert "s3cret-pw" not in page.content.decode()
    assert AuditEvent.objects.filter(action="store.created").exists()


def test_saving_a_store_without_typing_the_url_keeps_the_stored_one(admin_client):
    _add(admin_client)
    store = ConnectedStore.objects.get(name="shop")
    form = {"name": "shop", "kind": "sqlite", "url": "", "secret": "", "map_yaml": MAP}
    form.update({"enabled": "", "queue": "", "options": "{}"})
    response = admin_client.post(f"/admin/requests/connectedstore/{store.pk}/change/", form)
    assert response.status_code == 302
    store.refresh_from_db()
    assert store.url == "sqlite:////tmp/shop.db"
    assert store.enabled is False


def test_an_invalid_map_is_refused_in_the_admin_with_its_line(admin_client):
    response = _add(admin_client, map_yaml="collections:\n  customers: [\n")
    assert response.status_code == 200
    assert "line" in response.content.decode()
    assert not ConnectedStore.objects.exists()


def test_requests_and_audit_events_cannot_be_edited_in_the_admin(admin_client):
    request = lifecycle.request_file(kind="access", identity={"email": "a@example.com"})
    change = admin_client.get(f"/admin/requests/datarequest/{request.pk}/change/")
    assert change.status_code == 200
    assert "a@example.com" not in change.content.decode()
    assert admin_client.get("/admin/requests/datarequest/add/").status_code == 403
    event = AuditEvent.objects.first()
    assert admin_client.post(f"/admin/requests/auditevent/{event.pk}/delete/").status_code == 403
