"""A space's report: its modules (all, or those asked), each read as the reader exactly as the
page shows them (``spaces.modules.module_data``: the policy, the stewards' rules and the
neutral placeholders), printed with the syntheses' machinery (``synthesis.pdf``: WeasyPrint,
the marking in the margins of every page, the reader's watermark). The marking is the highest
level of what *this reader's* PDF holds; the PDF is made on demand, never stored, and audited
(``space.report``, with the levels it holds). docs/adr/0045."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.audit import service as audit
from hypervision.config import Settings
from hypervision.core.chart_svg import svg_of
from hypervision.core.charts import ChartSpec, table_of
from hypervision.core.errors import Invalid
from hypervision.core.i18n import CATEGORY_NAMES, SEVERITY_NAMES, STATUS_NAMES, Translator
from hypervision.core.timezone import PARIS
from hypervision.db import utcnow
from hypervision.identity.principal import Principal
from hypervision.records.labelling import Directory
from hypervision.spaces import modules, service
from hypervision.spaces.models import Space
from hypervision.spaces.schemas import ModuleData
from hypervision.synthesis import pdf
from hypervision.synthesis.figure import centre, map_svg

TEMPLATES = Path(__file__).parent / "templates"
env = Environment(
    loader=FileSystemLoader([TEMPLATES, pdf.TEMPLATES]),  # the syntheses' PDF frame
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
MAX_MODULES_ASKED = 60
KPI_WORDS = {"normal": "normal", "warning": "seuil de vigilance atteint", "alert": "seuil d'alerte"}


@dataclass(frozen=True)
class Report:
    space: Space
    pdf: bytes
    level: str  # the highest level among the space and what its modules delivered
    marking: str | None  # None: nothing above the lowest level


def chosen_modules(
    space: Space, module_ids: list[str] | None, *, lenient: bool = False
) -> list[dict[str, Any]]:
    """The space's modules in reading order (as the page stacks them), or those named: each
    must be in the space (422), unless ``lenient`` (a schedule's list, where a module removed
    since is left out)."""
    ordered = sorted(space.modules, key=lambda m: (m.get("y", 0), m.get("x", 0)))
    if not module_ids:
        return ordered
    if len(module_ids) > MAX_MODULES_ASKED:
        raise Invalid(
            f"Au plus {MAX_MODULES_ASKED} modules par rapport.",
            f"At most {MAX_MODULES_ASKED} modules per report.",
        )
    known = {str(m.get("id")) for m in space.modules}
    unknown = [i for i in module_ids if i not in known]
    if unknown and not lenient:
        names = ", ".join(i[:32] for i in unknown[:5])
        raise Invalid(
            f"Module inconnu dans cet espace : {names}.",
            f"No such module in this space: {names}.",
            extra={"fields": [{"field": "module", "message": "unknown"}]},
        )
    wanted = set(module_ids)
    return [m for m in ordered if str(m.get("id")) in wanted]


def _part(module: dict[str, Any], found: ModuleData) -> dict[str, Any]:
    """One module as the template prints it: its data, for charts their drawing and their
    table, for maps their numbered located entries and the server-drawn figure."""
    part: dict[str, Any] = {"title": module.get("title") or "Module", "found": found}
    if found.status != "ok":
        return part
    if found.type == "chart":
        spec = ChartSpec.model_validate(found.data["spec"])
        part["table"] = table_of(spec)
        part["figure"] = svg_of(spec, part["title"]) if spec.categories else None
    elif found.type == "map":
        located = []
        for n, feature in enumerate(found.data["entries"]["features"], start=1):
            props, at = feature["properties"], centre(feature["geometry"])
            located.append({**props, "n": n, "at": at})
        part["located"] = located
        part["figure"] = map_svg(
            [(e["n"], str(e["severity"]), f["geometry"])
             for e, f in zip(located, found.data["entries"]["features"], strict=True)]
        )  # fmt: skip
        part["zones"] = [z["properties"]["name"] for z in found.data["zones"]["features"]]
    return part


def html_of(
    *, space: Space, parts: list[dict[str, Any]], marking: str | None, level: str,
    reader: str, organisation: str, printed_at: datetime, partial: bool,
) -> str:  # fmt: skip
    t = Translator("fr")
    return env.get_template("report.html").render(
        space=space,
        parts=parts,
        marking=marking,
        level=level,
        reader=reader,
        organisation=organisation,
        partial=partial,
        reader_css=pdf.css_text(reader),
        marking_css=pdf.css_text(marking or ""),
        printed=printed_at.astimezone(PARIS).strftime("%d/%m/%Y %H:%M"),
        categories=CATEGORY_NAMES,
        severities=SEVERITY_NAMES,
        statuses=STATUS_NAMES,
        kpi_words=KPI_WORDS,
        paris=PARIS,
        fromiso=datetime.fromisoformat,
        fonts=pdf.FONTS.as_uri() if pdf.FONTS.exists() else "",
        _=t.gettext,
    )


async def report_for(
    *, session: AsyncSession, settings: Settings, actor: Principal, space_id: uuid.UUID,
    module_ids: list[str] | None, reader: str, surface: str = "api", lenient: bool = False,
) -> Report:  # fmt: skip
    """The report of ``space_id`` as ``actor`` may read it, watermarked with ``reader``.
    A space the actor may not read is a 404 like a missing one; an unknown module, a 422."""
    space = await service.find_space(
        session=session, settings=settings, actor=actor, space_id=space_id
    )
    chosen = chosen_modules(space, module_ids, lenient=lenient)
    parts, levels = [], {space.label_level}
    for module in chosen:
        found = await modules.module_data(
            session=session, settings=settings, actor=actor, space=space, module=module
        )
        if found.label:
            levels.add(found.label)
        parts.append(_part(module, found))
    level = max(levels, key=settings.level_rank)
    marking = settings.marking(levels)
    names = await Directory.load(session, [], {space.organisation_id})
    html = html_of(
        space=space, parts=parts, marking=marking, level=level, reader=reader,
        organisation=names.org(space.organisation_id), printed_at=utcnow(),
        partial=bool(module_ids),
    )  # fmt: skip
    await audit.record(
        session=session, actor=actor, action="space.report", surface=surface,
        resource_type="space", resource_ids=[space.id],
        labels=sorted(levels, key=settings.level_rank),
        detail={"modules": [str(m.get("id"))[:32] for m in chosen][:MAX_MODULES_ASKED],
                "marking": marking},
    )  # fmt: skip
    return Report(space, await asyncio.to_thread(pdf.pdf_of, html), level, marking)
