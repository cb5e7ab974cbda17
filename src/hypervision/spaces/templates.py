"""The templates a space may start from: modules over the main courante (a template cannot
know which data products an organisation uses; the officer adds those from the palette)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Template:
    code: str
    title: str  # French first: the templates are named as the crisis rooms name them
    description: str
    modules: tuple[dict[str, Any], ...]


def _m(
    ident: str, module_type: str, title: str, x: int, y: int, w: int, h: int, /, **config: Any
) -> dict[str, Any]:
    return {
        "id": ident,
        "type": module_type,
        "title": title,
        "x": x,
        "y": y,
        "w": w,
        "h": h,
        "config": config,
    }


def _last(hours: int, **filters: Any) -> dict[str, Any]:
    return {"hours": hours, **filters}


TEMPLATES: dict[str, Template] = {
    t.code: t
    for t in (
        Template(
            "poste-commandement-site",
            "Poste de commandement de site",
            "Ce qui se passe sur le site : événements graves, carte, situations en cours.",
            (
                _m(
                    "graves",
                    "kpi",
                    "Événements majeurs (24 h)",
                    0,
                    0,
                    3,
                    2,
                    filter=_last(24, severities=["major", "critical"]),
                    warning=1,
                    alert=5,
                ),
                _m(
                    "ouverts",
                    "kpi",
                    "Événements ouverts",
                    3,
                    0,
                    3,
                    2,
                    filter={"statuses": ["open", "in_progress"]},
                    trend_hours=None,
                    warning=10,
                    alert=30,
                ),
                _m("carte", "map", "Carte du site", 6, 0, 6, 6, filter=_last(24)),
                _m("fil", "feed", "Main courante", 0, 2, 6, 6, filter=_last(24), limit=10),
                _m(
                    "situations",
                    "situations",
                    "Situations en cours",
                    6,
                    6,
                    6,
                    3,
                    statuses=["open", "in_progress"],
                ),
                _m(
                    "gravite",
                    "chart",
                    "Événements par heure et gravité",
                    0,
                    8,
                    6,
                    4,
                    kind="bar",
                    group_by="occurred_at",
                    bucket="hour",
                    series_by="severity",
                    stacked=True,
                    filter=_last(24),
                ),
            ),
        ),
        Template(
            "cellule-sante",
            "Cellule santé",
            "Le suivi sanitaire : événements de santé et de secours, points de situation.",
            (
                _m(
                    "sante",
                    "kpi",
                    "Événements santé (24 h)",
                    0,
                    0,
                    4,
                    2,
                    filter=_last(24, categories=["health", "rescue"]),
                    warning=5,
                    alert=15,
                ),
                _m(
                    "courbe",
                    "chart",
                    "Événements santé par heure",
                    4,
                    0,
                    8,
                    4,
                    kind="line",
                    group_by="occurred_at",
                    bucket="hour",
                    filter=_last(48, categories=["health", "rescue"]),
                ),
                _m(
                    "fil",
                    "feed",
                    "Main courante santé",
                    0,
                    4,
                    6,
                    6,
                    filter={"categories": ["health", "rescue"]},
                    limit=10,
                ),
                _m(
                    "carte",
                    "map",
                    "Carte santé",
                    6,
                    4,
                    6,
                    6,
                    filter=_last(24, categories=["health", "rescue"]),
                ),
                _m("point", "synthesis", "Dernier point de situation", 0, 10, 12, 3),
            ),
        ),
        Template(
            "cabinet-prefet",
            "Cabinet du préfet",
            "La vue d'ensemble pour l'autorité : chiffres clés, situations, point de situation.",
            (
                _m(
                    "critiques",
                    "kpi",
                    "Événements critiques (24 h)",
                    0,
                    0,
                    4,
                    2,
                    filter=_last(24, severities=["critical"]),
                    warning=1,
                    alert=3,
                ),
                _m(
                    "majeurs",
                    "kpi",
                    "Événements majeurs (24 h)",
                    4,
                    0,
                    4,
                    2,
                    filter=_last(24, severities=["major"]),
                    warning=3,
                    alert=10,
                ),
                _m(
                    "total",
                    "kpi",
                    "Événements (24 h)",
                    8,
                    0,
                    4,
                    2,
                    filter=_last(24),
                    higher_is_worse=False,
                ),
                _m(
                    "domaines",
                    "chart",
                    "Événements par domaine (24 h)",
                    0,
                    2,
                    6,
                    5,
                    kind="donut",
                    group_by="category",
                    filter=_last(24),
                ),
                _m(
                    "situations",
                    "situations",
                    "Situations en cours",
                    6,
                    2,
                    6,
                    5,
                    statuses=["open", "in_progress"],
                ),
                _m("point", "synthesis", "Dernier point de situation", 0, 7, 12, 3),
            ),
        ),
        Template(
            "suivi-transport",
            "Suivi transport",
            "Transports et circulation : perturbations, carte, fil filtré.",
            (
                _m(
                    "perturbations",
                    "kpi",
                    "Perturbations (24 h)",
                    0,
                    0,
                    4,
                    2,
                    filter=_last(24, categories=["transport", "traffic"]),
                    warning=5,
                    alert=20,
                ),
                _m(
                    "courbe",
                    "chart",
                    "Perturbations par heure",
                    4,
                    0,
                    8,
                    4,
                    kind="area",
                    group_by="occurred_at",
                    bucket="hour",
                    filter=_last(48, categories=["transport", "traffic"]),
                ),
                _m(
                    "fil",
                    "feed",
                    "Main courante transport",
                    0,
                    4,
                    6,
                    6,
                    filter={"categories": ["transport", "traffic"]},
                    limit=10,
                ),
                _m(
                    "carte",
                    "map",
                    "Carte transport",
                    6,
                    4,
                    6,
                    6,
                    filter=_last(24, categories=["transport", "traffic"]),
                ),
            ),
        ),
    )
}
