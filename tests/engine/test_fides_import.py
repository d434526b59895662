"""Importing a Fides dataset YAML as a starting map."""

from __future__ import annotations

import pytest

from requests.engine.fides import import_fides_dataset
from requests.engine.mapfile import MapError, dump_store_map, load_store_map
from requests.engine.storemap import Follow, RefKind, Role

# Written for these tests in the Fides dataset format (fides_meta with identity, primary_key and
# references with a direction), with one collection in the older `fidesops_meta` spelling.
DATASET = """\
dataset:
  - fides_key: shop_db
    name: Shop database
    collections:
      - name: customer
        data_categories: [user]
        fides_meta:
          masking_strategy_override: {strategy: delete}
        fields:
          - name: id
            data_categories: [user.unique_id]
            fides_meta:
              primary_key: true
          - name: email
            data_categories: [user.contact.email]
            fides_meta:
              identity: email
              data_type: string
          - name: mobile
            fides_meta:
              identity: phone_number
          - name: loyalty_card
            fides_meta:
              identity: loyalty_card
          - name: address_id
            fides_meta:
              references:
                - dataset: shop_db
                  field: address.id
                  direction: to
          - name: preferences
            fields:
              - name: newsletter
      - name: address
        fields:
          - name: id
            fides_meta: {primary_key: true}
          - name: street
            data_categories: [user.contact.address.street]
      - name: orders
        fields:
          - name: id
            fidesops_meta:
              primary_key: True
          - name: customer_id
            fidesops_meta:
              references:
                - dataset: shop_db
                  field: customer.id
                  direction: from
      - name: order_item
        fields:
          - name: id
            fides_meta:
              primary_key: true
              # Declared on the referenced side: the items' order_id holds the order's id.
              references:
                - dataset: shop_db
                  field: payment.order_item_id
          - name: order_id
            fides_meta:
              references:
                - field: orders.id
                  direction: from
      - name: payment
        fields:
          - name: id
            fides_meta: {primary_key: true}
          - name: order_item_id
      - name: ticket
        fields:
          - name: id
            fides_meta: {primary_key: true}
          - name: customer_ref
            fides_meta:
              references:
                - dataset: helpdesk_api
                  field: users.customer_id
                  direction: from
"""


def test_collections_keys_identities_and_categories_are_imported():
    store_map = import_fides_dataset(DATASET)

    customer = store_map.collections["customer"]
    assert customer.key == ["id"]
    assert customer.identity_fields() == {
        "email": "email",
        "mobile": "phone",
        "loyalty_card": "loyalty_card",
    }
    assert store_map.identity_types == ["loyalty_card"]
    assert customer.categories == ["user"]
    assert customer.fields["email"].categories == ["user.contact.email"]
    assert store_map.collections["orders"].key == ["id"]  # from the older fidesops_meta


def test_reference_directions_become_follow_settings():
    store_map = import_fides_dataset(DATASET)
    c = store_map.collections

    orders = c["orders"].fields["customer_id"].references
    assert (orders.collection, orders.field, orders.follow) == ("customer", "id", Follow.CHILDREN)
    address = c["customer"].fields["address_id"].references
    assert (address.collection, address.field, address.follow) == ("address", "id", Follow.PARENT)
    items = c["order_item"].fields["order_id"].references
    assert (items.collection, items.follow) == ("orders", Follow.CHILDREN)


def test_a_reference_declared_by_a_primary_key_is_written_on_the_referencing_field():
    store_map = import_fides_dataset(DATASET)

    payment = store_map.collections["payment"].fields["order_item_id"].references
    # No direction: the order item leads to a customer, so the payment belongs to it.
    assert (payment.collection, payment.field, payment.follow) == (
        "order_item",
        "id",
        Follow.CHILDREN,
    )
    assert store_map.collections["order_item"].fields["id"].references is None


def test_a_reference_to_another_dataset_becomes_a_cross_store_reference():
    store_map = import_fides_dataset(DATASET, store_names={"helpdesk_api": "helpdesk"})

    ticket = store_map.collections["ticket"].fields["customer_ref"].references
    assert (ticket.store, ticket.collection, ticket.field) == ("helpdesk", "users", "customer_id")
    assert ticket.follow == Follow.CHILDREN


def test_what_is_not_imported_is_noted_for_the_reviewer():
    store_map = import_fides_dataset(DATASET)

    assert any("customer.preferences: nested fields" in note for note in store_map.notes)
    assert any("review each collection's erasure" in note for note in store_map.notes)


def test_the_imported_map_dumps_to_a_valid_portal_map():
    store_map = import_fides_dataset(DATASET, store_names={"helpdesk_api": "helpdesk"})

    text = dump_store_map(store_map)

    assert load_store_map(text, store_names={"shop", "helpdesk"}) == store_map


def test_a_reference_to_a_missing_collection_names_the_fides_line():
    broken = DATASET.replace("field: customer.id", "field: custmer.id")

    with pytest.raises(MapError) as caught:
        import_fides_dataset(broken)

    (problem,) = caught.value.problems
    assert problem.line == DATASET.splitlines().index("                  field: customer.id") + 1
    assert "unknown collection 'custmer'" in problem.message


def test_a_file_with_several_datasets_needs_the_one_to_import():
    two = DATASET + "  - fides_key: other\n    collections: []\n"

    with pytest.raises(MapError, match="several datasets"):
        import_fides_dataset(two)
    assert import_fides_dataset(two, dataset="other").collections == {}


def test_a_yaml_syntax_error_in_a_fides_file_names_the_line():
    with pytest.raises(MapError) as caught:
        import_fides_dataset("dataset:\n  - fides_key: x\n    collections: [\n")
    assert caught.value.problems[0].line is not None


def test_a_reference_between_two_collections_of_people_is_a_mention():
    dataset = """\
dataset:
  - fides_key: desk
    collections:
      - name: employee
        fields:
          - name: id
            fides_meta: {primary_key: true}
          - name: email
            fides_meta: {identity: email}
      - name: ticket
        fields:
          - name: id
            fides_meta: {primary_key: true}
          - name: requester_email
            fides_meta: {identity: email}
          - name: employee_id
            fides_meta:
              references: [{field: employee.id, direction: from}]
      - name: login
        fields:
          - name: id
            fides_meta: {primary_key: true}
          - name: employee_id
            fides_meta:
              references: [{field: employee.id, direction: from}]
"""
    imported = import_fides_dataset(dataset)

    handled = imported.collections["ticket"].fields["employee_id"].references
    assert (handled.kind, handled.follow) == (RefKind.MENTION, Follow.CHILDREN)
    assert any(
        note.startswith("ticket.employee_id -> employee: a mention") for note in imported.notes
    )
    # A row with no identity of its own still belongs to the person it points at.
    assert imported.collections["login"].fields["employee_id"].references.kind == RefKind.OWNER


def test_a_reference_to_a_nested_field_is_noted_not_refused():
    dataset = """\
dataset:
  - fides_key: app
    collections:
      - name: customer
        fields:
          - name: id
            fides_meta: {primary_key: true}
          - name: email
            fides_meta: {identity: email}
          - name: profile
            fields:
              - name: referral_code
      - name: referral
        fields:
          - name: id
            fides_meta: {primary_key: true}
          - name: code
            fides_meta:
              references: [{field: customer.profile.referral_code, direction: from}]
"""
    imported = import_fides_dataset(dataset)

    assert imported.collections["referral"].fields["code"].references is None
    assert any("nested field customer.profile.referral_code" in n for n in imported.notes)


def test_a_reference_with_no_direction_is_settled_by_whom_it_leads_to():
    """Walked both ways as ownership, an undirected customer -> address reference would make
    the customer belong to the address, and so to everyone else living there."""
    dataset = """\
dataset:
  - fides_key: shop
    collections:
      - name: customer
        fields:
          - name: id
            fides_meta: {primary_key: true}
          - name: email
            fides_meta: {identity: email}
          - name: address_id
            fides_meta:
              references: [{field: address.id}]
      - name: address
        fields:
          - name: id
            fides_meta: {primary_key: true}
          - name: street
            data_categories: [user.contact.address.street]
      - name: orders
        fields:
          - name: id
            fides_meta: {primary_key: true}
          - name: customer_id
            fides_meta:
              references: [{field: customer.id}]
      - name: order_line
        fields:
          - name: order_id
            data_categories: [system.operations]
            fides_meta:
              references: [{field: orders.id}]
"""
    c = import_fides_dataset(dataset).collections

    assert c["customer"].fields["address_id"].references.follow == Follow.PARENT
    assert c["orders"].fields["customer_id"].references.follow == Follow.CHILDREN
    assert c["order_line"].fields["order_id"].references.follow == Follow.CHILDREN
    assert c["order_line"].effective_role == Role.OWNED


def test_a_category_written_without_brackets_is_one_category():
    dataset = """\
dataset:
  - fides_key: shop
    collections:
      - name: product
        fields:
          - name: id
            data_categories: system.operations
            fides_meta: {primary_key: true}
          - name: label
            data_categories: [system.operations]
"""
    product = import_fides_dataset(dataset).collections["product"]

    assert product.fields["id"].categories == ["system.operations"]
    assert product.effective_role == Role.REFERENCE


@pytest.mark.parametrize(
    ("collection", "message"),
    [
        ("        fields: abc\n", "fields is a list"),
        (
            "        fields:\n          - name: x\n            fides_meta: {identity: [email]}\n",
            "identity is a type name",
        ),
    ],
)
def test_a_misshapen_collection_is_refused_with_its_line(collection, message):
    dataset = "dataset:\n  - fides_key: a\n    collections:\n      - name: c\n" + collection

    with pytest.raises(MapError, match=message):
        import_fides_dataset(dataset)


def test_a_masking_override_written_as_a_word_is_ignored_not_a_crash():
    dataset = """\
dataset:
  - fides_key: a
    collections:
      - name: c
        fides_meta: {masking_strategy_override: delete}
        fields:
          - name: id
            fides_meta: {primary_key: true}
"""
    assert import_fides_dataset(dataset).collections["c"].key == ["id"]
