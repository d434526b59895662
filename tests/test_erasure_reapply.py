"""After a backup is restored, `manage.py erasures reapply` erases again the people erased since
the backup was taken, from a ledger that holds only keyed hashes of their identifiers."""

from __future__ import annotations

import io
import shutil
import uuid
from datetime import timedelta

import pytest
import redis
from django.core.management import CommandError, call_command
from django.utils import timezone

from requests.models import AuditEvent, ConnectedStore, SuppressionEntry
from tests.access_fixtures import approve
from tests.engine.erasure_helpers import rows
from tests.erasure_fixtures import PERSON, file_erasure, sqlite_crm, sqlite_shop
from tests.servers import redis_url

pytestmark = pytest.mark.django_db

SHOP_MAP = """
collections:
  customers:
    key: [id]
    fields:
      email: {identity: email}
      phone: {identity: phone}
  orders:
    key: [id]
    fields:
      customer_id: {references: {collection: customers, field: id}}
"""
CRM_MAP = """
collections:
  contacts:
    key: [id]
    fields:
      shop_customer_id: {references: {store: shop, collection: customers, field: id}}
"""


@pytest.fixture
def stores(tmp_path, settings):
    settings.DATA_DIR = tmp_path / "data"
    shop = tmp_path / "shop.sqlite"
    crm = tmp_path / "crm.sqlite"
    ConnectedStore.objects.create(
        name="shop", kind="sqlite", url=sqlite_shop(shop), map_yaml=SHOP_MAP
    )
    ConnectedStore.objects.create(name="crm", kind="sqlite", url=sqlite_crm(crm), map_yaml=CRM_MAP)
    return shop, crm


@pytest.fixture
def carts():
    """A Redis store whose keys carry the person's email (a prefix of the test's own)."""
    url = redis_url()
    prefix = f"cart-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(url)
    ConnectedStore.objects.create(
        name="carts",
        kind="redis",
        url=url,
        map_yaml=(
            "collections:\n  carts:\n"
            f'    location: "{prefix}:{{email}}"\n'
            "    key: [key]\n    fields:\n      email: {identity: email}\n"
        ),
    )
    client.set(f"{prefix}:{PERSON}", "2 books")
    client.set(f"{prefix}:bob@example.com", "1 record")
    yield client, prefix
    for key in client.scan_iter(match=f"{prefix}:*"):
        client.delete(key)


@pytest.fixture
def avatars(tmp_path):
    """A folder of pictures named by the person's email."""
    root = tmp_path / "uploads"
    (root / "avatars").mkdir(parents=True)
    (root / "avatars" / f"{PERSON}.png").write_bytes(b"ada's face")
    (root / "avatars" / "bob@example.com.png").write_bytes(b"bob's face")
    ConnectedStore.objects.create(
        name="uploads",
        kind="files",
        url=root.as_uri(),
        map_yaml=(
            'collections:\n  avatars:\n    location: "avatars/{email}.png"\n'
            "    key: [path]\n    fields:\n      email: {identity: email}\n"
        ),
    )
    return root / "avatars"


def _backup(paths, folder):
    folder.mkdir()
    for path in paths:
        shutil.copy(path, folder / path.name)


def _restore(paths, folder):
    for path in paths:
        shutil.copy(folder / path.name, path)


def _reapply(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("erasures", "reapply", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_reapply_erases_again_the_people_a_restored_backup_brought_back(
    stores,
    carts,
    avatars,
    tmp_path,
    public_api,
    file_request,
    staff_api,
    django_capture_on_commit_callbacks,
):
    shop, crm = stores
    client, prefix = carts
    _backup(stores, tmp_path / "backup")
    backup_taken = timezone.now()
    reference = file_erasure(public_api, file_request, phone="+44 20 7946 0000")
    detail = approve(staff_api, django_capture_on_commit_callbacks, reference)
    assert detail["status"] == "completed", detail["attention_reason"]
    erased = {
        "customers": rows(f"sqlite:///{shop}", "customers"),
        "orders": rows(f"sqlite:///{shop}", "orders"),
        "contacts": rows(f"sqlite:///{crm}", "contacts"),
    }
    assert [row[0] for row in erased["customers"]] == [2]
    assert client.get(f"{prefix}:{PERSON}") is None
    assert sorted(p.name for p in avatars.iterdir()) == ["bob@example.com.png"]
    # Only hashes were kept: nothing in the ledger reads as the person's identifiers.
    ledger = list(SuppressionEntry.objects.values_list("identity_type", "value_hash"))
    assert sorted(t for t, _ in ledger) == ["email", "phone"]
    assert all(PERSON not in h and "7946" not in h for _, h in ledger)

    # The backup is restored: Ada, her orders, her CRM contact and her cart are back.
    _restore(stores, tmp_path / "backup")
    client.set(f"{prefix}:{PERSON}", "2 books")
    (avatars / f"{PERSON}.png").write_bytes(b"ada's face")
    assert [row[0] for row in rows(f"sqlite:///{shop}", "customers")] == [1, 2]

    dry, _ = _reapply("--since", backup_taken.isoformat(), "--dry-run")
    assert "2 erased identifier(s) found again (dry run: nothing erased)." in dry
    assert [row[0] for row in rows(f"sqlite:///{shop}", "customers")] == [1, 2]

    out, progress = _reapply("--since", backup_taken.isoformat(), "--batch", "1")
    assert "shop.customers.email: done, 2 value(s) read, 1 erased identifier(s) found" in progress
    assert "carts.carts.email: done, 2 value(s) read, 1 erased identifier(s) found" in progress
    assert "uploads.avatars.email: done, 2 value(s) read, 1 erased identifier(s) found" in progress
    assert "erased again: 2/2" in progress
    assert "2 erased identifier(s) found again." in out
    assert "  shop.customers: deleted 1" in out
    assert "  shop.orders: deleted 2" in out
    assert "  crm.contacts: deleted 1" in out
    assert "  carts.carts: deleted 1" in out
    assert "  uploads.avatars: deleted 1" in out
    assert "Records erased again: 6." in out
    assert rows(f"sqlite:///{shop}", "customers") == erased["customers"]
    assert rows(f"sqlite:///{shop}", "orders") == erased["orders"]
    assert rows(f"sqlite:///{crm}", "contacts") == erased["contacts"]
    assert client.get(f"{prefix}:{PERSON}") is None
    assert client.get(f"{prefix}:bob@example.com") == b"1 record"
    assert sorted(p.name for p in avatars.iterdir()) == ["bob@example.com.png"]
    event = AuditEvent.objects.filter(action="suppression.reapplied").last()
    assert event.details["matched"] == 2 and event.details["dry_run"] is False
    assert PERSON not in str(event.details)
    assert SuppressionEntry.objects.filter(reapplied=1).count() == 2


def test_erasures_older_than_the_backup_are_not_reapplied(
    stores, public_api, file_request, staff_api, django_capture_on_commit_callbacks
):
    reference = file_erasure(public_api, file_request)
    approve(staff_api, django_capture_on_commit_callbacks, reference)
    later = timezone.now() + timedelta(seconds=1)
    out, _ = _reapply("--since", later.isoformat())
    assert "Scanned 0 identity value(s); 0 erased identifier(s) found again." in out


def test_the_ledger_command_counts_entries_and_reapply_needs_a_since_or_all(stores):
    SuppressionEntry.objects.create(identity_type="email", value_hash="a" * 64)
    out = io.StringIO()
    call_command("erasures", "ledger", stdout=out)
    assert out.getvalue().startswith("email")
    assert "1 erased identifier(s)" in out.getvalue()
    with pytest.raises(CommandError, match="one of the arguments --since --all is required"):
        call_command("erasures", "reapply")
    with pytest.raises(CommandError, match="not a date"):
        call_command("erasures", "reapply", "--since", "last tuesday")
    with pytest.raises(CommandError, match="No enabled store named nope"):
        call_command("erasures", "reapply", "--all", "--store", "nope")
