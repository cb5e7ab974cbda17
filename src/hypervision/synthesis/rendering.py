"""A synthesis rendered for one reader (HTML view or PDF), through the policy and audited."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.config import Settings
from hypervision.core.markdown import render as markdown
from hypervision.db import utcnow
from hypervision.identity.auth import Client, build_principal
from hypervision.identity.models import User
from hypervision.identity.principal import Principal
from hypervision.logbook import present
from hypervision.records.labelling import Directory
from hypervision.synthesis import derived, pdf, service
from hypervision.synthesis.derived import ReaderView
from hypervision.synthesis.models import Synthesis
from hypervision.synthesis.schemas import SynthesisRead


def synthesis_read(
    settings: Settings, synthesis: Synthesis, names: Directory, seen: ReaderView
) -> SynthesisRead:
    """``synthesis`` for one reader: its entries and figures as ``seen`` by them (ADR 0012)."""
    return SynthesisRead(
        id=synthesis.id,
        title=synthesis.title,
        status=synthesis.status,
        scope=seen.scope,
        narrative=synthesis.narrative,
        narrative_html=markdown(synthesis.narrative),
        figures=seen.figures,
        entry_ids=seen.entry_ids,
        redacted=seen.redacted,
        author=names.user(synthesis.author_id) or "?",
        author_name=names.full_name(synthesis.author_id) or "?",
        organisation=names.org(synthesis.organisation_id),
        label=names.label(synthesis.label),
        marking=settings.marking([synthesis.label_level]),
        created_at=synthesis.created_at,
        updated_at=synthesis.updated_at,
        submitted_by=names.user(synthesis.submitted_by),
        validated_by=names.user(synthesis.validated_by),
        validated_at=synthesis.validated_at,
        sent_by=names.user(synthesis.sent_by),
        sent_at=synthesis.sent_at,
        supersedes_id=seen.supersedes_id,
        version=synthesis.version,
    )


async def reads_for(
    session: AsyncSession, settings: Settings, actor: Principal, rows: list[Synthesis]
) -> list[SynthesisRead]:
    """``rows`` as ``actor`` may see each of them now (lists, inbox, workflow answers)."""
    names = await names_for(session, rows)
    seen = await derived.views(session, settings, actor, rows)
    return [synthesis_read(settings, s, names, seen[s.id]) for s in rows]


async def names_for(session: AsyncSession, rows: list[Synthesis]) -> Directory:
    ids: set[uuid.UUID | None] = set()
    for s in rows:
        ids |= {s.author_id, s.submitted_by, s.validated_by, s.sent_by}
    return await Directory.load(session, ids)


async def pdf_for(
    session: AsyncSession, settings: Settings, actor: Principal, synthesis_id: uuid.UUID,
    reader: str,
) -> tuple[Synthesis, bytes]:  # fmt: skip
    """The PDF as ``actor`` may read it, watermarked with ``reader`` (their name)."""
    synthesis, seen = await service.read(
        session=session, settings=settings, actor=actor, synthesis_id=synthesis_id
    )
    data: dict[str, Any] = synthesis_read(
        settings, synthesis, await names_for(session, [synthesis]), seen
    ).model_dump()
    reads = await present.entries_read(session, seen.entries, settings=settings, actor=actor)
    levels = [synthesis.label_level, *(e.label_level for e in seen.entries)]
    html = pdf.html_of(
        synthesis=data,
        entries=reads,
        marking=settings.marking(levels),
        reader=reader,
        printed_at=utcnow(),
    )
    return synthesis, await asyncio.to_thread(pdf.pdf_of, html)


async def pdf_for_reader(
    session: AsyncSession, settings: Settings, synthesis_id: uuid.UUID, user: User
) -> bytes:
    """The PDF for a recipient (e-mail attachment): read as that user, so that the policy
    and the audit apply to them."""
    principal = await build_principal(
        session=session, user=user, scopes=None, client=Client(None, None), surface="mail"
    )
    _, data = await pdf_for(session, settings, principal, synthesis_id, user.full_name)
    return data
