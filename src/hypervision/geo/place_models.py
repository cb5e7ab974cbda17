"""The address gazetteer: public reference places (a national address base extract the
operator imports), searched by officers to locate an entry. Not a protected record: no label,
no versions (ADR 0024)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hypervision.db import Base, UTCDateTime, utcnow


class Place(Base):
    __tablename__ = "places"

    # The address base's own identifier (e.g. "93066_0340_00012"): re-importing a file
    # updates its rows instead of duplicating them.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))  # "12 Rue Jules Rimet, 93200 Saint-Denis"
    housenumber: Mapped[str] = mapped_column(String(24), default="")
    street: Mapped[str] = mapped_column(String(200))
    postcode: Mapped[str] = mapped_column(String(10), default="")
    citycode: Mapped[str] = mapped_column(String(10), default="")
    city: Mapped[str] = mapped_column(String(120), default="")
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    # The label folded (lower case, no accents, punctuation as spaces): what is searched.
    search_text: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(120), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
