"""Syntheses (points de situation): curated entries, key figures, a map and a narrative,
validated by a second watch officer, sent marked to the authorities."""
