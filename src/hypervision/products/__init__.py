"""Data products: datasets owned by a domain, with a Table Schema, versions, quality and rules."""
