"""Evaluating alert rules as the audit trail is chained (docs/adr/0040).

The sequencer hands each batch it chained, right after its commit, to ``Evaluator.run`` in a
transaction of its own. A cursor row (``alert_cursor``, locked by the pass) holds the last
``seq`` evaluated, so each record is evaluated once whichever replica chained it; a batch
that does not follow the cursor (another replica's, or chained by ``drain`` for the audit API)
makes the evaluator read what it missed from the trail, after rebuilding its windows from the
records still inside them. A failed pass leaves the cursor where it was: the next one resumes.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.alerts import service
from hypervision.alerts.catalogue import COUNTED, Rec, interesting, observe
from hypervision.alerts.models import AlertRule, KnownAddress
from hypervision.alerts.windows import Entry, Firing, Window
from hypervision.audit.models import AuditHead, AuditRecord
from hypervision.db import utcnow

log = logging.getLogger("hypervision.alerts")
READ_BATCH = 2000


class Evaluator:
    """One per serving process; its windows are a cache of the trail."""

    def __init__(self, levels: tuple[str, ...]) -> None:
        self.levels = levels
        self.windows: dict[tuple[uuid.UUID, str], Window] = {}
        self.synced = -1  # the cursor the windows are in step with
        self.rules_seen: frozenset[tuple[uuid.UUID, int]] = frozenset()
        self.evaluated = 0  # records evaluated by this process (for the bench)

    async def run(self, session: AsyncSession, rows: Sequence[Any] = ()) -> int:
        """Evaluate the records chained since the cursor (``rows``: the batch just chained,
        used as is when it follows the cursor). Returns how many records were evaluated."""
        cursor = await service.ensure_state(session)
        rules = list(
            await session.scalars(
                select(AlertRule).where(AlertRule.enabled).order_by(AlertRule.created_at)
            )
        )
        seen = frozenset((r.id, r.version) for r in rules)
        recs = [Rec.of(r) for r in rows if r.seq is not None and r.seq > cursor.seq]
        in_step = (
            self.synced == cursor.seq
            and seen == self.rules_seen
            and (not recs or recs[0].seq == cursor.seq + 1)
        )
        if not in_step:
            await self._rebuild(session, rules, cursor.seq)
            self.rules_seen = seen
            recs = []
        if not recs:
            head = await session.scalar(select(AuditHead.seq).where(AuditHead.id == 1))
            if head is None or head <= cursor.seq:
                self.synced = cursor.seq
                return 0
            recs = await _read(session, cursor.seq, head)
        fired = await self._feed(session, rules, recs)
        for firing in fired.values():
            await service.raise_or_merge(session, firing=firing, levels=self.levels)
        cursor.seq = recs[-1].seq
        self.synced = cursor.seq
        self.evaluated += len(recs)
        return len(recs)

    async def _rebuild(self, session: AsyncSession, rules: list[AlertRule], upto: int) -> None:
        """Refill the windows of the counted rules from the records still inside them."""
        self.windows.clear()
        counted = [r for r in rules if r.kind in COUNTED]
        if not counted:
            return
        longest = max(int(r.params.get("window_minutes", 15)) for r in counted)
        since = utcnow() - timedelta(minutes=longest)
        query = (
            select(*_COLUMNS)
            .where(AuditRecord.at >= since, AuditRecord.seq <= upto)
            .order_by(AuditRecord.seq)
            .execution_options(yield_per=READ_BATCH)
        )
        result = await session.stream(query)
        async for row in result:
            if not interesting(row.action):
                continue
            rec = Rec.of(row)
            for rule in counted:
                self._count(rule, rec)

    def _count(self, rule: AlertRule, rec: Rec) -> tuple[Window, Any] | None:
        seen = observe(rule.kind, rule.params, rec, self.levels)
        if seen is None:
            return None
        key = (rule.id, seen.subject_key)
        window = self.windows.get(key)
        if window is None:
            window = self.windows[key] = Window(
                int(rule.params.get("window_minutes", 15)), rule.kind == "bulk_reads"
            )
        window.add(Entry(rec.at, rec.seq, rec.id, seen.items, seen.weight))
        return window, seen

    async def _feed(
        self, session: AsyncSession, rules: list[AlertRule], recs: list[Rec]
    ) -> dict[tuple[uuid.UUID, str], Firing]:
        fired: dict[tuple[uuid.UUID, str], Firing] = {}
        for rec in recs:
            if not interesting(rec.action):
                continue
            for rule in rules:
                if rule.kind in COUNTED:
                    counted = self._count(rule, rec)
                    if counted is None:
                        continue
                    window, seen = counted
                    if window.measure <= int(rule.params.get("threshold", 1)):
                        continue
                    firing = _firing(fired, rule, seen)
                    if window.fired:
                        firing.cite(rec.at, rec.seq, rec.id)
                    else:
                        window.fired = True
                        for entry in window.entries:
                            firing.cite(entry.at, entry.seq, entry.id)
                    firing.measure = max(firing.measure, window.measure)
                    continue
                seen = observe(rule.kind, rule.params, rec, self.levels)
                if seen is None:
                    continue
                if rule.kind == "sign_in_new_address" and not await _new_address(
                    session, seen.subject_key, rec, int(rule.params.get("days", 30))
                ):
                    continue
                firing = _firing(fired, rule, seen)
                firing.cite(rec.at, rec.seq, rec.id)
                firing.measure += 1
        return fired


def _firing(fired: dict[tuple[uuid.UUID, str], Firing], rule: AlertRule, seen: Any) -> Firing:
    key = (rule.id, seen.subject_key)
    firing = fired.get(key)
    if firing is None:
        firing = fired[key] = Firing(rule, seen.subject_kind, seen.subject_key, seen.subject_name)
    return firing


async def _new_address(session: AsyncSession, user_key: str, rec: Rec, days: int) -> bool:
    """Whether the account signs in from an address not used in the last ``days`` days (its
    very first sign-in teaches the evaluator, and raises nothing); learns the address."""
    assert rec.client_address is not None
    known = {
        k.address: k
        for k in await session.scalars(
            select(KnownAddress).where(KnownAddress.user_key == user_key)
        )
    }
    this = known.get(rec.client_address)
    if this is None:
        session.add(
            KnownAddress(user_key=user_key, address=rec.client_address, last_seen_at=rec.at)
        )
    else:
        recent = this.last_seen_at >= rec.at - timedelta(days=days)
        this.last_seen_at = max(this.last_seen_at, rec.at)
        return not recent
    await session.flush()
    return bool(known)


_COLUMNS = (
    AuditRecord.seq,
    AuditRecord.id,
    AuditRecord.at,
    AuditRecord.actor_id,
    AuditRecord.actor_name,
    AuditRecord.action,
    AuditRecord.decision,
    AuditRecord.resource_type,
    AuditRecord.resource_ids,
    AuditRecord.labels,
    AuditRecord.detail,
    AuditRecord.client_address,
)


async def _read(session: AsyncSession, after: int, upto: int) -> list[Rec]:
    rows = await session.execute(
        select(*_COLUMNS)
        .where(AuditRecord.seq > after, AuditRecord.seq <= upto)
        .order_by(AuditRecord.seq)
        .limit(READ_BATCH * 5)
    )
    return [Rec.of(row) for row in rows]
