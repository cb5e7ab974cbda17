"""Alert rules and alerts: security officers' service functions, and raising alerts.

Every change — a rule written, an alert raised, merged, acknowledged or closed — is one
transaction with its audit record and its outbox event on the ``security_alert`` topic, which
only security officers' streams receive (``live.hub``, docs/adr/0040).
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.alerts import mail as alert_mail
from hypervision.alerts.catalogue import DEFAULT_RULES
from hypervision.alerts.models import Alert, AlertCursor, AlertMailSubscription, AlertRule
from hypervision.alerts.schemas import (
    RULE_ADAPTER,
    STATES,
    AlertRuleWrite,
    MailSubscription,
    params_of,
)
from hypervision.alerts.windows import Firing
from hypervision.audit import service as audit
from hypervision.audit.models import AuditHead
from hypervision.core.errors import Conflict, NotFound
from hypervision.db import utcnow
from hypervision.events.outbox import emit
from hypervision.identity.principal import Principal
from hypervision.live.gates import ALERT_TOPIC, SECURITY
from hypervision.policy.rules import Action, authorize

TOPIC = ALERT_TOPIC
MAX_CITED = 200  # triggering records kept on an alert (the count keeps going)
# Who may receive the topic's events: the hub's gate (``live.gates``), read from the label.
GATE = dict(SECURITY)
# Where an alert may go from each state.
NEXT: dict[str, tuple[str, ...]] = {"new": ("acknowledged", "closed"), "acknowledged": ("closed",)}


def alert_label(levels: tuple[str, ...]) -> dict[str, Any]:
    """The label of alert events: the lowest level (an alert carries no content) and the
    security officers' gate."""
    return {"level": levels[0], "need_to_know": [], "audience": [], "owner": "", "gate": GATE}


async def ensure_state(session: AsyncSession) -> AlertCursor:
    """The evaluator's cursor, locked for the pass; created at first start from the trail's
    head (history is not evaluated), with the default rules (once: a rule an officer deletes
    stays deleted)."""
    cursor = await session.get(AlertCursor, 1, with_for_update=True)
    if cursor is not None:
        return cursor
    head = await session.scalar(select(AuditHead.seq).where(AuditHead.id == 1))
    cursor = AlertCursor(id=1, seq=int(head or 0), defaults_installed=True)
    session.add(cursor)
    if not await session.scalar(select(func.count()).select_from(AlertRule)):
        for values in DEFAULT_RULES:
            rule = RULE_ADAPTER.validate_python(values)
            session.add(_new_rule(rule, "system"))
    await session.flush()
    return cursor


def _new_rule(data: AlertRuleWrite, by: str) -> AlertRule:
    now = utcnow()
    return AlertRule(
        id=uuid.uuid4(),
        name=data.name,
        kind=data.kind,
        severity=data.severity,
        enabled=data.enabled,
        params=params_of(data),
        version=1,
        created_at=now,
        updated_at=now,
        updated_by=by,
    )


# --- rules ------------------------------------------------------------------------------------


async def list_rules(*, session: AsyncSession, actor: Principal) -> list[AlertRule]:
    authorize(actor, Action.AUDIT)
    await ensure_state(session)
    return list(await session.scalars(select(AlertRule).order_by(AlertRule.created_at)))


async def get_rule(*, session: AsyncSession, actor: Principal, rule_id: uuid.UUID) -> AlertRule:
    authorize(actor, Action.AUDIT)
    rule = await session.get(AlertRule, rule_id)
    if rule is None:
        raise NotFound("Règle introuvable.", "Rule not found.")
    return rule


async def create_rule(
    *, session: AsyncSession, actor: Principal, data: AlertRuleWrite
) -> AlertRule:
    authorize(actor, Action.AUDIT)
    await ensure_state(session)
    rule = _new_rule(data, actor.username)
    session.add(rule)
    await session.flush()
    await _rule_changed(session, actor, rule, "create")
    return rule


async def update_rule(
    *,
    session: AsyncSession,
    actor: Principal,
    rule_id: uuid.UUID,
    data: AlertRuleWrite,
    if_version: int | None = None,
) -> AlertRule:
    rule = await get_rule(session=session, actor=actor, rule_id=rule_id)
    if if_version is not None and if_version != rule.version:
        raise Conflict(
            "La règle a changé depuis votre lecture : rechargez-la.",
            "The rule changed since you read it: reload it.",
            code="stale",
        )
    rule.name, rule.kind, rule.severity = data.name, data.kind, data.severity
    rule.enabled, rule.params = data.enabled, params_of(data)
    rule.version += 1
    rule.updated_at, rule.updated_by = utcnow(), actor.username
    await session.flush()
    await _rule_changed(session, actor, rule, "update")
    return rule


async def delete_rule(*, session: AsyncSession, actor: Principal, rule_id: uuid.UUID) -> None:
    rule = await get_rule(session=session, actor=actor, rule_id=rule_id)
    await _rule_changed(session, actor, rule, "delete")
    await session.delete(rule)
    await session.flush()


async def _rule_changed(
    session: AsyncSession, actor: Principal, rule: AlertRule, verb: str
) -> None:
    detail = {"kind": rule.kind, "enabled": rule.enabled, "version": rule.version, **rule.params}
    await audit.record(
        session=session,
        actor=actor,
        action=f"alert_rule.{verb}",
        resource_type="alert_rule",
        resource_ids=[rule.id],
        detail=detail,
    )


# --- alerts -----------------------------------------------------------------------------------


async def raise_or_merge(
    session: AsyncSession, *, firing: Firing, levels: tuple[str, ...], mail: bool = False
) -> Alert:
    """One alert per rule, subject and window: records that fire a rule join the subject's
    open alert while it is within the rule's window, else raise a new one."""
    rule = firing.rule
    assert firing.first_at is not None and firing.last_at is not None
    window = int(rule.params.get("window_minutes", 15))
    edge = firing.first_at - timedelta(minutes=window)
    alert = await session.scalar(
        select(Alert)
        .where(
            Alert.rule_id == rule.id,
            Alert.subject_key == firing.subject_key,
            Alert.state != "closed",
            Alert.last_at >= edge,
        )
        .order_by(Alert.last_at.desc())
        .limit(1)
        .with_for_update()
    )
    cited = [{"seq": seq, "id": str(rid)} for seq, rid in firing.records]
    if alert is None:
        alert = Alert(
            id=uuid.uuid4(),
            rule_id=rule.id,
            rule_name=rule.name,
            kind=rule.kind,
            severity=rule.severity,
            state="new",
            subject_kind=firing.subject_kind,
            subject_key=firing.subject_key,
            subject_name=firing.subject_name[:100],
            measure=firing.measure,
            record_count=len(cited),
            records=cited[:MAX_CITED],
            first_at=firing.first_at,
            last_at=firing.last_at,
            created_at=utcnow(),
            notes=[],
            version=1,
        )
        session.add(alert)
        verb = "raise"
    else:
        known = {r["seq"] for r in alert.records}
        fresh = [c for c in cited if c["seq"] not in known]
        if len(alert.records) < MAX_CITED:  # full: only the count goes on
            alert.records = [*alert.records, *fresh][:MAX_CITED]
        alert.record_count += len(fresh)
        alert.last_at = max(alert.last_at, firing.last_at)
        alert.measure = max(alert.measure, firing.measure)
        alert.version += 1
        verb = "merge"
    await session.flush()
    if verb == "raise":
        await audit.record(
            session=session,
            actor=None,
            actor_name="alerts",
            action="security_alert.raise",
            surface="system",
            resource_type=TOPIC,
            resource_ids=[alert.id],
            detail={"rule": str(rule.id), "kind": rule.kind, "records": [c["seq"] for c in cited]},
        )
        if mail:  # sent after the pass commits, by the mail loop (docs/adr/0046)
            await alert_mail.queue(session, alert, by_rule=bool(rule.params.get("email")))
    await _announce(session, alert, verb, levels)
    return alert


async def add_to_full(
    session: AsyncSession, *, alert_id: uuid.UUID, firing: Firing, levels: tuple[str, ...]
) -> Alert | None:
    """Records joining an alert whose cited list is full: one UPDATE of its count and last
    record (no read of the list), then its event; None when the alert was closed meanwhile
    or is past the window (the caller raises or merges as usual)."""
    assert firing.first_at is not None and firing.last_at is not None
    edge = firing.first_at - timedelta(minutes=int(firing.rule.params.get("window_minutes", 15)))
    bigger = case((Alert.measure < firing.measure, firing.measure), else_=Alert.measure)
    done = await session.execute(
        update(Alert)
        .where(Alert.id == alert_id, Alert.state != "closed", Alert.last_at >= edge)
        .values(
            record_count=Alert.record_count + len(firing.records),
            last_at=firing.last_at,
            measure=bigger,
            version=Alert.version + 1,
        )
        .execution_options(synchronize_session=False)
    )
    if not getattr(done, "rowcount", 0):
        return None
    alert = await session.get(Alert, alert_id, populate_existing=True)
    assert alert is not None
    await _announce(session, alert, "merge", levels)
    return alert


async def audit_merges(session: AsyncSession, merged: list[tuple[Alert, Firing]]) -> None:
    """One audit record for every alert that records joined in a pass (a busy subject's
    alert grows with each pass: one record per pass, not one per alert, like a live
    delivery batch)."""
    if not merged:
        return
    await audit.record(
        session=session,
        actor=None,
        actor_name="alerts",
        action="security_alert.merge",
        surface="system",
        resource_type=TOPIC,
        resource_ids=[alert.id for alert, _ in merged],
        detail={"records": {str(a.id): [seq for seq, _ in f.records] for a, f in merged}},
    )


async def _announce(
    session: AsyncSession, alert: Alert, verb: str, levels: tuple[str, ...]
) -> None:
    await emit(
        session,
        type=f"{TOPIC}.{verb}",
        resource_type=TOPIC,
        resource_id=alert.id,
        label=alert_label(levels),
        payload={
            "id": str(alert.id),
            "state": alert.state,
            "severity": alert.severity,
            "kind": alert.kind,
            "rule_name": alert.rule_name,
            "subject_name": alert.subject_name,
            "record_count": alert.record_count,
        },
    )


async def list_alerts(
    *,
    session: AsyncSession,
    actor: Principal,
    state: str | None = None,
    severity: str | None = None,
    kind: str | None = None,
    subject: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Alert], int]:
    authorize(actor, Action.AUDIT)
    query = select(Alert)
    if state:
        query = query.where(Alert.state == state)
    if severity:
        query = query.where(Alert.severity == severity)
    if kind:
        query = query.where(Alert.kind == kind)
    if subject:
        query = query.where((Alert.subject_name == subject) | (Alert.subject_key == subject))
    total = int(await session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    rows = list(
        await session.scalars(query.order_by(Alert.last_at.desc()).limit(limit).offset(offset))
    )
    await audit.record(
        session=session,
        actor=actor,
        action="security_alert.list",
        resource_type=TOPIC,
        resource_ids=[a.id for a in rows],
    )
    return rows, total


async def get_alert(*, session: AsyncSession, actor: Principal, alert_id: uuid.UUID) -> Alert:
    authorize(actor, Action.AUDIT)
    alert = await session.get(Alert, alert_id)
    if alert is None:
        raise NotFound("Alerte introuvable.", "Alert not found.")
    await audit.record(
        session=session,
        actor=actor,
        action="security_alert.read",
        resource_type=TOPIC,
        resource_ids=[alert.id],
    )
    return alert


async def transition(
    *,
    session: AsyncSession,
    actor: Principal,
    levels: tuple[str, ...],
    alert_id: uuid.UUID,
    to: str,
    note: str,
) -> Alert:
    """new → acknowledged → closed (or new → closed), with the officer's note; audited, and
    announced to the security officers' streams, in the caller's transaction."""
    authorize(actor, Action.AUDIT)
    alert = await session.get(Alert, alert_id, with_for_update=True)
    if alert is None:
        raise NotFound("Alerte introuvable.", "Alert not found.")
    if to not in NEXT.get(alert.state, ()) or to not in STATES:
        raise Conflict(
            f"Une alerte à l'état « {alert.state} » ne peut pas passer à « {to} ».",
            f"An alert in state '{alert.state}' cannot move to '{to}'.",
            code="bad_transition",
        )
    before = alert.state
    alert.state = to
    alert.notes = [
        *alert.notes,
        {"at": utcnow().isoformat(), "by": actor.username, "to": to, "note": note},
    ]
    alert.version += 1
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action=f"security_alert.{'acknowledge' if to == 'acknowledged' else 'close'}",
        resource_type=TOPIC,
        resource_ids=[alert.id],
        detail={"from": before, "to": to, "note_length": len(note)},
    )
    await _announce(session, alert, to, levels)
    return alert


async def open_count(session: AsyncSession) -> int:
    """How many alerts wait for a security officer (the badge on their pages)."""
    return int(
        await session.scalar(select(func.count()).select_from(Alert).where(Alert.state == "new"))
        or 0
    )


# --- e-mail subscriptions (docs/adr/0046) -----------------------------------------------------


async def get_subscription(*, session: AsyncSession, actor: Principal) -> MailSubscription:
    """The security officer's own e-mail subscription."""
    authorize(actor, Action.AUDIT)
    row = await session.get(AlertMailSubscription, actor.user_id) if actor.user_id else None
    if row is None:
        return MailSubscription(enabled=False)
    return MailSubscription.model_validate({"enabled": True, "min_severity": row.min_severity})


async def set_subscription(
    *, session: AsyncSession, actor: Principal, data: MailSubscription
) -> MailSubscription:
    """Subscribe (or not) to alerts by e-mail, for oneself: the rules marked ``email``, and
    every alert of at least ``min_severity``. Audited."""
    authorize(actor, Action.AUDIT)
    if actor.user_id is None:
        raise Conflict(
            "Seule une personne peut recevoir les alertes par courriel.",
            "Only a person can receive alerts by e-mail.",
            code="not_a_person",
        )
    row = await session.get(AlertMailSubscription, actor.user_id, with_for_update=True)
    if not data.enabled:
        if row is not None:
            await session.delete(row)
    elif row is None:
        session.add(
            AlertMailSubscription(
                user_id=actor.user_id, min_severity=data.min_severity, updated_at=utcnow()
            )
        )
    else:
        row.min_severity, row.updated_at = data.min_severity, utcnow()
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="alert_mail.subscribe" if data.enabled else "alert_mail.unsubscribe",
        resource_type="user",
        resource_ids=[actor.user_id],
        detail={"min_severity": data.min_severity} if data.enabled else {},
    )
    return MailSubscription(
        enabled=data.enabled, min_severity=data.min_severity if data.enabled else None
    )
