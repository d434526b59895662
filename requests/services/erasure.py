"""Erasure requests: planned, ordered, safe erasure in each store (built in the erasure work)."""
