"""Spaces (espaces): pages officers assemble from modules over entries and data products."""
