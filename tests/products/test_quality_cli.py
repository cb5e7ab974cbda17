"""``hypervision products quality <slug>``: checks now, keeps the run, prints the report; its
exit status says whether a warning (2) or a blocking rule (1) fails."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select

from hypervision.audit.models import AuditRecord
from hypervision.products.quality_models import QualityRun
from tests.factories import tx
from tests.products.test_products_api import health
from tests.products.test_quality_api import RULES, put, ready
from tests.test_cli import _cli

__all__ = ["health"]


async def test_the_command_checks_now_and_prints_the_report(
    app: FastAPI,
    client: AsyncClient,
    health: str,
    database_url: str,
    owner_database_url: str,
    tmp_path: Path,
) -> None:
    pid, steward = await ready(client, health)
    assert (await put(client, steward, pid, RULES)).status_code == 200
    done = _cli(database_url, tmp_path, "products", "quality", "capacite-hopitaux",
                owner_url=owner_database_url)  # fmt: skip
    assert done.returncode == 2, done.stderr  # warnings fail, no blocking rule does
    assert "[alerte] lits" in done.stdout and "[ok] dep" in done.stdout
    assert "Lariboisière" in done.stdout  # a failing row named, with its key
    async with tx(app) as session:
        triggers = sorted(r.trigger for r in await session.scalars(select(QualityRun)))
    assert triggers == ["manual", "rules"]
    async with tx(app) as session:
        audited = select(AuditRecord).where(AuditRecord.action == "product.quality_check")
        assert [r.surface for r in await session.scalars(audited)] == ["cli"]
    unknown = _cli(database_url, tmp_path, "products", "quality", "inconnu",
                   owner_url=owner_database_url)  # fmt: skip
    assert unknown.returncode == 1 and "Unknown product" in unknown.stderr
