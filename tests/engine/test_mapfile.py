"""Store map YAML: every problem is reported with the line (and place) it is on."""

from __future__ import annotations

import textwrap

import pytest

from requests.engine.mapfile import (
    MAX_DEPTH,
    MapError,
    MapTooLarge,
    dump_store_map,
    load_store_map,
)
from requests.engine.readiness import store_readiness
from requests.engine.storemap import EraseAction, Follow, Match, StoreMap

SHOP = """\
collections:
  customer:
    key: [id]
    fields:
      email: {identity: email}
      phone: {identity: phone, match: exact}
      first_name:
    info: {purposes: [orders], legal_basis: contract, recipients: [carrier]}
  invoice:
    key: [id]
    fields:
      customer_id:
        references: {collection: customer, field: id}
    erasure: {action: hold, basis: "Tax law keeps invoices for 10 years (Art. 17(3)(b))"}
"""


def problems(text: str, **kwargs) -> list:
    with pytest.raises(MapError) as caught:
        load_store_map(textwrap.dedent(text), **kwargs)
    return caught.value.problems


def test_a_valid_map_loads_with_its_defaults():
    store_map = load_store_map(SHOP)

    customer = store_map.collections["customer"]
    assert customer.name == "customer"
    assert customer.identity_fields() == {"email": "email", "phone": "phone"}
    assert customer.fields["phone"].match == Match.EXACT
    assert "first_name" in customer.fields
    ref = store_map.collections["invoice"].fields["customer_id"].references
    assert ref.follow == Follow.CHILDREN
    assert store_map.collections["invoice"].erasure.action == EraseAction.HOLD


def test_a_map_dumps_to_yaml_that_loads_back_equal():
    store_map = load_store_map(SHOP)

    assert load_store_map(dump_store_map(store_map)) == store_map


def test_an_empty_document_is_an_empty_map():
    assert load_store_map("").collections == {}


def test_a_yaml_syntax_error_names_its_line_and_column():
    (problem,) = problems(
        """\
        collections:
          customer:
            key: [id
            fields: {}
        """
    )
    assert problem.line == 4
    assert problem.column is not None
    assert "YAML syntax" in problem.message
    assert "started on line 3" in problem.message
    assert str(problem).startswith("line 4, column")


def test_an_unknown_collection_in_a_reference_names_the_line():
    (problem,) = problems(
        """\
        collections:
          customer:
            key: [id]
          invoice:
            key: [id]
            fields:
              customer_id:
                references: {collection: Customer, field: id}
        """
    )
    assert problem.line == 8
    assert problem.place == "collections.invoice.fields.customer_id.references.collection"
    assert "unknown collection 'Customer'" in problem.message
    assert "did you mean 'customer'" in problem.message


def test_a_reference_to_a_missing_field_names_the_line():
    (problem,) = problems(
        """\
        collections:
          customer:
            key: [id]
            fields:
              email: {identity: email}
          invoice:
            key: [id]
            fields:
              customer_id:
                references:
                  collection: customer
                  field: customer_id
        """
    )
    assert problem.line == 12
    assert "has no field 'customer_id'" in problem.message


def test_a_cycle_of_non_nullable_references_is_valid_and_erasure_says_it_will_mask_it():
    text = """\
        collections:
          customer:
            key: [id]
            fields:
              last_order_id:
                references: {collection: orders, field: id}
          orders:
            key: [id]
            fields:
              customer_id:
                references: {collection: customer, field: id}
        """
    store_map = load_store_map(textwrap.dedent(text))  # no MapError
    (warning,) = [w for w in store_readiness("shop", {"shop": store_map}).warnings if "loop" in w]
    assert "customer.last_order_id -> orders" in warning
    assert "orders.customer_id -> customer" in warning
    assert "masks the person's records" in warning


def test_a_cycle_through_a_nullable_reference_is_allowed():
    store_map = load_store_map(
        """\
        collections:
          customer:
            key: [id]
            fields:
              last_order_id:
                references: {collection: orders, field: id, nullable: true}
          orders:
            key: [id]
            fields:
              customer_id:
                references: {collection: customer, field: id}
          employee:
            key: [id]
            fields:
              reports_to:
                references: {collection: employee, field: id, follow: none, nullable: true}
        """
    )
    assert set(store_map.collections) == {"customer", "orders", "employee"}


def test_a_self_reference_that_is_not_nullable_is_a_loop_erasure_masks():
    store_map = load_store_map(
        textwrap.dedent(
            """\
            collections:
              comment:
                key: [id]
                fields:
                  parent_id:
                    references: {collection: comment, field: id}
            """
        )
    )
    (warning,) = [w for w in store_readiness("forum", {"forum": store_map}).warnings if "loop" in w]
    assert "comment.parent_id -> comment" in warning


def test_a_reference_to_an_unknown_store_is_an_error_when_stores_are_known():
    text = """\
        collections:
          contacts:
            key: [id]
            fields:
              shop_customer_id:
                references: {store: shopp, collection: customers, field: id}
        """
    (problem,) = problems(text, store_names={"shop", "crm"})
    assert problem.line == 6
    assert "unknown store 'shopp'" in problem.message
    # Without the list of stores the reference cannot be checked, and is accepted.
    assert load_store_map(textwrap.dedent(text)).collections["contacts"]


def test_an_unknown_setting_and_a_wrong_value_each_name_their_line():
    found = problems(
        """\
        collections:
          customer:
            key: [id]
            fields:
              email: {identity: email, indentity: phone}
              id:
                references: {collection: customer, field: id, follow: sideways}
        """
    )
    by_line = {p.line: p for p in found}
    assert "unknown setting 'indentity'" in by_line[5].message
    assert "follow" in by_line[7].place


def test_an_undeclared_identity_type_is_an_error_but_a_declared_one_is_not():
    (problem,) = problems(
        """\
        collections:
          members:
            key: [id]
            fields:
              card: {identity: loyalty_card}
        """
    )
    assert problem.line == 5
    assert "unknown identity type 'loyalty_card'" in problem.message

    store_map = load_store_map(
        "identity_types: [loyalty_card]\n"
        "collections:\n  members:\n    key: [id]\n"
        "    fields:\n      card: {identity: loyalty_card}\n"
    )
    assert store_map.collections["members"].identity_fields() == {"card": "loyalty_card"}


def test_a_hold_without_its_legal_basis_is_an_error():
    (problem,) = problems(
        """\
        collections:
          invoice:
            key: [id]
            erasure: {action: hold}
        """
    )
    assert problem.line == 4
    assert "legal basis" in problem.message


def test_a_duplicate_key_names_both_lines():
    (problem,) = problems(
        """\
        collections:
          customer:
            key: [id]
          customer:
            key: [customer_id]
        """
    )
    assert problem.line == 4
    assert "first on line 2" in problem.message


def test_every_problem_is_reported_at_once():
    found = problems(
        """\
        collections:
          invoice:
            key: [id]
            fields:
              customer_id: {references: {collection: customer, field: id}}
              card: {identity: emial}
            erasure: {action: hold}
        """
    )
    assert [p.line for p in found] == [5, 6, 7]


def test_a_control_character_in_a_map_is_refused_with_its_line():
    with pytest.raises(MapError) as caught:
        load_store_map("collections:\n  customers:\n    key: [id]\f\n")
    assert caught.value.problems[0].line == 3
    assert "not allowed" in str(caught.value)


BILLION_LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(9)
)


def test_anchors_and_aliases_are_refused_with_the_line_of_the_first():
    with pytest.raises(MapError) as raised:
        load_store_map(BILLION_LAUGHS)
    (problem,) = raised.value.problems
    assert problem.line == 1
    assert "anchors and aliases" in problem.message


def test_an_alias_alone_is_refused_too():
    text = "collections:\n  a:\n    key: [id]\n  b: *a\n"
    with pytest.raises(MapError) as raised:
        load_store_map(text)
    assert raised.value.problems[0].line == 4


def test_nesting_deeper_than_the_limit_is_refused_before_anything_is_built():
    deep = "collections:\n  x: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "\n"
    with pytest.raises(MapError) as raised:
        load_store_map(deep)
    assert raised.value.problems[0].line == 2
    assert f"{MAX_DEPTH} levels" in raised.value.problems[0].message


def test_a_map_over_the_size_limit_is_refused_naming_its_size_and_the_limit():
    text = "collections: {}\n" + "# padding\n" * 200
    with pytest.raises(MapTooLarge) as raised:
        load_store_map(text, max_bytes=1000)
    assert (raised.value.size, raised.value.limit) == (len(text), 1000)
    assert "at most 1000 bytes" in str(raised.value)


def test_a_dumped_map_never_holds_aliases_even_when_values_are_shared():
    shared = ["id"]
    store_map = StoreMap.model_validate(
        {"collections": {"a": {"key": shared}, "b": {"key": shared}}}
    )
    text = dump_store_map(store_map)
    assert "&" not in text and "*" not in text
    assert load_store_map(text) == store_map
