"""Telling live streams that a user's rights changed."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

SYSTEM_LABEL = {"system": True}  # never delivered to a subscriber; read by the hub itself


async def announce_revocation(
    *, session: AsyncSession, user_id: uuid.UUID, reason: str, session_id: uuid.UUID | None = None
) -> None:
    """Tell every live stream (on every replica) that a user's rights changed: their open
    streams close at once, or only the one of ``session_id``."""
    from hypervision.events.outbox import emit

    await emit(
        session,
        type="identity.revoke",
        resource_type="user",
        resource_id=user_id,
        label=SYSTEM_LABEL,
        payload={
            "user_id": str(user_id),
            "reason": reason,
            "session_id": str(session_id) if session_id else None,
        },
    )
