"""Data products: domains' own tables, governed by their stewards (issue 17)."""
