"""The operation's time zone: dates are stored in UTC and shown (pages, PDFs, schedules) in
Paris time."""

from __future__ import annotations

from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
