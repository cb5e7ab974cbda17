"""The export cursors: one row per sink (``syslog``, ``jsonl``), which says how far the SOC has
the trail and which replica exports it now (docs/adr/0037).

Not protected data (sequence numbers, a replica's name, an error class): no row-level
security; the application's role reads and writes it like the sessions' tables.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from hypervision.db import Base, UTCDateTime


class SocCursor(Base):
    __tablename__ = "soc_export_cursors"

    sink: Mapped[str] = mapped_column(String(32), primary_key=True)
    # The last record written and flushed to the sink ("sent"), and the one a reconnection or
    # a restart resumes after: ``sent_seq`` less the records that may still have been in
    # flight (kernel buffers) when the connection broke. Duplicates possible, gaps never.
    sent_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    resume_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    # The same for signed checkpoints, by their ``last_seq``.
    checkpoint_sent: Mapped[int] = mapped_column(BigInteger, default=0)
    checkpoint_resume: Mapped[int] = mapped_column(BigInteger, default=0)
    # The lease: one exporter per sink across replicas (a replica that dies lets it expire).
    owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failures: Mapped[int] = mapped_column(Integer, default=0)  # consecutive
    last_error: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
