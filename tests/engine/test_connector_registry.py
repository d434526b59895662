"""The registry of store kinds and the capability flags the services read instead of kind names."""

import pytest

from requests.connectors.registry import CONNECTORS, connector_class, kinds_where
from requests.engine.store import Connector, PermanentStoreError
from requests.models import StoreKind


def test_every_store_kind_the_portal_offers_has_exactly_one_connector():
    assert set(CONNECTORS) == set(StoreKind.values)
    assert all(cls.kind == kind for kind, cls in CONNECTORS.items())


def test_an_unknown_kind_is_refused_naming_the_known_ones():
    with pytest.raises(PermanentStoreError, match="known: files, manual"):
        connector_class("ftp")


@pytest.mark.parametrize(
    ("flag", "method"),
    [
        ("supports_masking", "mask_keys"),
        ("can_discover", "describe"),
        ("can_scan_values", "scan_values"),
    ],
)
def test_a_capability_flag_is_set_exactly_where_the_kind_implements_it(flag, method):
    for kind, cls in CONNECTORS.items():
        implemented = getattr(cls, method) is not getattr(Connector, method)
        assert getattr(cls, flag) is implemented, kind


def test_only_the_manual_kind_is_handled_by_staff_without_a_url_or_a_search():
    assert kinds_where("is_manual") == {"manual"}
    assert kinds_where("searchable", False) == {"manual"}
    assert kinds_where("needs_url", False) == {"manual"}


def test_the_portal_passes_its_secret_to_webhooks_and_its_roots_to_file_stores_only():
    assert kinds_where("needs_secret") == {"webhook"}
    assert kinds_where("reads_local_files") == {"files"}
    assert kinds_where("erases_by_identity") == {"webhook"}
