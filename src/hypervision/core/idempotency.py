"""Idempotent creation (IETF draft "The Idempotency-Key HTTP Header Field").

Same key + same body → the first answer again, one row. Same key + another body → 422.
Keys are per user and kept with the answer they produced. One way to use it, for the API
(``Idempotency-Key`` header) and the web forms (a hidden field) alike: ``attempt`` first, then
either answer ``stored`` again or ``remember`` the new answer in the same transaction.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, UniqueConstraint, Uuid, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from hypervision.core.errors import Invalid
from hypervision.db import Base, UTCDateTime, new_id, utcnow

MAX_KEY_LENGTH = 200


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("user_id", "key"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH))
    endpoint: Mapped[str] = mapped_column(String(100))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def request_hash(endpoint: str, body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{endpoint}\n{canonical}".encode()).hexdigest()


def check_key(key: str) -> str:
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise Invalid(
            f"En-tête Idempotency-Key invalide (1 à {MAX_KEY_LENGTH} caractères imprimables).",
            f"Invalid Idempotency-Key header (1 to {MAX_KEY_LENGTH} printable characters).",
            extra={"fields": [{"field": "Idempotency-Key", "message": "invalid"}]},
        )
    return key


async def _replay(
    *, session: AsyncSession, user_id: uuid.UUID, key: str, endpoint: str, digest: str
) -> IdempotencyKey | None:
    """The stored answer for this key, or None when the key is new. 422 if the key was used
    for another request."""
    row = await session.scalar(
        select(IdempotencyKey).where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
    )
    if row is None:
        return None
    if row.endpoint != endpoint or row.request_hash != digest:
        raise Invalid(
            "Cette clé d'idempotence a déjà servi pour une autre requête.",
            "This Idempotency-Key was already used for a different request.",
            code="idempotency_key_reused",
        )
    return row


def _remember(
    *,
    session: AsyncSession,
    user_id: uuid.UUID,
    key: str,
    endpoint: str,
    digest: str,
    status_code: int,
    response: dict[str, Any],
) -> None:
    session.add(
        IdempotencyKey(
            user_id=user_id,
            key=key,
            endpoint=endpoint,
            request_hash=digest,
            status_code=status_code,
            response=response,
        )
    )


@dataclass
class Attempt:
    """One request carrying an idempotency key: the answer stored for the key when it was
    used before (``stored``), else ``remember`` keeps this request's answer."""

    session: AsyncSession
    user_id: uuid.UUID
    key: str
    endpoint: str
    digest: str
    stored: IdempotencyKey | None

    def remember(self, status_code: int, response: dict[str, Any]) -> None:
        _remember(
            session=self.session,
            user_id=self.user_id,
            key=self.key,
            endpoint=self.endpoint,
            digest=self.digest,
            status_code=status_code,
            response=response,
        )


async def attempt(
    *, session: AsyncSession, user_id: uuid.UUID, key: str, endpoint: str, body: Any
) -> Attempt:
    """Look the key up for this user: 422 if it served another request (other endpoint or
    other ``body``), its stored answer if it served this one."""
    digest = request_hash(endpoint, body)
    stored = await _replay(
        session=session, user_id=user_id, key=key, endpoint=endpoint, digest=digest
    )
    return Attempt(session, user_id, key, endpoint, digest, stored)
