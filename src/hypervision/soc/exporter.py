"""The exporter: sends the sequenced audit trail, then its signed checkpoints, to one sink, at
least once, from a cursor persisted per sink (docs/adr/0037).

Only sequenced records leave, in ``seq`` order: the SOC receives the chain's order. After a
batch is sent (written and flushed) the cursor moves, in a short transaction of its own: a
restart resumes after ``resume_seq`` (``sent_seq`` less what kernel buffers may have held
unread, the sink's ``replay_bytes``): duplicates possible, gaps never.

One exporter per sink across replicas: a lease in the cursor's row (``owner``,
``lease_until``), claimed when free or expired, renewed with every move of the cursor; a move
by a replica that lost it changes nothing and stops that replica. A lease row rather than the
sequencer's transaction-scoped advisory lock: the exporter holds its connection to the
collector for hours and never holds a transaction open while it sends (SQLite would block
every writer), and a row works the same on both engines.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import random
import secrets
import socket
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hypervision.audit import service as audit
from hypervision.audit.checkpoints import Checkpoint, CheckpointError, Witness, load_public_key
from hypervision.audit.models import AuditHead, AuditRecord
from hypervision.audit.sequencer import BATCH, sequence_batch
from hypervision.config import Settings
from hypervision.db import transaction, utcnow
from hypervision.soc.models import SocCursor
from hypervision.soc.sinks import Sink, SinkError, SocConfigError, sinks_from
from hypervision.soc.state import SinkState, Window

log = logging.getLogger("hypervision.soc")
RECORDS: Table = AuditRecord.__table__  # type: ignore[assignment]
CURSORS: Table = SocCursor.__table__  # type: ignore[assignment]
_CHECKPOINT_NAME = len("checkpoint-")


class LeaseLost(Exception):
    """Another replica exports to this sink now."""


class LeaseHeld(Exception):
    """Another replica holds this sink's lease (``ship --once`` says so and stops)."""


class Exporter:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        sink: Sink,
        witness: Witness | None,
        sequence: bool = False,
    ) -> None:
        self.sessions = sessions
        # Chain the queue before each pass: the command line, where no server's sequencer
        # may be running (the server's own sequencer does it there).
        self.sequence = sequence
        self.settings = settings
        self.sink = sink
        self.witness = witness
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"[:100]
        self.state = SinkState(sink.name)
        self._window: Window | None = None  # None until the cursor is read
        self._position: tuple[int, int] | None = None  # (record, checkpoint) while connected
        self._sent_high = (0, 0)
        self._task: asyncio.Task[None] | None = None
        self._witness_warned = False
        self._row_seen = False  # the cursor's row exists (it is never deleted)
        self._listing: tuple[int, list[str]] = (-1, [])  # the witness directory's mtime, names

    # --- the cursor and its lease ----------------------------------------------------------

    async def _claim(self) -> SocCursor | None:
        """Take or renew the lease; the cursor when this process holds it, else None."""
        now = utcnow()
        if not self._row_seen:
            with contextlib.suppress(IntegrityError):  # two replicas creating it: one wins
                async with transaction(self.sessions) as session:
                    if await session.get(SocCursor, self.sink.name) is None:
                        session.add(
                            SocCursor(
                                sink=self.sink.name,
                                sent_seq=0,
                                resume_seq=0,
                                checkpoint_sent=0,
                                checkpoint_resume=0,
                                failures=0,
                                updated_at=now,
                            )
                        )
            self._row_seen = True
        async with transaction(self.sessions) as session:
            table = CURSORS
            claimed = await session.execute(
                update(table)
                .where(
                    table.c.sink == self.sink.name,
                    (table.c.owner == self.owner)
                    | table.c.owner.is_(None)
                    | table.c.lease_until.is_(None)
                    | (table.c.lease_until < now),
                )
                .values(owner=self.owner, lease_until=self._lease_end(), updated_at=now)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                return None
            return await session.get(SocCursor, self.sink.name)

    def _lease_end(self) -> Any:
        return utcnow() + timedelta(seconds=self.settings.soc_lease_seconds)

    async def _save(self, record: int, checkpoint: int, *, failed: str | None = None) -> None:
        """Move the cursor (and renew the lease), or record a failure; LeaseLost when another
        replica took the lease meanwhile. Before the cursor was read, only the failure."""
        values: dict[str, Any] = {
            "lease_until": self._lease_end(),
            "failures": self.state.consecutive,
            "last_error": failed,
            "updated_at": utcnow(),
        }
        window = self._window
        high = (max(self._sent_high[0], record), max(self._sent_high[1], checkpoint))
        if window is not None:
            values.update(
                sent_seq=high[0],
                resume_seq=window.resume("record"),
                checkpoint_sent=high[1],
                checkpoint_resume=window.resume("checkpoint"),
            )
        table = CURSORS
        async with transaction(self.sessions) as session:
            moved = await session.execute(
                update(table)
                .where(table.c.sink == self.sink.name, table.c.owner == self.owner)
                .values(values)
            )
        if moved.rowcount != 1:  # type: ignore[attr-defined]
            raise LeaseLost(f"sink {self.sink.name}: another replica took the lease")
        if window is not None:
            self._sent_high = high
            self.state.saved = high[0]

    async def release(self) -> None:
        """Give the lease up (a clean stop): another replica may take over at once."""
        table = CURSORS
        with contextlib.suppress(Exception):
            async with transaction(self.sessions) as session:
                await session.execute(
                    update(table)
                    .where(table.c.sink == self.sink.name, table.c.owner == self.owner)
                    .values(owner=None, lease_until=None)
                )
        self.state.leader = False

    # --- one pass ---------------------------------------------------------------------------

    async def ship(self) -> int:
        """Send everything sequenced and every checkpoint not yet sent; returns the number of
        messages sent (0 when another replica holds the lease). Raises SinkError, LeaseLost
        or a database error; the caller closes the sink and retries."""
        cursor = await self._claim()
        self.state.leader = cursor is not None
        if cursor is None:
            return 0
        if self._position is not None:
            await self.sink.check()
        if self._position is None or not self._connected():
            # A new connection: resume where nothing can have been lost (the cursor's resume
            # points, saved by the failure that broke the last one).
            base = {"record": cursor.resume_seq, "checkpoint": cursor.checkpoint_resume}
            self._window = Window(self.sink.replay_bytes, base)
            self._sent_high = (
                max(self._sent_high[0], cursor.sent_seq),
                max(self._sent_high[1], cursor.checkpoint_sent),
            )
            await self.sink.open()
            self._position = (cursor.resume_seq, cursor.checkpoint_resume)
            if cursor.resume_seq < cursor.sent_seq:
                self.state.replayed += cursor.sent_seq - cursor.resume_seq
        record, checkpoint = self._position
        if self.sequence:
            async with transaction(self.sessions) as session:
                while await sequence_batch(session) == BATCH:  # skips if a replica does it
                    pass
        window = self._window
        assert window is not None
        self.state.cursor = max(self.state.cursor, cursor.sent_seq)
        self.state.head = await self._head()
        sent = 0
        while True:
            frames: list[bytes] = []
            entries: list[tuple[str, int, int, int]] = []  # kind, resume, sent, bytes
            for cp, signature in self._checkpoints(after=checkpoint, until=record):
                frames.append(self.sink.checkpoint(cp, signature))
                entries.append(("checkpoint", cp.first_seq - 1, cp.last_seq, len(frames[-1])))
                checkpoint = cp.last_seq
            for row in await self._records(after=record):
                frames.append(self.sink.record(row))
                entries.append(("record", row.seq - 1, row.seq, len(frames[-1])))
                record = row.seq
            if not frames:
                break
            await self.sink.send(frames)
            for entry in entries:  # sent: what a break from now on may lose
                window.add(*entry)
            self._position = (record, checkpoint)
            self.state.sent += len(frames)
            self.state.cursor = record
            self.state.head = max(self.state.head, record)
            sent += len(frames)
            await self._save(record, checkpoint)
        self.state.cursor = record
        return sent

    def _connected(self) -> bool:
        return self.sink.connected

    async def _head(self) -> int:
        async with transaction(self.sessions) as session:
            return int(await session.scalar(select(AuditHead.seq).where(AuditHead.id == 1)) or 0)

    async def _records(self, *, after: int) -> list[Any]:
        async with transaction(self.sessions) as session:
            query = (
                select(RECORDS)
                .where(RECORDS.c.seq > after)
                .order_by(RECORDS.c.seq)
                .limit(self.settings.soc_batch)
            )
            return list((await session.execute(query)).all())

    def _checkpoints(self, *, after: int, until: int) -> list[tuple[Checkpoint, bytes]]:
        """The signed checkpoints ending in ``after < last_seq <= until``, in order; none when
        there is no witness directory here, or a file in it fails its check (logged)."""
        if self.witness is None:
            return []
        found: list[tuple[Checkpoint, bytes]] = []
        try:
            for name in self._witness_names(self.witness):
                last = int(name[_CHECKPOINT_NAME:].split(".", 1)[0])
                if after < last <= until:
                    checkpoint = self.witness.read(name)  # signature checked
                    raw = json.loads((self.witness.directory / name).read_bytes())
                    found.append((checkpoint, base64.b64decode(raw["signature"])))
        except (CheckpointError, OSError, ValueError, KeyError) as exc:
            if not self._witness_warned:
                log.error("SOC export: checkpoints not sent: %s", exc)
                self._witness_warned = True
            return found
        self._witness_warned = False
        return found

    def _witness_names(self, witness: Witness) -> list[str]:
        """The checkpoint files, listed again only when the directory changed (years of
        checkpoints are a long listing to read every second)."""
        try:
            changed = witness.directory.stat().st_mtime_ns
        except FileNotFoundError:
            return []
        # A directory changed within the last 2 s is listed again: a file may have joined it
        # within the same tick of its coarse modification time.
        if changed != self._listing[0] or time.time_ns() - changed < 2_000_000_000:
            self._listing = (changed, witness.names())
        return self._listing[1]

    # --- running ----------------------------------------------------------------------------

    async def failed(self, exc: BaseException) -> float:
        """Count a failure, close the sink; past the threshold log an error and audit it once.
        Returns the back-off delay (exponential, with jitter)."""
        await self.sink.close()
        self._position = None
        state = self.state
        state.failures += 1
        state.consecutive += 1
        state.last_error = str(exc)[:200] or type(exc).__name__
        log.warning("SOC export to %s failed (%d in a row): %s", state.sink, state.consecutive, exc)
        if state.consecutive >= self.settings.soc_failure_threshold and not state.failing:
            state.failing = True
            log.error(
                "SOC export to %s failing: %d failures in a row, last: %s",
                state.sink,
                state.consecutive,
                state.last_error,
            )
            await self._audit("soc.export_failing")
        with contextlib.suppress(Exception):  # the database may be what fails
            await self._save(*self._sent_high, failed=state.last_error)
        base = self.settings.soc_backoff_seconds * 2 ** min(state.consecutive - 1, 30)
        jitter = random.uniform(0.5, 1.0)  # noqa: S311 - spreading retries, not a secret
        return float(min(self.settings.soc_backoff_max_seconds, base) * jitter)

    async def succeeded(self) -> None:
        if self.state.failing:
            log.warning("SOC export to %s recovered", self.state.sink)
            await self._audit("soc.export_recovered")
        self.state.failing = False
        self.state.consecutive = 0
        self.state.last_error = None

    async def _audit(self, action: str) -> None:
        """An audit record the alerts read from the trail (best effort: the database may be
        down too; the log line and the metric stand anyway)."""
        try:
            async with transaction(self.sessions) as session:
                await audit.record(
                    session=session,
                    actor=None,
                    actor_name="soc-exporter",
                    action=action,
                    surface="system",
                    decision="allowed",
                    resource_type="soc_sink",
                    resource_ids=[self.sink.name],
                    detail={
                        "sink": self.sink.name,
                        "consecutive_failures": self.state.consecutive,
                        "cursor": self._sent_high[0],
                        "error": self.state.last_error,
                    },
                )
        except Exception:
            log.exception("SOC export: could not audit %s", action)

    async def run(self) -> None:
        """Ship forever: every ``soc_poll_seconds``, or after the back-off when it fails."""
        while True:
            try:
                await self.ship()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not isinstance(exc, SinkError | LeaseLost):
                    log.exception("SOC export to %s: unexpected error", self.sink.name)
                await asyncio.sleep(await self.failed(exc))
                continue
            await self.succeeded()
            await asyncio.sleep(self.settings.soc_poll_seconds)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=f"hypervision-soc-{self.sink.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.sink.close()
        self._position = None
        await self.release()


async def ship_once(exporter: Exporter) -> int:
    """``audit ship --once``: everything now, then stop; LeaseHeld when a replica exports."""
    try:
        cursor_taken = await exporter._claim()
        if cursor_taken is None:
            raise LeaseHeld(f"another process exports to {exporter.sink.name} now")
        return await exporter.ship()
    finally:
        await exporter.sink.close()
        await exporter.release()


def _witness(settings: Settings) -> Witness | None:
    """The witness directory, read with the audit public key when it is here (else the
    checkpoints are not exported from this process)."""
    if not settings.audit_public_key_path.is_file():
        return None
    try:
        public_key = load_public_key(settings.audit_public_key_path)
    except CheckpointError as exc:
        raise SocConfigError(f"invalid setting HYPERVISION_AUDIT_PUBLIC_KEY_FILE: {exc}") from None
    return Witness(settings.audit_witness_path, public_key)


def check_settings(settings: Settings) -> None:
    """Raise SocConfigError (naming the setting) when the export is misconfigured: what
    ``serve`` checks before it starts."""
    if sinks_from(settings):
        _witness(settings)


def exporters_from(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], *, sequence: bool = False
) -> list[Exporter]:
    """One exporter per configured sink (none: the export is off). Checkpoints go too when
    the audit public key is here to check them. A wrong setting raises SocConfigError."""
    sinks = sinks_from(settings)
    if not sinks:
        return []
    witness = _witness(settings)
    return [
        Exporter(
            sessions=sessions, settings=settings, sink=sink, witness=witness, sequence=sequence
        )
        for sink in sinks
    ]
