"""Access review API (docs/adr/0038): an organisation's report, and its confirmation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from hypervision.core.deps import DbSession, SettingsDep
from hypervision.core.openapi import CONFLICT, CREDENTIALS, NOT_FOUND, SIGNED_IN
from hypervision.identity import review
from hypervision.identity.deps import CurrentPrincipal
from hypervision.identity.schemas import AccessReviewConfirm, AccessReviewRead, AccessReviewReport

router = APIRouter(prefix="/api/v1", dependencies=CREDENTIALS, responses=SIGNED_IN)
OrgCode = Annotated[str, Path(max_length=32)]


@router.get(
    "/organisations/{code}/access-review",
    response_model=AccessReviewReport,
    tags=["admin"],
    responses=NOT_FOUND,
)
async def get_access_review(
    session: DbSession, settings: SettingsDep, actor: CurrentPrincipal, code: OrgCode
) -> AccessReviewReport:
    """Who holds which roles, clearance and groups in the organisation, their last activity
    and its dormant accounts, with the checksum a confirmation names (administrators and
    security officers)."""
    return await review.report(session=session, settings=settings, actor=actor, code=code)


@router.post(
    "/organisations/{code}/access-review",
    response_model=AccessReviewRead,
    status_code=201,
    tags=["admin"],
    responses=NOT_FOUND | CONFLICT,
)
async def confirm_access_review(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    code: OrgCode,
    data: AccessReviewConfirm,
) -> AccessReviewRead:
    """An administrator confirms the review they read (its ``checksum``); 409 when the
    accesses changed since."""
    row = await review.confirm(
        session=session,
        settings=settings,
        actor=actor,
        code=code,
        seen=data.checksum,
        note=data.note,
    )
    return AccessReviewRead.model_validate(row)
