"""Access requests: finding the person's records in each store (the package is built on top)."""
