"""The reference graph: what the finder walks, what it must remember, and the deletion order."""

from __future__ import annotations

import pytest

from requests.engine.graph import Entry, Node, deletion_order, walk_plan
from requests.engine.storemap import StoreMap

SHOP = StoreMap.model_validate(
    {
        "collections": {
            "customer": {
                "key": ["id"],
                "fields": {
                    "email": {"identity": "email"},
                    "address_id": {
                        "references": {"collection": "address", "field": "id", "follow": "parent"}
                    },
                },
            },
            "address": {"key": ["id"]},
            "orders": {
                "key": ["id"],
                "fields": {
                    "customer_id": {"references": {"collection": "customer", "field": "id"}},
                    "email": {"identity": "email"},
                },
            },
            "order_line": {
                "key": ["id"],
                "fields": {
                    "order_id": {"references": {"collection": "orders", "field": "id"}},
                    "product_id": {
                        "references": {"collection": "product", "field": "id", "follow": "none"}
                    },
                },
            },
            "product": {"key": ["id"]},
        }
    }
)
CRM = StoreMap.model_validate(
    {
        "collections": {
            "contact": {
                "key": ["id"],
                "fields": {
                    "shop_id": {
                        "references": {"store": "shop", "collection": "customer", "field": "id"}
                    }
                },
            }
        }
    }
)


def test_the_walk_starts_at_identity_fields_of_the_given_types_only():
    plan = walk_plan({"shop": SHOP}, ["email"])

    assert {(s.node.collection, s.field) for s in plan.seeds} == {
        ("customer", "email"),
        ("orders", "email"),
    }
    assert walk_plan({"shop": SHOP}, ["phone"]).seeds == []


def test_the_walk_reaches_children_parents_and_other_stores_but_not_unfollowed_references():
    plan = walk_plan({"shop": SHOP, "crm": CRM}, ["email"])

    reached = {str(node) for node in plan.reachable}
    assert reached == {
        "shop.customer",
        "shop.orders",
        "shop.order_line",
        "shop.address",
        "crm.contact",
    }
    assert "shop.product" not in reached


def test_only_collections_with_several_ways_in_keep_the_keys_they_have_seen():
    plan = walk_plan({"shop": SHOP, "crm": CRM}, ["email"])

    # Orders come by email and by customer id; order lines only through their order.
    assert plan.multi_entry == {Node("shop", "orders")}


def test_values_are_remembered_only_where_the_same_value_can_come_twice():
    plan = walk_plan({"shop": SHOP, "crm": CRM}, ["email"])

    # Many customers can share an address: its ids come from a column that is not a key.
    assert plan.remember == {Entry(Node("shop", "address"), "id")}


def test_deletion_order_puts_referencing_collections_first():
    order = deletion_order("shop", SHOP)

    assert order.index("order_line") < order.index("orders") < order.index("customer")
    assert order.index("customer") < order.index("address")
    assert order.index("order_line") < order.index("product")


def test_deletion_order_refuses_a_blocking_cycle():
    looped = StoreMap.model_validate(
        {
            "collections": {
                "a": {
                    "key": ["id"],
                    "fields": {"b_id": {"references": {"collection": "b", "field": "id"}}},
                },
                "b": {
                    "key": ["id"],
                    "fields": {"a_id": {"references": {"collection": "a", "field": "id"}}},
                },
            }
        }
    )
    with pytest.raises(ValueError, match="cycle"):
        deletion_order("s", looped)
