"""The e-mail rule, with a real SMTP server on loopback (aiosmtpd): the lowest level travels
as a PDF attachment watermarked for its reader; anything above never leaves the application
(no attachment, no title in the subject or body). Sent after the commit; a mail failure is
recorded on the recipient and never undoes the sending."""

from __future__ import annotations

import io
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from fastapi import FastAPI
from httpx import AsyncClient
from pypdf import PdfReader

from hypervision.config import Settings
from hypervision.synthesis import mail
from tests.conftest import make_settings
from tests.synthesis.helpers import MARKING, RESTRICTED, Room, email_of, pages_text

PUBLIC_URL = "https://hypervision.example"


@dataclass
class Mailbox:
    """The SMTP server's handler: every message it accepted."""

    port: int
    received: list[EmailMessage] = field(default_factory=list)
    controller: Controller | None = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content
        assert isinstance(content, bytes)
        parsed = message_from_bytes(content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.received.append(parsed)
        return "250 Message accepted for delivery"

    def start(self) -> None:
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[Mailbox]:
    box = Mailbox(port=free_port())
    box.start()
    yield box
    box.stop()


@pytest.fixture
def settings(database_url: str, tmp_path: Path, smtp: Mailbox) -> Settings:
    return make_settings(
        tmp_path,
        database_url,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_timeout_seconds=5,
        public_url=PUBLIC_URL,
    )


def attachments(message: EmailMessage) -> list[Any]:
    return list(message.iter_attachments())


def body_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


async def test_np_synthesis_is_mailed_with_its_pdf(
    app: FastAPI, client: AsyncClient, smtp: Mailbox
) -> None:
    room = Room(app, client)
    await room.entry("antoine", "Bouchon porte Maillot", category="traffic")
    sid = (await room.draft("claire", "Point de 19 h"))["id"]
    for username in ("prefet", "elu"):  # Louis Élu has no e-mail address
        await room(username)
    sent = await room.sent("claire", "marc", sid, users=["prefet", "elu"])
    assert sent["status"] == "sent"

    # With httpx's ASGITransport the background task ran before the response came back.
    (message,) = smtp.received
    assert message["To"] == email_of("prefet")
    assert message["From"] == "hypervision@localhost"
    assert "Point de 19 h" in message["Subject"]
    assert f"{PUBLIC_URL}/syntheses/{sid}" in body_of(message)
    (attachment,) = attachments(message)
    assert attachment.get_content_type() == "application/pdf"
    pdf = attachment.get_content()
    reader = PdfReader(io.BytesIO(pdf))
    assert reader.metadata is not None and reader.metadata.title == "Point de 19 h"
    for text in pages_text(pdf):
        assert MARKING not in text  # NP: no marking
        assert "Hélène Préfète —" in text  # the watermark names its reader
        assert "Louis Élu" not in text

    by_user = {r.user_id: r for r in await room.recipients(sid)}
    assert by_user[await room.user_id("prefet")].email_status == "sent"
    assert by_user[await room.user_id("prefet")].emailed_at is not None
    assert by_user[await room.user_id("elu")].email_status == "none"
    # Nothing pending any more: a second run sends nothing.
    assert (
        await mail.send_pending(app.state.system_sessions, app.state.settings, uuid.UUID(sid)) == 0
    )
    assert len(smtp.received) == 1


async def test_a_protected_synthesis_only_says_where_to_read_it(
    app: FastAPI, client: AsyncClient, smtp: Mailbox
) -> None:
    room = Room(app, client)
    titles = ["Renseignement sur un rassemblement", "Bouchon porte Maillot"]
    await room.entry("antoine", titles[0], label=RESTRICTED)
    await room.entry("antoine", titles[1], category="traffic")
    title = "Menace sur le relais de la flamme"
    sid = (await room.draft("claire", title))["id"]
    await room.sent("claire", "marc", sid, users=["prefet"])

    (message,) = smtp.received
    assert message["To"] == email_of("prefet")
    assert attachments(message) == []
    assert not message.is_multipart()
    text = f"{message['Subject']}\n{body_of(message)}"
    for secret in (title, *titles, "flamme", "Renseignement"):
        assert secret not in text
    assert f"{PUBLIC_URL}/syntheses/{sid}" in text
    assert [r.email_status for r in await room.recipients(sid)] == ["sent"]


async def test_mail_failure_is_recorded_and_the_sending_stands(
    app: FastAPI, client: AsyncClient, smtp: Mailbox
) -> None:
    room = Room(app, client)
    await room.entry("antoine", "Bouchon porte Maillot", category="traffic")
    sid = (await room.draft("claire", "Point de 7 h"))["id"]
    await room("prefet")
    await room.validated("claire", "marc", sid)
    smtp.stop()  # the mail server is down
    sent = await room.step("marc", sid, "send", json={"users": ["prefet"]})
    assert sent["status"] == "sent"
    (row,) = await room.recipients(sid)
    assert row.email_status == "failed"
    assert row.email_error and "Connection" in row.email_error
    assert row.emailed_at is None
    inbox = (await client.get("/api/v1/inbox", headers=await room("prefet"))).json()
    assert [i["synthesis"]["id"] for i in inbox] == [sid]  # delivered in the application

    # The server is back: the next run retries the failed one.
    smtp.start()
    assert (
        await mail.send_pending(app.state.system_sessions, app.state.settings, uuid.UUID(sid)) == 1
    )
    (row,) = await room.recipients(sid)
    assert row.email_status == "sent" and row.email_error is None
    assert len(smtp.received) == 1
