"""Scheduled reports: at each time of a schedule (Europe/Paris), the space's report is rendered
*as each recipient* (so each gets what they may read, marked for it) and delivered the way
syntheses are: a delivery row (the recipient's list of reports) and, where mail is set up, a
message after the commit — the PDF attached only when it holds nothing above the lowest level,
otherwise only the link. A recipient who may not read the space gets nothing; a ``refused``
row and an audit record say so. A run is claimed by one conditional UPDATE (several
replicas make one run). docs/adr/0045."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import smtplib
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hypervision.audit import service as audit
from hypervision.config import Settings
from hypervision.core.errors import Invalid, NotFound
from hypervision.db import transaction, utcnow
from hypervision.identity.auth import Client, build_principal
from hypervision.identity.models import User
from hypervision.policy.rules import Action, allowed
from hypervision.reports import mail
from hypervision.reports.models import ReportDelivery, ReportSchedule
from hypervision.reports.render import Report, report_for
from hypervision.synthesis.schedules import last_due
from hypervision.synthesis.schemas import Recipients
from hypervision.synthesis.service import recipient_users

log = logging.getLogger("hypervision.reports")


@dataclass
class Outgoing:
    """A report made for one recipient, waiting for the commit before it is mailed."""

    delivery_id: uuid.UUID
    user: User
    report: Report


async def _claim(session: AsyncSession, schedule: ReportSchedule, due: datetime) -> bool:
    claimed = await session.execute(
        update(ReportSchedule)
        .where(
            ReportSchedule.id == schedule.id,
            ReportSchedule.active,
            or_(ReportSchedule.last_run_at.is_(None), ReportSchedule.last_run_at < due),
        )
        .values(last_run_at=due)
    )
    return getattr(claimed, "rowcount", 0) == 1


async def _for_one(
    session: AsyncSession, settings: Settings, schedule: ReportSchedule, due: datetime,
    user: User, via: uuid.UUID | None,
) -> tuple[uuid.UUID, Outgoing | None]:  # fmt: skip
    """The report as ``user``, recorded as delivered (and returned when it is to be mailed);
    or, when they may not read the space, nothing but a ``refused`` row and an audit record."""
    principal = await build_principal(
        session=session, user=user, scopes=None, client=Client(None, None), surface="schedule"
    )
    report = None
    if user.is_active and allowed(principal, Action.READ):
        try:
            report = await report_for(
                session=session, settings=settings, actor=principal,
                space_id=schedule.space_id, module_ids=schedule.module_ids or None,
                reader=user.full_name, surface="schedule", lenient=True,
            )  # fmt: skip
        except NotFound:  # hidden from them, or gone: alike
            report = None
    mailed = report is not None and bool(settings.smtp_host and user.email)
    row = ReportDelivery(
        schedule_id=schedule.id, space_id=schedule.space_id, user_id=user.id,
        via_organisation_id=via, due_at=due,
        status="delivered" if report else "refused", level=report.level if report else None,
        email_status="pending" if mailed else "none", created_at=utcnow(),
    )  # fmt: skip
    session.add(row)
    await session.flush()
    if report is None:
        await audit.record(
            session=session, actor=None, actor_name="report-schedule", surface="schedule",
            action="space.report.withheld", decision="denied", resource_type="user",
            resource_ids=[user.id],
            detail={"schedule_id": str(schedule.id), "space_id": str(schedule.space_id)},
        )  # fmt: skip
    return row.id, Outgoing(row.id, user, report) if mailed and report else None


async def run_schedule(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, schedule: ReportSchedule,
    due: datetime,
) -> list[uuid.UUID]:  # fmt: skip
    """One claimed run: a delivery row per recipient, each in its own transaction (one
    recipient's failure never stops the others) and mailed once it committed (one PDF held
    at a time)."""
    async with transaction(sessions) as session:
        chosen = await _recipients(session, Recipients(**schedule.recipients))
    made = []
    for user, via in chosen:
        try:
            async with transaction(sessions) as session:
                row_id, out = await _for_one(session, settings, schedule, due, user, via)
        except Exception:
            log.exception("report schedule %s: one recipient failed", schedule.id)
            continue
        made.append(row_id)
        if out is not None:
            await _mail(sessions, settings, schedule, out)
    return made


async def _recipients(
    session: AsyncSession, chosen: Recipients
) -> list[tuple[User, uuid.UUID | None]]:
    """Who the schedule names now (an organisation: its members of today); a name that is
    gone since is skipped, the others still receive."""
    try:
        return await recipient_users(session, chosen)
    except Invalid:
        log.warning("report schedule: a recipient named in it is gone")
    found: dict[uuid.UUID, tuple[User, uuid.UUID | None]] = {}
    singles = [Recipients(users=[n]) for n in chosen.users]
    singles += [Recipients(organisations=[c]) for c in chosen.organisations]
    for one in singles:
        with contextlib.suppress(Invalid):
            for user, via in await recipient_users(session, one):
                found.setdefault(user.id, (user, via))
    return list(found.values())


async def _mail(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, schedule: ReportSchedule,
    out: Outgoing,
) -> None:  # fmt: skip
    status, error = "sent", None
    try:
        message = mail.message_for(settings, schedule, out.user, out.report)
        await asyncio.to_thread(mail.deliver, settings, message)
    except (OSError, smtplib.SMTPException) as exc:
        status, error = "failed", f"{type(exc).__name__}: {exc}"[:300]
        log.warning("report mail to %s failed: %s", out.user.id, type(exc).__name__)
    async with transaction(sessions) as session:
        row = await session.get(ReportDelivery, out.delivery_id)
        if row is not None:
            row.email_status, row.email_error = status, error
            row.emailed_at = utcnow() if status == "sent" else None


async def run_due(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, now: datetime | None = None
) -> list[uuid.UUID]:
    """Run the report schedules that are due; returns the delivery rows made."""
    now = now or utcnow()
    async with transaction(sessions) as session:
        schedules = list(await session.scalars(select(ReportSchedule).where(ReportSchedule.active)))
    made: list[uuid.UUID] = []
    for schedule in schedules:
        due, _ = last_due(schedule.times, now)
        async with transaction(sessions) as session:
            if not await _claim(session, schedule, due):
                continue  # not due, or another replica took it
        made += await run_schedule(sessions, settings, schedule, due)
    return made


async def loop(sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
    """The report scheduler of one replica (every ``schedule_poll_seconds``)."""
    while True:
        try:
            made = await run_due(sessions, settings)
            if made:
                log.info("scheduled reports delivered or withheld: %d", len(made))
        except Exception:
            log.exception("scheduled reports: round failed")
        await asyncio.sleep(settings.schedule_poll_seconds)
