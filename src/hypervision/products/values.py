"""Typed values of a product's fields, read from the text of a filter or a cursor (the rows
API's ``filter=field:op:value``, a derived product's ``where``)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from hypervision.core.errors import Invalid


def typed(kind: str, raw: str, field_name: str) -> Any:
    """``raw`` (a filter's text) as a value of a field of type ``kind``; 422 naming the field."""
    try:
        if kind == "integer":
            return int(raw)
        if kind == "number":
            return float(raw.replace(",", "."))
        if kind == "boolean":
            if raw.lower() in ("true", "vrai", "oui", "1"):
                return True
            if raw.lower() in ("false", "faux", "non", "0"):
                return False
            raise ValueError(raw)
        if kind == "date":
            return date.fromisoformat(raw)
        if kind == "datetime":
            value = datetime.fromisoformat(raw)
            if value.tzinfo is None:
                raise ValueError(raw)
            return value
        return raw
    except ValueError:
        raise Invalid(
            f"Valeur « {raw[:80]} » invalide pour le champ « {field_name} » ({kind}).",
            f"Invalid value {raw[:80]!r} for field {field_name!r} ({kind}).",
            extra={"fields": [{"field": field_name, "message": "invalid value"}]},
        ) from None
