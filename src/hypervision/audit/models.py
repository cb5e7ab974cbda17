"""The audit trail: one hash-chained record per use of data.

A request appends its record to the queue (``seq`` null) in its own transaction; the sequencer
(``audit.sequencer``) later gives queued records their ``seq`` and hashes, in batches, and
moves ``audit_head`` (docs/adr/0018)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from hypervision.db import Base, UTCDateTime

GENESIS_HASH = "0" * 64

# SQLite only auto-increments an INTEGER PRIMARY KEY.
QueueId = BigInteger().with_variant(Integer(), "sqlite")


class AuditHead(Base):
    """A single row (id = 1) holding the last sequence number and hash: the one place that
    orders the trail, locked by the sequencer alone, so several processes cannot fork it."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(String(64))


class AuditRecord(Base):
    __tablename__ = "audit_records"
    # Appended without RETURNING: under row-level security only auditors read the trail.
    __table_args__ = (
        Index("ix_audit_records_actor_seq", "actor_id", "seq"),  # a person's activity
        {"implicit_returning": False},
    )

    # The queue position, given at insert (not commit) time; the chain's order is ``seq``.
    qid: Mapped[int] = mapped_column(QueueId, primary_key=True, autoincrement=True)
    seq: Mapped[int | None] = mapped_column(BigInteger, unique=True)  # null: queued
    id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    actor_name: Mapped[str] = mapped_column(String(100))
    actor_organisation_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    actor_clearance: Mapped[str | None] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64), index=True)
    surface: Mapped[str] = mapped_column(String(32))
    decision: Mapped[str] = mapped_column(String(16))  # allowed, denied, not_found
    resource_type: Mapped[str | None] = mapped_column(String(64))
    resource_ids: Mapped[list[str]] = mapped_column(JSON)
    labels: Mapped[list[str]] = mapped_column(JSON)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    request_id: Mapped[str | None] = mapped_column(String(64))
    client_address: Mapped[str | None] = mapped_column(String(64))
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    row_hash: Mapped[str | None] = mapped_column(String(64))


class AuditResource(Base):
    """The trail's index by record (docs/adr/0039): one row per record id a sequenced audit
    record names, written by the sequencer in the batch that gives the record its ``seq``
    (so it is exactly the chained trail, never a queued record). "Who saw this" reads it
    by ``(resource_id, seq)``: an index range, newest first, however long the trail."""

    __tablename__ = "audit_resources"
    __table_args__ = (Index("ix_audit_resources_seq", "seq"),)  # retention deletes by seq

    resource_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
