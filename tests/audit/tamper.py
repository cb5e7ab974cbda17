"""Tampering with the audit trail as an attacker with the database owner's rights would: through
the owner's connection (the application's role may not change the trail)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import cast

from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from hypervision.audit.chain import chain_hash
from hypervision.audit.models import GENESIS_HASH, AuditHead, AuditRecord

RECORDS = cast(Table, AuditRecord.__table__)


@asynccontextmanager
async def owner(url: str) -> AsyncIterator[AsyncConnection]:
    """One committed transaction on the owner's own engine."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            yield conn
    finally:
        await engine.dispose()


async def recompute_chain(conn: AsyncConnection) -> None:
    """Rewrite every prev_hash/row_hash and the head so that the chain verifies again."""
    sequenced = select(RECORDS).where(RECORDS.c.seq.is_not(None))
    rows = (await conn.execute(sequenced.order_by(RECORDS.c.seq))).all()
    prev = GENESIS_HASH
    for row in rows:
        new = chain_hash(prev, row)
        if (row.prev_hash, row.row_hash) != (prev, new):
            await conn.execute(
                update(RECORDS).where(RECORDS.c.seq == row.seq).values(prev_hash=prev, row_hash=new)
            )
        prev = new
    last = rows[-1].seq if rows else 0
    await conn.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=last, last_hash=prev))


async def renumber(conn: AsyncConnection, seq: int, new_seq: int) -> None:
    await conn.execute(update(RECORDS).where(RECORDS.c.seq == seq).values(seq=new_seq))
