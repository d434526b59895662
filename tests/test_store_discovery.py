"""Connecting a live store with discovery, through the API and the command line."""

import io

import pytest
from django.core.management import call_command

from requests.models import ConnectedStore
from requests.services import stores
from tests.engine.chinook import load_sqlite

pytestmark = pytest.mark.django_db


@pytest.fixture
def chinook_url(tmp_path):
    path = tmp_path / "chinook.sqlite3"
    load_sqlite(path)
    return f"sqlite:///{path}"


def test_connecting_a_store_with_discovery_applies_a_drafted_map(staff_api, chinook_url):
    response = staff_api.post(
        "/api/v1/staff/stores/",
        {"name": "chinook", "kind": "sqlite", "url": chinook_url, "discover": True},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert {"Customer", "Invoice", "InvoiceLine"} <= set(response.json()["collections"])
    drafted = stores.store_map(ConnectedStore.objects.get(name="chinook"))
    assert drafted.collections["Customer"].fields["Email"].identity == "email"
    line_ref = drafted.collections["InvoiceLine"].fields["InvoiceId"].references
    assert (line_ref.collection, line_ref.field) == ("Invoice", "InvoiceId")
    check = staff_api.post("/api/v1/staff/stores/chinook/check/").json()
    assert check["ok"] is True, check


def test_discovery_of_a_store_that_cannot_be_reached_creates_nothing(staff_api, tmp_path):
    response = staff_api.post(
        "/api/v1/staff/stores/",
        {
            "name": "gone",
            "kind": "postgresql",
            "url": "postgresql://nobody:pw@127.0.0.1:1/none",
            "discover": True,
        },
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "url"
    assert "pw@" not in response.content.decode()
    assert not ConnectedStore.objects.filter(name="gone").exists()


def test_the_discover_command_prints_the_draft_and_shows_progress(chinook_url):
    from requests.services.audit import SYSTEM

    stores.store_create(name="chinook", kind="sqlite", url=chinook_url, actor=SYSTEM)
    out, err = io.StringIO(), io.StringIO()
    call_command("stores", "discover", "chinook", "--apply", stdout=out, stderr=err)
    assert "Customer:" in out.getvalue()
    assert "identity: email" in out.getvalue()
    assert "discovering:" in err.getvalue()
    assert "Customer" in stores.store_map(ConnectedStore.objects.get(name="chinook")).collections


def test_a_fides_dataset_becomes_a_starting_map_on_the_command_line(tmp_path):
    dataset = tmp_path / "shop.yml"
    dataset.write_text(
        "dataset:\n"
        "  - fides_key: shop\n"
        "    collections:\n"
        "      - name: customer\n"
        "        fields:\n"
        "          - name: id\n"
        "            fides_meta: {primary_key: true}\n"
        "          - name: email\n"
        "            fides_meta: {identity: email}\n"
    )
    out = io.StringIO()
    call_command("stores", "import-fides", str(dataset), stdout=out)
    drafted = stores.parse_map(out.getvalue())
    assert drafted.collections["customer"].fields["email"].identity == "email"
    assert drafted.collections["customer"].key == ["id"]


def test_the_command_imports_the_dataset_named_when_a_file_holds_several(tmp_path):
    from django.core.management.base import CommandError

    dataset = tmp_path / "two.yml"
    one = "  - fides_key: {key}\n    collections:\n      - name: {name}\n        fields:\n"
    field = "          - name: email\n            fides_meta: {identity: email}\n"
    dataset.write_text(
        "dataset:\n"
        + one.format(key="shop", name="customer")
        + field
        + one.format(key="crm", name="contact")
        + field
    )
    with pytest.raises(CommandError, match="say which"):
        call_command("stores", "import-fides", str(dataset), stdout=io.StringIO())
    with pytest.raises(CommandError, match="--store"):
        call_command("stores", "import-fides", str(dataset), "--apply", stdout=io.StringIO())

    out = io.StringIO()
    call_command("stores", "import-fides", str(dataset), "--dataset", "crm", stdout=out)

    assert list(stores.parse_map(out.getvalue()).collections) == ["contact"]


def test_a_broken_fides_dataset_is_refused_with_its_line(tmp_path):
    from django.core.management.base import CommandError

    dataset = tmp_path / "bad.yml"
    dataset.write_text("dataset:\n  - fides_key: shop\n    collections: [\n")
    with pytest.raises(CommandError, match="line"):
        call_command("stores", "import-fides", str(dataset), stdout=io.StringIO())
