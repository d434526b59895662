"""The demo that `make run` seeds: a small shop in SQLite, connected as the store `demo-shop`.

A newcomer can file a request for `ada@demo.example` (or any of the demo customers) and see the
portal find and erase their records. Nothing here runs outside the demo.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from django.conf import settings

from requests.models import ConnectedStore
from requests.services.audit import SYSTEM
from requests.services.stores import store_create

DEMO_STORE = "demo-shop"

DEMO_MAP = """\
info:
  legal_basis: Contract (Art. 6(1)(b))
  source: You, when you created your account and placed orders
collections:
  customers:
    key: [id]
    categories: [contact details, identity]
    fields:
      email: {identity: email}
      phone: {identity: phone, mask: "null"}
      full_name: {identity: name, mask: fixed, mask_value: erased}
    erasure: {action: delete, fallback: mask}
    info:
      purposes: [Managing your account, Delivering your orders]
      recipients: [Parcel carrier]
      retention: Until you close your account
  orders:
    key: [id]
    categories: [purchases]
    fields:
      customer_id: {references: {collection: customers, field: id}}
      shipping_address: {mask: fixed, mask_value: erased}
    erasure:
      action: hold
      basis: Accounting law requires orders to be kept for 10 years (Art. 17(3)(b))
    info:
      purposes: [Delivering your orders, Accounting]
      recipients: [Parcel carrier, Accountant]
      retention: 10 years after the order
  order_lines:
    key: [id]
    categories: [purchases]
    fields:
      order_id: {references: {collection: orders, field: id}}
    erasure: {action: hold, basis: Part of the order kept for accounting (Art. 17(3)(b))}
    info:
      purposes: [Accounting]
      retention: 10 years after the order
"""

CUSTOMERS = [
    (1, "ada@demo.example", "+33612345678", "Ada Lovelace"),
    (2, "grace@demo.example", "+14155550100", "Grace Hopper"),
    (3, "alan@demo.example", None, "Alan Turing"),
]


def demo_database_build(path: Path) -> None:
    """Write the demo shop's SQLite database (its customers and their orders) at `path`; tests
    build it too, to have a store whose records they know."""
    with sqlite3.connect(path) as db:
        db.executescript(
            """
            CREATE TABLE customers (
                id INTEGER PRIMARY KEY, email TEXT NOT NULL, phone TEXT, full_name TEXT
            );
            CREATE TABLE orders (
                id INTEGER PRIMARY KEY,
                customer_id INTEGER NOT NULL REFERENCES customers(id),
                placed_on TEXT NOT NULL, shipping_address TEXT
            );
            CREATE TABLE order_lines (
                id INTEGER PRIMARY KEY,
                order_id INTEGER NOT NULL REFERENCES orders(id),
                product TEXT NOT NULL, quantity INTEGER NOT NULL, price_cents INTEGER NOT NULL
            );
            """
        )
        db.executemany("INSERT INTO customers VALUES (?, ?, ?, ?)", CUSTOMERS)
        order_id = line_id = 0
        for customer_id, *_ in CUSTOMERS:
            for number in range(customer_id + 1):
                order_id += 1
                db.execute(
                    "INSERT INTO orders VALUES (?, ?, ?, ?)",
                    (order_id, customer_id, f"2026-0{number + 1}-15", f"{customer_id} Demo Street"),
                )
                for product in ("Notebook", "Pencil"):
                    line_id += 1
                    db.execute(
                        "INSERT INTO order_lines VALUES (?, ?, ?, ?, ?)",
                        (line_id, order_id, product, number + 1, 250),
                    )


def demo_store_seed() -> str:
    """Create the demo shop and connect it, once. Returns a line for the startup banner."""
    path = (settings.DATA_DIR / "demo-shop.sqlite3").resolve()
    if not ConnectedStore.objects.filter(name=DEMO_STORE).exists():
        if path.exists():
            path.unlink()
        demo_database_build(path)
        store_create(
            name=DEMO_STORE, kind="sqlite", url=f"sqlite:///{path}", map_yaml=DEMO_MAP, actor=SYSTEM
        )
    return f"{DEMO_STORE} (SQLite, try a request for {CUSTOMERS[0][1]})"
