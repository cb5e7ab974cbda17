"""E-mail to the recipients of a sent synthesis, after the transaction committed. The lowest
level travels as a PDF attachment watermarked for its reader; anything above it never leaves
the application: the message only says that a synthesis is waiting in the inbox."""

from __future__ import annotations

import asyncio
import logging
import smtplib
import uuid
from email.message import EmailMessage

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hypervision.config import Settings
from hypervision.db import transaction, utcnow
from hypervision.identity.models import User
from hypervision.synthesis.models import Synthesis, SynthesisRecipient

log = logging.getLogger("hypervision.mail")


def message_for(
    settings: Settings, synthesis: Synthesis, user: User, pdf: bytes | None
) -> EmailMessage:
    link = f"{settings.public_url.rstrip('/')}/syntheses/{synthesis.id}"
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = user.email or ""
    if pdf is None:  # protected: no content, no title, only where to read it
        message["Subject"] = "[Hypervision] Une synthèse vous attend dans l'application"
        message.set_content(
            f"Bonjour {user.full_name},\n\n"
            "Une synthèse protégée vous a été adressée. Pour des raisons de sécurité, elle "
            "n'est pas jointe à ce message : consultez-la dans l'application.\n\n"
            f"{link}\n\n— Hypervision\n"
        )
        return message
    message["Subject"] = f"[Hypervision] Point de situation : {synthesis.title}"
    message.set_content(
        f"Bonjour {user.full_name},\n\nVeuillez trouver ci-joint le point de situation "
        f"« {synthesis.title} ». Merci d'en accuser réception dans l'application :\n\n{link}\n\n"
        "— Hypervision\n"
    )
    message.add_attachment(
        pdf, maintype="application", subtype="pdf", filename="point-de-situation.pdf"
    )
    return message


def deliver(settings: Settings, message: EmailMessage) -> None:
    """Send one message through the configured SMTP server (blocking: run it in a thread).
    Also used by reports."""
    kind = smtplib.SMTP_SSL if settings.smtp_tls else smtplib.SMTP
    with kind(
        settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_seconds
    ) as smtp:
        if settings.smtp_starttls and not settings.smtp_tls:
            smtp.starttls()
        if settings.smtp_username:
            smtp.login(settings.smtp_username, settings.smtp_password)
        smtp.send_message(message)


async def send_pending(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, synthesis_id: uuid.UUID
) -> int:
    """Mail every recipient still pending for this synthesis; returns how many were sent.
    Failures are recorded on the recipient row (retried by the next call)."""
    from hypervision.synthesis.rendering import pdf_for_reader  # the PDF needs the web assets

    if not settings.smtp_host:
        return 0
    async with transaction(sessions) as session:
        synthesis = await session.get(Synthesis, synthesis_id)
        result = await session.execute(
            select(SynthesisRecipient, User)
            .join(User, User.id == SynthesisRecipient.user_id)
            .where(
                SynthesisRecipient.synthesis_id == synthesis_id,
                SynthesisRecipient.email_status.in_(("pending", "failed")),
            )
        )
        rows = [(recipient, user) for recipient, user in result.all()]
    if synthesis is None:
        return 0
    attach = synthesis.label_level == settings.label_levels[0]
    sent = 0
    for recipient, user in rows:
        status, error = "sent", None
        try:
            pdf = None
            if attach:
                async with transaction(sessions) as session:
                    pdf = await pdf_for_reader(session, settings, synthesis_id, user)
            await asyncio.to_thread(deliver, settings, message_for(settings, synthesis, user, pdf))
            sent += 1
        except (OSError, smtplib.SMTPException) as exc:
            status, error = "failed", f"{type(exc).__name__}: {exc}"[:300]
            log.warning("mail to recipient %s failed: %s", recipient.id, type(exc).__name__)
        async with transaction(sessions) as session:
            row = await session.get(SynthesisRecipient, recipient.id)
            if row is not None:
                row.email_status, row.email_error = status, error
                row.emailed_at = utcnow() if status == "sent" else row.emailed_at
    return sent
