"""Alerts by e-mail (docs/adr/0046): never content, never a name.

A raise queues one ``alert_mails`` row in the sequencer's pass that raised the alert (an
insert in the pass's transaction, no network); this module's loop, in the app's lifespan,
sends what is due after the pass committed, and retries failures with a doubling delay, so a
slow or refusing SMTP server never holds the chain back. Recipients are read when the mail is
sent: the active security officers with an e-mail address who subscribed
(``alert_mail_subscriptions``) — to the rules marked ``email``, or to every alert of at least
their chosen severity. Each gets their own message (no officer learns the others' addresses);
a recipient already served is not mailed again when the rest is retried. The message says
what kind of alert, how severe, how many records, the alert's id and where to read it: the
alert's subject (a person, an address), its rule's free-text name and the records' titles
stay in the console.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hypervision.alerts.models import Alert, AlertMail, AlertMailSubscription
from hypervision.alerts.schemas import SEVERITIES
from hypervision.audit import service as audit
from hypervision.config import Settings
from hypervision.db import transaction, utcnow
from hypervision.identity.models import User
from hypervision.policy.roles import Role
from hypervision.synthesis.mail import deliver

log = logging.getLogger("hypervision.alerts.mail")
BATCH = 20
MAX_DELAY = 3600.0
SEVERITY_FR = {"low": "faible", "medium": "moyenne", "high": "élevée", "critical": "critique"}
KIND_FR = {
    "bulk_reads": "lectures en masse",
    "id_probing": "sondage d'identifiants",
    "exports": "exports volumineux",
    "mfa_failures": "échecs répétés du second facteur",
    "sign_in_off_hours": "connexion hors des heures",
    "sign_in_new_address": "connexion depuis une nouvelle adresse",
    "sign_in_new_country": "connexion depuis un nouveau pays",
    "network_refused": "connexion refusée en amont",
    "soc_export_failing": "export vers le SOC en échec",
    "rights_widened": "droits élargis",
    "label_lowered": "marquage abaissé",
    "audit_verify_failed": "échec de vérification du journal d'audit",
}


def _at_least(severity: str, floor: str | None) -> bool:
    if floor not in SEVERITIES or severity not in SEVERITIES:
        return False
    return SEVERITIES.index(severity) >= SEVERITIES.index(floor)


async def queue(session: AsyncSession, alert: Alert, *, by_rule: bool) -> AlertMail | None:
    """In the pass raising ``alert``: one row to send, when its rule is marked ``email`` or
    someone subscribed to alerts this severe (else nothing: no row for nobody)."""
    if not by_rule:
        floors = await session.scalars(
            select(AlertMailSubscription.min_severity).where(
                AlertMailSubscription.min_severity.is_not(None)
            )
        )
        if not any(_at_least(alert.severity, floor) for floor in floors):
            return None
    now = utcnow()
    row = AlertMail(
        id=uuid.uuid4(),
        alert_id=alert.id,
        state="pending",
        by_rule=by_rule,
        attempts=0,
        next_at=now,
        created_at=now,
        recipients=[],
    )
    session.add(row)
    return row


async def recipients(session: AsyncSession, severity: str, by_rule: bool) -> list[User]:
    """The security officers this alert goes to: active people (not machines) holding the
    role, with an address, subscribed to its rule or to its severity."""
    rows = await session.execute(
        select(User, AlertMailSubscription.min_severity)
        .join(AlertMailSubscription, AlertMailSubscription.user_id == User.id)
        .where(User.is_active, User.is_machine.is_(False))
        .order_by(User.username)
    )
    return [
        user
        for user, floor in rows
        if Role.SECURITY_OFFICER.value in (user.roles or [])
        and user.email
        and (by_rule or _at_least(severity, floor))
    ]


def message_for(settings: Settings, alert: Alert, address: str) -> EmailMessage:
    """Kind, severity, counts, ids and a link: nothing the console would need a clearance
    (or even the audit right) to show."""
    link = f"{settings.public_url.rstrip('/')}/securite/alertes/{alert.id}"
    severity = SEVERITY_FR.get(alert.severity, alert.severity)
    kind = KIND_FR.get(alert.kind, alert.kind)
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = address
    message["Subject"] = f"[Hypervision] Alerte de sécurité ({severity}) : {kind}"
    message.set_content(
        "Bonjour,\n\n"
        "Une alerte de sécurité a été levée.\n\n"
        f"Type : {kind} ({alert.kind})\n"
        f"Gravité : {severity}\n"
        f"Enregistrements d'audit en cause : {alert.record_count}\n"
        f"Mesure : {alert.measure}\n"
        f"Alerte : {alert.id}\n"
        f"Règle : {alert.rule_id}\n"
        f"Première occurrence : {alert.first_at:%Y-%m-%d %H:%M:%S} UTC\n\n"
        "Les détails ne sont consultables que dans la console de sécurité :\n"
        f"{link}\n\n— Hypervision\n"
    )
    return message


@dataclass
class _Job:
    mail_id: uuid.UUID
    alert_id: uuid.UUID
    attempts: int
    served: list[str]
    to: list[tuple[str, str]]  # (user id, address) still to mail
    messages: list[EmailMessage]


def delay(settings: Settings, attempts: int) -> float:
    """Seconds before the next try after ``attempts`` failed ones (doubling, capped)."""
    return float(min(settings.alert_mail_retry_seconds * 2 ** max(attempts - 1, 0), MAX_DELAY))


async def _claim(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, now: datetime
) -> list[_Job]:
    """The mails due, claimed (their next try pushed past this one's time) so that another
    replica's loop leaves them alone, with their messages built."""
    jobs: list[_Job] = []
    lease = timedelta(seconds=settings.smtp_timeout_seconds * 3 + 30)
    async with transaction(sessions) as session:
        due = list(
            await session.scalars(
                select(AlertMail)
                .where(AlertMail.state == "pending", AlertMail.next_at <= now)
                .order_by(AlertMail.next_at)
                .limit(BATCH)
                .with_for_update(skip_locked=True)
            )
        )
        for row in due:
            alert = await session.get(Alert, row.alert_id)
            if alert is None:
                row.state, row.last_error = "failed", "alert gone"
                continue
            people = await recipients(session, alert.severity, row.by_rule)
            to = [(str(u.id), str(u.email)) for u in people if str(u.id) not in row.recipients]
            row.next_at = now + lease
            jobs.append(
                _Job(
                    row.id,
                    alert.id,
                    row.attempts,
                    list(row.recipients),
                    to,
                    [message_for(settings, alert, address) for _, address in to],
                )
            )
    return jobs


async def send_due(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, now: datetime | None = None
) -> int:
    """Send every mail due; returns how many messages went out. A failure keeps the mail
    pending, its next try ``delay`` later (given up after ``alert_mail_attempts``)."""
    if not settings.smtp_host:
        return 0
    now = now or utcnow()
    sent = 0
    for job in await _claim(sessions, settings, now):
        served, error = list(job.served), None
        for (user_id, _), message in zip(job.to, job.messages, strict=True):
            try:
                await asyncio.to_thread(deliver, settings, message)
            except (OSError, smtplib.SMTPException) as exc:
                error = f"{type(exc).__name__}: {exc}"[:300]
                log.warning("alert mail %s failed: %s", job.mail_id, type(exc).__name__)
                break
            served.append(user_id)
            sent += 1
        await _settle(sessions, settings, job, served, error)
    return sent


async def _settle(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    job: _Job,
    served: list[str],
    error: str | None,
) -> None:
    async with transaction(sessions) as session:
        row = await session.get(AlertMail, job.mail_id, with_for_update=True)
        if row is None:
            return
        fresh = served[len(job.served) :]
        row.recipients = served
        if error is None:
            row.state, row.sent_at, row.last_error = "sent", utcnow(), None
        else:
            row.attempts = job.attempts + 1
            row.last_error = error
            row.next_at = utcnow() + timedelta(seconds=delay(settings, row.attempts))
            if row.attempts >= settings.alert_mail_attempts:
                row.state = "failed"
        if fresh or row.state != "pending":
            await audit.record(
                session=session,
                actor=None,
                actor_name="alerts",
                action="security_alert.mail"
                if row.state != "failed"
                else "security_alert.mail_failed",
                surface="system",
                decision="allowed" if row.state != "failed" else "denied",
                resource_type="security_alert",
                resource_ids=[job.alert_id, *fresh],
                detail={"mail": str(row.id), "state": row.state, "recipients": fresh},
            )


async def loop(sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
    """The app's mail loop: sends what is due every ``alert_mail_poll_seconds``."""
    while True:
        try:
            await send_due(sessions, settings)
        except asyncio.CancelledError:
            raise
        except Exception:  # the next round tries again (database down, …)
            log.warning("alert mails: this round failed", exc_info=True)
        await asyncio.sleep(settings.alert_mail_poll_seconds)
