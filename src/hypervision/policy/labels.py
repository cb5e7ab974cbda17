"""Protection labels: a level, need-to-know groups and audience organisations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypervision.config import Settings
from hypervision.core.errors import Invalid


@dataclass(frozen=True)
class Label:
    level: str
    need_to_know: frozenset[str] = frozenset()
    audience: frozenset[str] = frozenset()  # organisation ids, as strings
    owner: str = ""  # owner organisation id, as a string

    def as_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "need_to_know": sorted(self.need_to_know),
            "audience": sorted(self.audience),
            "owner": self.owner,
        }


def check_level(settings: Settings, level: str) -> None:
    """Unknown levels and levels above the platform's ceiling are refused (SECURITY.md 18)."""
    if level not in settings.label_levels:
        allowed = ", ".join(settings.label_levels)
        raise Invalid(
            f"Niveau de protection {level!r} inconnu (possibles : {allowed}).",
            f"Unknown protection level {level!r} (allowed: {allowed}).",
            code="label_refused",
            extra={"fields": [{"field": "label.level", "message": f"one of {allowed}"}]},
        )
    if settings.level_rank(level) > settings.level_rank(settings.label_ceiling):
        raise Invalid(
            f"Le niveau {level} dépasse le plafond de la plateforme ({settings.label_ceiling}) : "
            "cette information ne peut pas y être déposée.",
            f"Level {level} is above the platform's ceiling ({settings.label_ceiling}).",
            code="label_above_ceiling",
            extra={"fields": [{"field": "label.level", "message": "above ceiling"}]},
        )


def is_lowering(settings: Settings, old: Label, new: Label) -> bool:
    """True when ``new`` lets anyone see what ``old`` did not: a lower level, fewer
    need-to-know groups, or a wider audience."""
    if settings.level_rank(new.level) < settings.level_rank(old.level):
        return True
    if not old.need_to_know <= new.need_to_know:
        return True
    return bool(old.audience) and (not new.audience or not new.audience <= old.audience)
