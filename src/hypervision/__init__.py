"""Hypervision: one live, labelled, audited operational picture for crisis rooms."""

__version__ = "0.1.0"
