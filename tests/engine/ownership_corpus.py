"""Real-shaped schemas for the ownership tests, and an oracle that knows nothing of the engine.

Each pattern is a schema as application developers write them (sample rental shops, forums,
order systems), with a few people whose records overlap, and what its author says the references
mean: which make a row belong to the row pointed at (`owner`), which make the row pointed at
belong to the referring rows (`parent`: a shared address), which only mention someone
(`mention`), and which tables are catalogue data (`reference`). The engine never sees that
truth: it connects the schema with discovery, untouched.

The oracle reads every row with plain SQL and computes each row's owners by brute force: a
person row owns itself; a row is owned by the owners of every row its owner references point
at, and a `parent` row by the owners of every row pointing at it; repeated until nothing
changes. A row is the person's alone when it has owners and all of them are the person's rows.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

Ref = tuple[str, str, str]  # (table, column, target table); the target column is always `id`


@dataclass
class Pattern:
    name: str
    kinds: tuple[str, ...]
    schema: dict[str, list[str]]  # kind -> statements ("*" for every kind)
    people: dict[str, tuple[str, int, dict[str, str]]]  # who -> (table, id, identity to ask with)
    person_tables: dict[str, list[str]]  # table -> its identity columns
    owner: list[Ref] = field(default_factory=list)
    parent: list[Ref] = field(default_factory=list)
    mention: list[Ref] = field(default_factory=list)
    reference: set[str] = field(default_factory=set)

    def statements(self, kind: str) -> list[str]:
        return self.schema.get(kind, self.schema.get("*", []))

    @property
    def tables(self) -> list[str]:
        names = {t for t, _, _ in self.owner + self.parent + self.mention}
        names |= {t for _, _, t in self.owner + self.parent + self.mention}
        return sorted(names | set(self.person_tables) | self.reference)


def read_all(url: str, tables) -> dict[str, dict[Any, dict[str, Any]]]:
    """table -> id -> row (column -> value), with plain SQL."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    prep = engine.dialect.identifier_preparer
    out: dict[str, dict[Any, dict[str, Any]]] = {}
    try:
        with engine.connect() as conn:
            for table in tables:
                result = conn.execute(sa.text(f"SELECT * FROM {prep.quote(table)}"))
                out[table] = {row["id"]: dict(row) for row in result.mappings()}
    finally:
        engine.dispose()
    return out


class Oracle:
    def __init__(self, pattern: Pattern, data: dict[str, dict[Any, dict[str, Any]]]) -> None:
        self.pattern = pattern
        self.data = data
        owners: dict[tuple[str, Any], set] = {
            (t, i): set() for t, rows in data.items() for i in rows
        }
        for table in pattern.person_tables:
            for i in data[table]:
                owners[(table, i)].add((table, i))
        changed = True
        while changed:
            changed = False
            for table, column, target in pattern.owner:
                if table in pattern.person_tables:
                    continue  # a person row is its own: nothing it points at owns it
                for i, row in data[table].items():
                    value = row[column]
                    if value is not None and (target, value) in owners:
                        before = len(owners[(table, i)])
                        owners[(table, i)] |= owners[(target, value)]
                        changed |= len(owners[(table, i)]) != before
            for table, column, target in pattern.parent:
                for i, row in data[table].items():
                    value = row[column]
                    if value is not None and (target, value) in owners:
                        before = len(owners[(target, value)])
                        owners[(target, value)] |= owners[(table, i)]
                        changed |= len(owners[(target, value)]) != before
        self.owners = owners

    def person_rows(self, who: str) -> set:
        table, i, _ = self.pattern.people[who]
        return {(table, i)}

    def alone(self, who: str) -> set:
        mine = self.person_rows(who)
        return {
            row
            for row, owners in self.owners.items()
            if owners and owners <= mine and row[0] not in self.pattern.reference
        }

    def concerns(self, who: str) -> set:
        """Rows not the person's alone that still concern them: co-owned, or mentioning one of
        the person's own rows."""
        alone = self.alone(who)
        mine = self.person_rows(who)
        out = set()
        for row, owners in self.owners.items():
            if row in alone or row[0] in self.pattern.reference:
                continue
            if owners & mine:
                out.add(row)
        for table, column, target in self.pattern.mention:
            if table in self.pattern.reference:
                continue
            for i, data in self.data[table].items():
                if (target, data[column]) in alone and (table, i) not in alone:
                    out.add((table, i))
        return out

    def identity_values(self, who: str) -> list[str]:
        """The identity values of a person's own rows (what must never reach another's package)."""
        table, i, _ = self.pattern.people[who]
        row = self.data[table][i]
        return [str(row[c]) for c in self.pattern.person_tables[table] if row[c] is not None]

    def references_to(self, who: str) -> set[tuple[str, str]]:
        """(table, column) of every reference a row may hold to the person's rows: the columns
        erasure may set to null in rows that are not the person's alone."""
        return {
            (t, c) for t, c, _ in self.pattern.owner + self.pattern.mention + self.pattern.parent
        }


# --- the patterns ------------------------------------------------------------------------------

RENTALS = [
    """CREATE TABLE customer (id INTEGER PRIMARY KEY, email VARCHAR(120) NOT NULL,
        first_name VARCHAR(60) NOT NULL, last_name VARCHAR(60) NOT NULL)""",
    """CREATE TABLE staff (id INTEGER PRIMARY KEY, email VARCHAR(120) NOT NULL,
        first_name VARCHAR(60) NOT NULL)""",
    """CREATE TABLE film (id INTEGER PRIMARY KEY, title VARCHAR(100) NOT NULL)""",
    """CREATE TABLE rental (id INTEGER PRIMARY KEY, film_id INTEGER NOT NULL,
        customer_id INTEGER NOT NULL, staff_id INTEGER NOT NULL, rented_on VARCHAR(20),
        FOREIGN KEY (film_id) REFERENCES film (id),
        FOREIGN KEY (customer_id) REFERENCES customer (id),
        FOREIGN KEY (staff_id) REFERENCES staff (id))""",
    """CREATE TABLE payment (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL,
        rental_id INTEGER NULL, staff_id INTEGER NOT NULL, amount NUMERIC(8, 2) NOT NULL,
        FOREIGN KEY (customer_id) REFERENCES customer (id),
        FOREIGN KEY (rental_id) REFERENCES rental (id),
        FOREIGN KEY (staff_id) REFERENCES staff (id))""",
    """INSERT INTO customer VALUES (1, 'ann.rental@example.org', 'Annabel', 'Quist'),
        (2, 'bo.rental@example.org', 'Bohdan', 'Vrana'), (3, 'cy.rental@example.org', 'Cyprian',
        'Lowe')""",
    "INSERT INTO staff VALUES (1, 'mike.staff@example.org', 'Mikkel')",
    "INSERT INTO film VALUES (1, 'Academy Dinosaur'), (2, 'Ace Goldfinger')",
    """INSERT INTO rental VALUES (10, 1, 1, 1, '2005-05-24'), (11, 2, 1, 1, '2005-05-25'),
        (12, 1, 2, 1, '2005-05-26'), (13, 2, 3, 1, '2005-05-27')""",
    # 100-101: Ann pays her rentals; 102: Bo pays part of Ann's rental 11; 103: Ann pays part of
    # Bo's rental 12; 104: Bo's own; 105: Cy's own.
    """INSERT INTO payment VALUES (100, 1, 10, 1, 2.99), (101, 1, 11, 1, 0.99),
        (102, 2, 11, 1, 1.00), (103, 1, 12, 1, 4.99), (104, 2, 12, 1, 0.99),
        (105, 3, 13, 1, 2.99)""",
]

RENTAL_PEOPLE = {
    "ann": ("customer", 1, {"email": "Ann.Rental@example.org"}),
    "bo": ("customer", 2, {"email": "bo.rental@example.org"}),
    "mike": ("staff", 1, {"email": "mike.staff@example.org"}),
}
RENTAL_TRUTH = {
    "person_tables": {"customer": ["email", "first_name", "last_name"], "staff": ["email"]},
    "owner": [
        ("rental", "customer_id", "customer"),
        ("payment", "customer_id", "customer"),
        ("payment", "rental_id", "rental"),
    ],
    "mention": [("rental", "staff_id", "staff"), ("payment", "staff_id", "staff")],
    "reference": {"film"},
}


def _without_foreign_keys(statements: list[str]) -> list[str]:
    """The same schema as an application that declares no foreign keys at all."""
    import re

    out = []
    for statement in statements:
        cleaned = re.sub(r",\s*FOREIGN KEY \([^)]*\) REFERENCES \w+ \([^)]*\)", "", statement)
        out.append(cleaned)
    return out


def _partitioned_payments(statements: list[str]) -> list[str]:
    """The rentals with `payment` partitioned by id as a PostgreSQL sample database does it: the
    parent declares no foreign key, the older partition has them, the newest has none."""
    out = []
    for statement in statements:
        if statement.startswith("CREATE TABLE payment"):
            out += [
                """CREATE TABLE payment (id INTEGER NOT NULL, customer_id INTEGER NOT NULL,
                    rental_id INTEGER NULL, staff_id INTEGER NOT NULL,
                    amount NUMERIC(8, 2) NOT NULL, PRIMARY KEY (id)) PARTITION BY RANGE (id)""",
                "CREATE TABLE payment_p1 PARTITION OF payment FOR VALUES FROM (0) TO (103)",
                "ALTER TABLE payment_p1 ADD FOREIGN KEY (customer_id) REFERENCES customer (id)",
                "ALTER TABLE payment_p1 ADD FOREIGN KEY (rental_id) REFERENCES rental (id)",
                "ALTER TABLE payment_p1 ADD FOREIGN KEY (staff_id) REFERENCES staff (id)",
                "CREATE TABLE payment_p2 PARTITION OF payment FOR VALUES FROM (103) TO (1000)",
            ]
        else:
            out.append(statement)
    return out


ADDRESSES = [
    """CREATE TABLE address (id INTEGER PRIMARY KEY, address VARCHAR(100) NOT NULL,
        postal_code VARCHAR(12), city VARCHAR(60))""",
    """CREATE TABLE customer (id INTEGER PRIMARY KEY, email VARCHAR(120) NOT NULL,
        address_id INTEGER NOT NULL, FOREIGN KEY (address_id) REFERENCES address (id))""",
    """CREATE TABLE staff (id INTEGER PRIMARY KEY, email VARCHAR(120) NOT NULL,
        address_id INTEGER NULL, FOREIGN KEY (address_id) REFERENCES address (id))""",
    """INSERT INTO address VALUES (10, '47 MySakila Drive', 'AB1 2CD', 'Lethbridge'),
        (11, '28 MySQL Boulevard', 'EF3 4GH', 'Woodridge')""",
    """INSERT INTO customer VALUES (1, 'mary.addr@example.org', 10),
        (2, 'pat.addr@example.org', 11)""",
    "INSERT INTO staff VALUES (1, 'jon.addr@example.org', 10)",
]
ADDRESS_PEOPLE = {
    "mary": ("customer", 1, {"email": "mary.addr@example.org"}),
    "pat": ("customer", 2, {"email": "pat.addr@example.org"}),
    "jon": ("staff", 1, {"email": "jon.addr@example.org"}),
}
ADDRESS_TRUTH = {
    "person_tables": {"customer": ["email"], "staff": ["email"]},
    "parent": [("customer", "address_id", "address"), ("staff", "address_id", "address")],
}

MESSAGES = [
    """CREATE TABLE member (id INTEGER PRIMARY KEY, email VARCHAR(120) NOT NULL,
        display_name VARCHAR(60))""",
    """CREATE TABLE message (id INTEGER PRIMARY KEY, sender_id INTEGER NOT NULL,
        recipient_id INTEGER NULL, body VARCHAR(200),
        FOREIGN KEY (sender_id) REFERENCES member (id),
        FOREIGN KEY (recipient_id) REFERENCES member (id))""",
    """INSERT INTO member VALUES (1, 'ines.msg@example.org', 'Ines Roux'),
        (2, 'jakob.msg@example.org', 'Jakob Stern'), (3, 'kai.msg@example.org', 'Kai Ode')""",
    # 1: Ines to Jakob; 2: Jakob to Ines; 3: Ines's draft; 4: Jakob to Kai.
    """INSERT INTO message VALUES (1, 1, 2, 'lunch?'), (2, 2, 1, 'yes'), (3, 1, NULL, 'note'),
        (4, 2, 3, 'hello')""",
]
MESSAGE_PEOPLE = {
    "ines": ("member", 1, {"email": "ines.msg@example.org"}),
    "jakob": ("member", 2, {"email": "jakob.msg@example.org"}),
}
MESSAGE_TRUTH = {
    "person_tables": {"member": ["email", "display_name"]},
    "owner": [("message", "sender_id", "member"), ("message", "recipient_id", "member")],
}

ORDERS = [
    """CREATE TABLE suppliers (id INTEGER PRIMARY KEY, company VARCHAR(80) NOT NULL,
        contact_name VARCHAR(80) NOT NULL, phone VARCHAR(30))""",
    """CREATE TABLE employees (id INTEGER PRIMARY KEY, email VARCHAR(120) NOT NULL,
        last_name VARCHAR(60))""",
    """CREATE TABLE customers (id INTEGER PRIMARY KEY, email VARCHAR(120) NOT NULL,
        contact_name VARCHAR(80))""",
    """CREATE TABLE categories (id INTEGER PRIMARY KEY, label VARCHAR(60) NOT NULL)""",
    """CREATE TABLE products (id INTEGER PRIMARY KEY, product_name VARCHAR(80) NOT NULL,
        unit_price NUMERIC(8, 2), supplier_id INTEGER NULL, category_id INTEGER NOT NULL,
        FOREIGN KEY (supplier_id) REFERENCES suppliers (id),
        FOREIGN KEY (category_id) REFERENCES categories (id))""",
    """CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL,
        employee_id INTEGER NOT NULL, ship_city VARCHAR(60),
        FOREIGN KEY (customer_id) REFERENCES customers (id),
        FOREIGN KEY (employee_id) REFERENCES employees (id))""",
    """CREATE TABLE order_details (id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL,
        product_id INTEGER NOT NULL, quantity INTEGER NOT NULL,
        FOREIGN KEY (order_id) REFERENCES orders (id),
        FOREIGN KEY (product_id) REFERENCES products (id))""",
    """INSERT INTO suppliers VALUES (1, 'Exotic Liquids', 'Charlotte Cooper', '+44 20 7946 0555'),
        (2, 'Tokyo Traders', 'Yoshi Nagase', '+81 3 3555 5011')""",
    """INSERT INTO employees VALUES (1, 'nancy.emp@example.org', 'Davolio'),
        (2, 'andrew.emp@example.org', 'Fuller')""",
    """INSERT INTO customers VALUES (1, 'maria.ord@example.org', 'Maria Anders'),
        (2, 'ana.ord@example.org', 'Ana Trujillo'), (3, 'tom.ord@example.org', 'Thomas Hardy')""",
    "INSERT INTO categories VALUES (1, 'Beverages'), (2, 'Condiments')",
    """INSERT INTO products VALUES (1, 'Chai', 18.00, 1, 1), (2, 'Chang', 19.00, 1, 1),
        (3, 'Aniseed Syrup', 10.00, 2, 2), (4, 'House blend', 5.00, NULL, 1)""",
    """INSERT INTO orders VALUES (10248, 1, 1, 'Berlin'), (10249, 2, 1, 'Mexico'),
        (10250, 3, 2, 'London'), (10251, 1, 2, 'Berlin')""",
    """INSERT INTO order_details VALUES (1, 10248, 1, 12), (2, 10248, 3, 10), (3, 10249, 1, 9),
        (4, 10250, 2, 40), (5, 10251, 4, 1), (6, 10251, 2, 3)""",
]
ORDER_PEOPLE = {
    "maria": ("customers", 1, {"email": "maria.ord@example.org"}),
    "charlotte": ("suppliers", 1, {"name": "charlotte  cooper"}),
    "nancy": ("employees", 1, {"email": "nancy.emp@example.org"}),
}
ORDER_TRUTH = {
    "person_tables": {
        "suppliers": ["contact_name", "phone"],
        "employees": ["email"],
        "customers": ["email", "contact_name"],
    },
    "owner": [("orders", "customer_id", "customers"), ("order_details", "order_id", "orders")],
    "mention": [("orders", "employee_id", "employees"), ("products", "supplier_id", "suppliers")],
    "reference": {"products", "categories"},
}

# A shop managed by one of its own staff (shop.manager_id and staff.shop_id, both NOT NULL: a
# loop no null can break) and a staff hierarchy (staff.boss_id).
SHOP_TABLES = """CREATE TABLE staff (id INTEGER PRIMARY KEY, email VARCHAR(120) NOT NULL,
        shop_id INTEGER NOT NULL, boss_id INTEGER NULL{fks})"""
SHOP_STAFF_FKS = (
    ", FOREIGN KEY (shop_id) REFERENCES shop (id), FOREIGN KEY (boss_id) REFERENCES staff (id)"
)
SHOP_ROWS = [
    "INSERT INTO shop VALUES (1, 'Lethbridge', 1), (2, 'Woodridge', 3)",
    """INSERT INTO staff VALUES (1, 'lena.shop@example.org', 1, NULL),
        (2, 'omar.shop@example.org', 1, 1), (3, 'pia.shop@example.org', 2, 1)""",
]
SHOPS = {
    "sqlite": [
        """CREATE TABLE shop (id INTEGER PRIMARY KEY, shop_name VARCHAR(60) NOT NULL,
            manager_id INTEGER NOT NULL, FOREIGN KEY (manager_id) REFERENCES staff (id))""",
        SHOP_TABLES.format(fks=SHOP_STAFF_FKS),
        *SHOP_ROWS,
    ],
    "postgresql": [
        """CREATE TABLE shop (id INTEGER PRIMARY KEY, shop_name VARCHAR(60) NOT NULL,
            manager_id INTEGER NOT NULL)""",
        SHOP_TABLES.format(fks=SHOP_STAFF_FKS),
        """ALTER TABLE shop ADD CONSTRAINT shop_manager FOREIGN KEY (manager_id)
            REFERENCES staff (id) DEFERRABLE INITIALLY DEFERRED""",
        *SHOP_ROWS,
    ],
    "mysql": [
        "SET FOREIGN_KEY_CHECKS = 0",
        """CREATE TABLE shop (id INTEGER PRIMARY KEY, shop_name VARCHAR(60) NOT NULL,
            manager_id INTEGER NOT NULL, FOREIGN KEY (manager_id) REFERENCES staff (id))""",
        SHOP_TABLES.format(fks=SHOP_STAFF_FKS),
        *SHOP_ROWS,
        "SET FOREIGN_KEY_CHECKS = 1",
    ],
}
SHOP_PEOPLE = {
    "lena": ("staff", 1, {"email": "lena.shop@example.org"}),
    "omar": ("staff", 2, {"email": "omar.shop@example.org"}),
}
SHOP_TRUTH = {
    "person_tables": {"staff": ["email"]},
    "mention": [("shop", "manager_id", "staff"), ("staff", "boss_id", "staff")],
    "reference": {"shop"},
}

ALL_KINDS = ("sqlite", "postgresql", "mysql")

PATTERNS = [
    Pattern("rentals", ALL_KINDS, {"*": RENTALS}, RENTAL_PEOPLE, **RENTAL_TRUTH),
    Pattern(
        "rentals_without_foreign_keys",
        ("sqlite", "postgresql"),
        {"*": _without_foreign_keys(RENTALS)},
        RENTAL_PEOPLE,
        **RENTAL_TRUTH,
    ),
    Pattern(
        "rentals_partitioned",
        ("postgresql",),
        {"*": _partitioned_payments(RENTALS)},
        RENTAL_PEOPLE,
        **RENTAL_TRUTH,
    ),
    Pattern("shared_addresses", ALL_KINDS, {"*": ADDRESSES}, ADDRESS_PEOPLE, **ADDRESS_TRUTH),
    Pattern("messages", ALL_KINDS, {"*": MESSAGES}, MESSAGE_PEOPLE, **MESSAGE_TRUTH),
    Pattern("orders_catalogue", ALL_KINDS, {"*": ORDERS}, ORDER_PEOPLE, **ORDER_TRUTH),
    Pattern("shop_managed_by_staff", ALL_KINDS, SHOPS, SHOP_PEOPLE, **SHOP_TRUTH),
]


def cases():
    """(pattern, kind, who) for every person of every pattern in every engine it exists in."""
    return [
        (pattern, kind, who)
        for pattern in PATTERNS
        for kind in pattern.kinds
        for who in pattern.people
    ]


def by_table(keys) -> dict[str, set]:
    out: dict[str, set] = defaultdict(set)
    for table, i in keys:
        out[table].add(i)
    return out


# The order system described by a Fides dataset as its authors write them: primary keys declared
# only where they thought of it (none on orders and order_details), references only for what
# leads to the customer, catalogue collections whose categories are all system.*.
ORDERS_FIDES = """\
dataset:
  - fides_key: shop
    name: Shop
    collections:
      - name: customers
        fields:
          - name: id
            data_categories: [user.unique_id]
            fides_meta: {primary_key: true}
          - name: email
            data_categories: [user.contact.email]
            fides_meta: {identity: email}
          - name: contact_name
            data_categories: [user.name]
      - name: employees
        fields:
          - name: id
            data_categories: [user.unique_id]
            fides_meta: {primary_key: true}
          - name: email
            data_categories: [user.contact.email]
            fides_meta: {identity: email}
          - name: last_name
            data_categories: [user.name]
      - name: suppliers
        fields:
          - name: id
            data_categories: [system.operations]
          - name: company
            data_categories: [system.operations]
          - name: contact_name
            data_categories: [user.name]
          - name: phone
            data_categories: [user.contact.phone_number]
      - name: orders
        fields:
          - name: id
            data_categories: [system.operations]
          - name: customer_id
            data_categories: [user.unique_id]
            fides_meta:
              references:
                - {field: customers.id, direction: from}
          - name: ship_city
            data_categories: [user.contact.address.city]
      - name: order_details
        fields:
          - name: id
            data_categories: [system.operations]
          - name: order_id
            data_categories: [system.operations]
            fides_meta:
              references:
                - {field: orders.id, direction: from}
          - name: quantity
            data_categories: [system.operations]
      - name: products
        fields:
          - name: id
            data_categories: [system.operations]
          - name: product_name
            data_categories: [system.operations]
          - name: unit_price
            data_categories: [system.operations]
      - name: categories
        fields:
          - name: id
            data_categories: [system.operations]
          - name: label
            data_categories: [system.operations]
"""
FIDES_PEOPLE = {
    "maria": ORDER_PEOPLE["maria"],
    "nancy": ORDER_PEOPLE["nancy"],
}
FIDES_TRUTH = {
    "person_tables": ORDER_TRUTH["person_tables"],
    "owner": ORDER_TRUTH["owner"],
    "reference": {"products", "categories"},
}
FIDES_PATTERN = Pattern("orders_fides", ALL_KINDS, {"*": ORDERS}, FIDES_PEOPLE, **FIDES_TRUTH)
