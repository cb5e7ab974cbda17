"""The label of a derived object: at least as protective as everything it contains."""

from __future__ import annotations

from collections.abc import Iterable

from hypervision.config import Settings
from hypervision.policy.labels import Label


def combined(settings: Settings, labels: Iterable[Label], owner: str) -> Label:
    """Highest level; every need-to-know group of any part; released only where every part is
    released (intersection of the non-empty audiences; if they have none in common, the owner
    organisation only). ``owner`` is the derived object's organisation."""
    parts = list(labels)
    level = settings.label_levels[0]
    groups: set[str] = set()
    audience: set[str] | None = None
    for label in parts:
        if settings.level_rank(label.level) > settings.level_rank(level):
            level = label.level
        groups |= set(label.need_to_know)
        if label.audience:
            audience = set(label.audience) if audience is None else audience & set(label.audience)
    if audience is not None and not audience:
        audience = {owner}
    return Label(
        level=level,
        need_to_know=frozenset(groups),
        audience=frozenset(audience or ()),
        owner=owner,
    )


def at_least(settings: Settings, label: Label, floor: Label) -> bool:
    """Whether ``label`` is at least as protective as ``floor`` (never lowered silently)."""
    level_ok = settings.level_rank(label.level) >= settings.level_rank(floor.level)
    groups_ok = set(floor.need_to_know) <= set(label.need_to_know)
    audience_ok = not floor.audience or (
        bool(label.audience) and set(label.audience) <= set(floor.audience)
    )
    return level_ok and groups_ok and audience_ok
