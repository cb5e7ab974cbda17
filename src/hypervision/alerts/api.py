"""Security alerts over the API (security officers only): rules CRUD, alerts list, read and
workflow. ``GET /api/v1/alert-rules`` is the public contract's name for the rules list."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Header, Query, Response
from pydantic import BaseModel

from hypervision.alerts import service
from hypervision.alerts.catalogue import KINDS_ORDER
from hypervision.alerts.models import Alert, AlertRule
from hypervision.alerts.schemas import (
    AlertPage,
    AlertRead,
    AlertRuleRead,
    AlertRuleWrite,
    AlertTransition,
    MailSubscription,
)
from hypervision.core.deps import DbSession, SettingsDep
from hypervision.core.openapi import CONFLICT, CREDENTIALS, NOT_FOUND, SIGNED_IN
from hypervision.identity.deps import CurrentPrincipal

router = APIRouter(
    prefix="/api/v1", tags=["security alerts"], dependencies=CREDENTIALS, responses=SIGNED_IN
)
KindFilter = Annotated[str | None, Query(pattern="^(" + "|".join(KINDS_ORDER) + ")$")]


class AlertRulePage(BaseModel):
    items: list[AlertRuleRead]
    total: int


def rule_read(rule: AlertRule) -> AlertRuleRead:
    return AlertRuleRead.model_validate(rule, from_attributes=True)


def alert_read(alert: Alert) -> AlertRead:
    return AlertRead.model_validate(alert, from_attributes=True)


async def _rules(
    session: DbSession,
    actor: CurrentPrincipal,
    kind: KindFilter = None,
    enabled: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
) -> AlertRulePage:
    rules = await service.list_rules(session=session, actor=actor)
    chosen = [
        r for r in rules if (kind is None or r.kind == kind) and (enabled in (None, r.enabled))
    ]
    return AlertRulePage(
        items=[rule_read(r) for r in chosen[offset : offset + limit]], total=len(chosen)
    )


router.add_api_route(
    "/security/alert-rules",
    _rules,
    methods=["GET"],
    response_model=AlertRulePage,
    summary="Alert rules",
    description="The alert rules, filtered; security officers only.",
)
router.add_api_route(
    "/alert-rules",
    _rules,
    methods=["GET"],
    response_model=AlertRulePage,
    summary="Alert rules (contract name)",
    operation_id="list_alert_rules_contract",
    description="The same list as ``/security/alert-rules``.",
)


@router.post("/security/alert-rules", response_model=AlertRuleRead, status_code=201)
async def create_rule(
    session: DbSession, actor: CurrentPrincipal, data: Annotated[AlertRuleWrite, Body()]
) -> AlertRuleRead:
    """A new rule, effective from the next records chained."""
    return rule_read(await service.create_rule(session=session, actor=actor, data=data))


@router.get("/security/alert-rules/{rule_id}", response_model=AlertRuleRead, responses=NOT_FOUND)
async def get_rule(
    session: DbSession, actor: CurrentPrincipal, rule_id: uuid.UUID
) -> AlertRuleRead:
    return rule_read(await service.get_rule(session=session, actor=actor, rule_id=rule_id))


@router.put(
    "/security/alert-rules/{rule_id}",
    response_model=AlertRuleRead,
    responses=NOT_FOUND | CONFLICT,
)
async def update_rule(
    session: DbSession,
    actor: CurrentPrincipal,
    rule_id: uuid.UUID,
    data: Annotated[AlertRuleWrite, Body()],
    if_match: Annotated[str | None, Header(max_length=40)] = None,
) -> AlertRuleRead:
    """Replace a rule; with ``If-Match: "<version>"``, only if it is still that version."""
    version = None
    if if_match:
        digits = if_match.strip('W/"')
        version = int(digits) if digits.isdigit() else -1
    rule = await service.update_rule(
        session=session, actor=actor, rule_id=rule_id, data=data, if_version=version
    )
    return rule_read(rule)


@router.delete("/security/alert-rules/{rule_id}", status_code=204, responses=NOT_FOUND)
async def delete_rule(session: DbSession, actor: CurrentPrincipal, rule_id: uuid.UUID) -> Response:
    await service.delete_rule(session=session, actor=actor, rule_id=rule_id)
    return Response(status_code=204)


@router.get("/security/alerts", response_model=AlertPage)
async def list_alerts(
    session: DbSession,
    actor: CurrentPrincipal,
    state: Annotated[str | None, Query(pattern="^(new|acknowledged|closed)$")] = None,
    severity: Annotated[str | None, Query(pattern="^(low|medium|high|critical)$")] = None,
    kind: KindFilter = None,
    subject: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> AlertPage:
    """Alerts, most recent first; security officers only."""
    rows, total = await service.list_alerts(
        session=session,
        actor=actor,
        state=state,
        severity=severity,
        kind=kind,
        subject=subject,
        limit=limit,
        offset=offset,
    )
    return AlertPage(items=[alert_read(a) for a in rows], total=total)


@router.get("/security/alerts/{alert_id}", response_model=AlertRead, responses=NOT_FOUND)
async def get_alert(session: DbSession, actor: CurrentPrincipal, alert_id: uuid.UUID) -> AlertRead:
    return alert_read(await service.get_alert(session=session, actor=actor, alert_id=alert_id))


@router.post(
    "/security/alerts/{alert_id}/transitions",
    response_model=AlertRead,
    responses=NOT_FOUND | CONFLICT,
)
async def transition(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    alert_id: uuid.UUID,
    data: AlertTransition,
) -> AlertRead:
    """Acknowledge or close an alert, with a note (409 from a state that does not allow it)."""
    alert = await service.transition(
        session=session,
        actor=actor,
        levels=settings.label_levels,
        alert_id=alert_id,
        to=data.to,
        note=data.note,
    )
    return alert_read(alert)


@router.get("/security/alert-mail", response_model=MailSubscription)
async def get_alert_mail(session: DbSession, actor: CurrentPrincipal) -> MailSubscription:
    """Your own subscription to alerts by e-mail (security officers)."""
    return await service.get_subscription(session=session, actor=actor)


@router.put("/security/alert-mail", response_model=MailSubscription, responses=CONFLICT)
async def put_alert_mail(
    session: DbSession, actor: CurrentPrincipal, data: MailSubscription
) -> MailSubscription:
    """Receive alerts by e-mail (or stop): the alerts of the rules marked ``email``, and
    with ``min_severity`` every alert at least that severe. The message carries the alert's
    kind, severity, counts, ids and a link to the console, never its subject or records."""
    return await service.set_subscription(session=session, actor=actor, data=data)
