"""Alert rules, alerts, and the evaluator's own state (docs/adr/0040).

Alerts cite audit records by ``seq`` and id, and carry levels, never content; like the trail,
only security officers (and the system context) read them (row-level security on PostgreSQL).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from hypervision.db import Base, UTCDateTime, new_id, utcnow


class AlertRule(Base):
    __tablename__ = "alert_rules"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(100))


class Alert(Base):
    __tablename__ = "security_alerts"
    __table_args__ = (Index("ix_security_alerts_open", "rule_id", "subject_key", "state"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    rule_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    rule_name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), index=True)  # new, acknowledged, closed
    subject_kind: Mapped[str] = mapped_column(String(16))  # person, address, record, system
    subject_key: Mapped[str] = mapped_column(String(100))
    subject_name: Mapped[str] = mapped_column(String(100))
    measure: Mapped[int] = mapped_column(Integer, default=0)  # the figure that crossed the rule
    record_count: Mapped[int] = mapped_column(Integer, default=0)
    # The triggering audit records: [{"seq": …, "id": …}], the first MAX_CITED of them.
    records: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Workflow history: [{"at", "by", "to", "note"}]
    notes: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer, default=1)


class AlertCursor(Base):
    """One row (id = 1): the last ``seq`` evaluated, so that each record is evaluated once
    across replicas (rows locked by the pass), and whether the default rules were installed."""

    __tablename__ = "alert_cursor"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    defaults_installed: Mapped[bool] = mapped_column(Boolean, default=True)


class KnownAddress(Base):
    """The addresses each account signed in from, and when last: the "new address" rule."""

    __tablename__ = "alert_known_addresses"

    user_key: Mapped[str] = mapped_column(String(100), primary_key=True)
    address: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)


class KnownCountry(Base):
    """The countries (from the operator's address ranges) each account signed in from."""

    __tablename__ = "alert_known_countries"

    user_key: Mapped[str] = mapped_column(String(100), primary_key=True)
    country: Mapped[str] = mapped_column(String(8), primary_key=True)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AlertMail(Base):
    """An alert to mail (docs/adr/0046): queued in the sequencer's pass that raised the alert,
    sent by the mail loop after it, retried with back-off. The message is built from the
    alert when sent (kind, severity, counts, ids, a link); ``recipients`` records whom it
    reached."""

    __tablename__ = "alert_mails"
    __table_args__ = (Index("ix_alert_mails_due", "state", "next_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    alert_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending, sent, failed
    by_rule: Mapped[bool] = mapped_column(Boolean, default=False)  # its rule is marked e-mail
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recipients: Mapped[list[str]] = mapped_column(JSON, default=list)
    last_error: Mapped[str | None] = mapped_column(String(300))


class AlertMailSubscription(Base):
    """A security officer's choice to receive alerts by e-mail: the rules marked ``email``,
    and, with ``min_severity``, every alert at least that severe."""

    __tablename__ = "alert_mail_subscriptions"

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    min_severity: Mapped[str | None] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
