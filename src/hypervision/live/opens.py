"""Stream openings audited in batches (docs/adr/0015).

Every opening keeps its own audit record (actor, topics, resume point), written and committed
before the stream starts: no audit, no stream. A burst of openings each committing its own
record would hold a pool connection per opening for a commit each; here openings arriving
together are written by one writer, many records per transaction: one connection and one
commit for the batch (the records are queued, then chained by the sequencer, docs/adr/0018).

PostgreSQL only: on SQLite the request's transaction already holds the single write lock, so
the opening is recorded in it (a second transaction would wait for it).
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hypervision.audit import service as audit
from hypervision.db import transaction
from hypervision.identity.principal import Principal

BATCH = 500


class OpenAudit:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self.pending: list[tuple[Principal, dict[str, Any], asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(self, actor: Principal, detail: dict[str, Any]) -> None:
        """Returns once the opening's record is committed; raises what the write raised."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.add_done_callback(_retrieved)  # the opening may be gone (client left) by then
        self.pending.append((actor, detail, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="hypervision-stream-opens")
        await asyncio.shield(done)

    async def _write(self) -> None:
        while self.pending:
            batch, self.pending = self.pending[:BATCH], self.pending[BATCH:]
            try:
                async with transaction(self.sessions) as session:
                    for actor, detail, _ in batch:
                        await audit.record(
                            session=session,
                            actor=actor,
                            action="stream.open",
                            surface="stream",
                            detail=detail,
                        )
            except Exception as exc:  # noqa: BLE001 - each opening of the batch fails with it
                for _, _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for _, _, done in batch:
                if not done.done():
                    done.set_result(None)


def _retrieved(done: asyncio.Future[None]) -> None:
    if not done.cancelled():
        done.exception()
