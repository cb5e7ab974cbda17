"""The import job of an address file (``hypervision places import``, ADR 0024): the file read
as a stream by ``geo.addresses``, written in batches, each in its own transaction with its
audit record, into the embedded places table or, when the operator chose it, into addok
(``geo.place_addok``, ADR 0030)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hypervision.db import transaction
from hypervision.geo import place_addok
from hypervision.geo.addresses import (
    BATCH,
    PlaceRow,
    RowError,
    open_text,
    parse,
    record_import,
    upsert_places,
)
from hypervision.identity.principal import Principal


@dataclass
class ImportReport:
    imported: int = 0
    error_count: int = 0
    errors: list[RowError] = field(default_factory=list)  # the first ``KEPT_ERRORS``
    stopped: RowError | None = None


KEPT_ERRORS = 50


async def import_file(
    *,
    sessions: async_sessionmaker[AsyncSession],
    actor: Principal,
    path: Path,
    strict: bool = False,
    batch: int = BATCH,
    addok_url: str | None = None,
) -> ImportReport:
    """Import an address file: a job that owns its transactions, one per batch of ``batch``
    rows (a long import never holds the database's write lock for long; the rows committed
    before a failure stay, and importing again after a fix only updates them). Bad rows are
    counted and skipped, or with ``strict`` stop the import before the batch that holds
    them is written. Raises ``FileError`` when the file is not an address file.

    With ``addok_url`` (ADR 0030) the rows go to addok's Redis instead of the places table,
    each batch in the transaction of its audit record (written first: a refused audit writes
    nothing); raises ``PlacesUnavailable`` when Redis does not answer."""
    report = ImportReport()
    pending: list[PlaceRow] = []

    async def flush() -> None:
        async with transaction(sessions) as session:
            if addok_url is None:
                await upsert_places(session=session, actor=actor, rows=pending, source=path.name)
            else:
                latest = list({row.id: row for row in pending}.values())
                await record_import(
                    session=session, actor=actor, source=path.name, rows=len(latest), engine="addok"
                )
                await place_addok.index_places(url=addok_url, rows=latest)
        report.imported += len(pending)
        pending.clear()

    with open_text(path) as handle:
        for item in parse(handle):
            if isinstance(item, RowError):
                report.error_count += 1
                if len(report.errors) < KEPT_ERRORS:
                    report.errors.append(item)
                if strict:
                    report.stopped = item
                    return report
                continue
            pending.append(item)
            if len(pending) >= batch:
                await flush()
    if pending:
        await flush()
    return report
