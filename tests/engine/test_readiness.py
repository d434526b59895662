"""What `stores check` and the preview say a job would refuse or do differently, from the maps
alone (requests.engine.readiness); end to end on real databases in tests/test_stores_check.py."""

from __future__ import annotations

import textwrap

from requests.engine.mapfile import load_store_map
from requests.engine.readiness import store_readiness


def _map(text: str):
    return load_store_map(textwrap.dedent(text))


SHOP = """\
    collections:
      customers:
        key: [id]
        fields:
          email: {identity: email}
          name: {categories: [user.name]}
      orders:
        key: [id]
        fields:
          customer_id: {references: {collection: customers, field: id}}
          note:
      countries:
        key: [code]
        role: reference
      exports:
        key: [id]
        fields:
          what:
    """


def test_a_map_with_nothing_to_say_says_nothing():
    text = SHOP.replace("      exports:\n        key: [id]\n        fields:\n          what:\n", "")
    ready = store_readiness("shop", {"shop": _map(text)})
    assert (ready.problems, ready.warnings, ready.notes) == ([], [], [])


def test_a_collection_nothing_leads_to_is_named_and_reference_data_is_not():
    ready = store_readiness("shop", {"shop": _map(SHOP)}, noun="table")
    (warning,) = ready.warnings
    assert warning.startswith("table exports: ") and "never find anything" in warning
    assert "countries" not in warning


def test_a_reachable_collection_without_a_key_is_a_problem_for_erasure_by_key_only():
    text = SHOP.replace(
        "      orders:\n        key: [id]\n", "      orders:\n        location: order_rows\n"
    )
    ready = store_readiness("shop", {"shop": _map(text)}, noun="table")
    (problem,) = ready.problems
    assert problem.startswith("table orders (order_rows) has no key")
    assert ready.erasure_instead == {"orders": "refuse"}
    # A webhook erases by identity: no key needed.
    assert store_readiness("shop", {"shop": _map(text)}, erases_by_key=False).problems == []


def test_a_loop_in_a_store_that_cannot_mask_is_a_problem():
    text = """\
        collections:
          shop:
            key: [id]
            fields:
              manager_id: {references: {collection: staff, field: id}}
          staff:
            key: [id]
            fields:
              email: {identity: email}
              shop_id: {references: {collection: shop, field: id}}
        """
    masking = store_readiness("s", {"s": _map(text)})
    assert masking.problems == []
    (loop,) = masking.warnings
    assert "shop.manager_id -> staff; staff.shop_id -> shop" in loop
    assert "collection staff: email" in loop and "collection shop: nothing" in loop
    assert masking.erasure_instead == {"shop": "mask", "staff": "mask"}

    not_masking = store_readiness("s", {"s": _map(text)}, can_mask=False)
    (problem,) = not_masking.problems
    assert "cannot mask" in problem and "shop.manager_id -> staff" in problem


def test_a_nullable_link_in_a_loop_is_a_note_not_a_warning():
    text = """\
        collections:
          employee:
            key: [id]
            fields:
              email: {identity: email}
              reports_to: {references: {collection: employee, field: id, nullable: true}}
        """
    ready = store_readiness("hr", {"hr": _map(text)})
    assert ready.warnings == [] and ready.problems == []
    (note,) = ready.notes
    assert "sets employee.reports_to to null" in note


def test_fallbacks_that_cannot_do_what_the_map_says_are_warnings():
    text = """\
        collections:
          customers:
            key: [id]
            fields:
              email: {identity: email}
            erasure: {action: delete, fallback: nullify}
          orders:
            key: [id]
            fields:
              customer_id: {references: {collection: customers, field: id}}
            erasure: {action: hold, basis: tax law}
          tags:
            key: [id]
            fields:
              label:
          tag_uses:
            key: [id]
            fields:
              customer_id: {references: {collection: customers, field: id}}
              tag_id: {references: {collection: tags, field: id, follow: parent}}
            erasure: {action: hold, basis: kept}
        """
    ready = store_readiness("shop", {"shop": _map(text)})
    nullify = [w for w in ready.warnings if "`nullify`" in w]
    assert len(nullify) == 1
    assert "orders.customer_id" in nullify[0] and "tag_uses.customer_id" in nullify[0]
    assert "masked instead of deleted" in nullify[0]
    (kept,) = [w for w in ready.warnings if w.startswith("collection tags:")]
    assert "tag_uses.tag_id" in kept and "kept as it is" in kept


PHONES = """\
    collections:
      customers:
        key: [id]
        fields:
          phone: {identity: phone}
          mobile: {identity: phone, match: exact}
    """


def test_a_phone_field_no_region_reads_is_a_warning_where_numbers_are_read_as_typed():
    store_map = _map(PHONES)
    (warning,) = store_readiness(
        "shop", {"shop": store_map}, reads_phone_regions=True, noun="table"
    ).warnings
    assert warning.startswith("customers.phone: ") and "mobile" not in warning
    assert "PORTAL_DEFAULT_PHONE_REGION" in warning and "this table" in warning
    # A region from the portal, or the map, reads them; stores comparing normal forms need none.
    assert (
        store_readiness("s", {"s": store_map}, reads_phone_regions=True, phone_region="FR").warnings
        == []
    )
    regional = _map(PHONES.replace("    collections:", "    phone_region: FR\n    collections:"))
    assert store_readiness("s", {"s": regional}, reads_phone_regions=True).warnings == []
    assert store_readiness("s", {"s": store_map}).warnings == []


def test_a_collection_in_a_loop_without_a_key_is_refused_not_masked():
    text = """\
        collections:
          shop:
            fields:
              shop_no:
              manager_id: {references: {collection: staff, field: id}}
          staff:
            key: [id]
            fields:
              email: {identity: email}
              shop_id: {references: {collection: shop, field: shop_no}}
        """
    ready = store_readiness("s", {"s": _map(text)})
    assert ready.erasure_instead == {"shop": "refuse", "staff": "mask"}
    assert any(p.startswith("collection shop has no key") for p in ready.problems)
    (loop,) = [w for w in ready.warnings if w.startswith("loop of references")]
    assert "in these collections instead of deleting them" in loop
