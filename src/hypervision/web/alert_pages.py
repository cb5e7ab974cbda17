"""Security alerts' pages (``/securite/alertes``, security officers only, docs/adr/0040): the
list, one alert with the audit records that raised it (ids, levels, actions: never content),
its acknowledge and close forms, and the rules, written in a form of lists and numbers."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import select

from hypervision.alerts import service
from hypervision.alerts.catalogue import ACTIONS, KINDS_ORDER
from hypervision.alerts.schemas import MODELS, RULE_ADAPTER, SEVERITIES
from hypervision.audit.models import AuditRecord
from hypervision.core.deps import DbSession, SettingsDep
from hypervision.core.errors import Invalid
from hypervision.core.i18n import N_
from hypervision.policy.rules import Action, authorize
from hypervision.web.render import render, shows
from hypervision.web.session import Officer

router = APIRouter(include_in_schema=False)
RULE_FIELDS = ("threshold", "window_minutes", "by", "measure", "start", "end", "days")
NUMBERS = frozenset({"threshold", "window_minutes", "days"})


STATE_NAMES = {
    "new": N_("New alert"),
    "acknowledged": N_("Acknowledged alert"),
    "closed": N_("Closed alert"),
}
SEVERITY_NAMES = {
    "low": N_("Low"),
    "medium": N_("Medium"),
    "high": N_("High"),
    "critical": N_("Critical"),
}
KIND_NAMES = {
    "bulk_reads": N_("Bulk reads"),
    "id_probing": N_("Id probing"),
    "exports": N_("Large exports"),
    "mfa_failures": N_("Repeated second-factor failures"),
    "sign_in_off_hours": N_("Sign-in off hours"),
    "sign_in_new_address": N_("Sign-in from a new address"),
    "sign_in_new_country": N_("Sign-in from a new country"),
    "network_refused": N_("Connection refused upstream"),
    "soc_export_failing": N_("Export to the SOC failing"),
    "rights_widened": N_("Rights widened"),
    "label_lowered": N_("Label lowered"),
    "audit_verify_failed": N_("Audit verification failed"),
}
SUBJECT_NAMES = {
    "person": N_("person"),
    "address": N_("address"),
    "record": N_("record"),
    "system": N_("system"),
}


def _choices() -> dict[str, Any]:
    return {
        "kinds": KINDS_ORDER,
        "severities": SEVERITIES,
        "actions": ACTIONS,
        "state_names": STATE_NAMES,
        "severity_names": SEVERITY_NAMES,
        "kind_names": KIND_NAMES,
        "subject_names": SUBJECT_NAMES,
    }


@router.get("/securite/alertes", response_class=HTMLResponse)
async def alert_list(
    request: Request, session: DbSession, actor: Officer, etat: str = "new"
) -> Response:
    state = etat if etat in ("new", "acknowledged", "closed") else None
    rows, total = await service.list_alerts(session=session, actor=actor, state=state, limit=200)
    return render(
        request,
        "security_alerts.html",
        {"alerts": rows, "total": total, "state": state or ""} | _choices(),
    )


@router.get("/securite/alertes/badge", response_class=HTMLResponse)
async def alert_badge(request: Request, actor: Officer) -> Response:
    """The alerts link's text and count of new alerts (polled by security officers' pages)."""
    authorize(actor, Action.AUDIT)
    return render(request, "_alerts_badge.html")


@router.get("/securite/alertes/regles", response_class=HTMLResponse)
async def rule_list(request: Request, session: DbSession, actor: Officer) -> Response:
    rules = await service.list_rules(session=session, actor=actor)
    return render(request, "security_rules.html", {"rules": rules, "rule": None, **_choices()})


@router.post("/securite/alertes/regles", response_class=HTMLResponse)
async def rule_create(request: Request, session: DbSession, actor: Officer) -> Response:
    form = await request.form(max_files=0, max_fields=20)
    data = _rule_of(dict(form))
    if isinstance(data, Invalid):
        rules = await service.list_rules(session=session, actor=actor)
        context = {"rules": rules, "rule": None, "error": data.fr, "form": dict(form)}
        return render(request, "security_rules.html", context | _choices(), status_code=422)
    await service.create_rule(session=session, actor=actor, data=data)
    return RedirectResponse("/securite/alertes/regles", status_code=303)


@router.get("/securite/alertes/regles/{rule_id}", response_class=HTMLResponse)
async def rule_page(
    request: Request, session: DbSession, actor: Officer, rule_id: uuid.UUID
) -> Response:
    rule = await service.get_rule(session=session, actor=actor, rule_id=rule_id)
    form = {"name": rule.name, "kind": rule.kind, "severity": rule.severity, **rule.params}
    form["enabled"] = "1" if rule.enabled else ""
    form["email"] = "1" if rule.params.get("email") else ""
    return render(request, "security_rule.html", {"rule": rule, "form": form, **_choices()})


@router.post("/securite/alertes/regles/{rule_id}", response_class=HTMLResponse)
async def rule_update(
    request: Request, session: DbSession, actor: Officer, rule_id: uuid.UUID
) -> Response:
    rule = await service.get_rule(session=session, actor=actor, rule_id=rule_id)
    form = dict(await request.form(max_files=0, max_fields=20))
    if form.get("action") == "delete":
        await service.delete_rule(session=session, actor=actor, rule_id=rule_id)
        return RedirectResponse("/securite/alertes/regles", status_code=303)
    form["kind"] = rule.kind  # a rule keeps its kind
    data = _rule_of(form)
    if isinstance(data, Invalid):
        context = {"rule": rule, "form": form, "error": data.fr, **_choices()}
        return render(request, "security_rule.html", context, status_code=422)
    await service.update_rule(session=session, actor=actor, rule_id=rule_id, data=data)
    return RedirectResponse("/securite/alertes/regles", status_code=303)


def _rule_of(form: dict[str, Any]) -> Any:
    """The rule a form describes (only the fields its kind reads), or the first problem."""
    kind = str(form.get("kind", ""))
    values: dict[str, Any] = {
        "kind": kind,
        "name": str(form.get("name", "")).strip(),
        "severity": str(form.get("severity", "medium")),
        "enabled": bool(form.get("enabled")),
        "email": bool(form.get("email")),
    }
    for name in RULE_FIELDS:
        raw = str(form.get(name, "")).strip()
        if raw:
            values[name] = int(raw) if name in NUMBERS and raw.isdigit() else raw
    model = MODELS.get(kind)
    fields = set(model.model_fields) if model else set()
    values = {k: v for k, v in values.items() if k in fields or k == "kind"}
    try:
        return RULE_ADAPTER.validate_python(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"][1:] or first["loc"])
        return Invalid(f"Champ « {where} » : {first['msg']}", f"Field '{where}': {first['msg']}")


@router.get("/securite/alertes/{alert_id}", response_class=HTMLResponse)
async def alert_page(
    request: Request, session: DbSession, actor: Officer, alert_id: uuid.UUID
) -> Response:
    alert = await service.get_alert(session=session, actor=actor, alert_id=alert_id)
    seqs = [int(r["seq"]) for r in alert.records]
    cited = (
        list(
            await session.scalars(
                select(AuditRecord).where(AuditRecord.seq.in_(seqs)).order_by(AuditRecord.seq)
            )
        )
        if seqs
        else []
    )
    shows(request, [])
    context = {"alert": alert, "cited": cited} | _choices()
    return render(request, "security_alert.html", context)


@router.post("/securite/alertes/{alert_id}/etat")
async def alert_transition(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    actor: Officer,
    alert_id: uuid.UUID,
) -> Response:
    form = await request.form(max_files=0, max_fields=5)
    to, note = str(form.get("to", "")), str(form.get("note", ""))[:2000]
    if to not in ("acknowledged", "closed"):
        raise Invalid(
            "Choisissez « prise en compte » ou « close ».", "Choose acknowledged or closed."
        )
    await service.transition(
        session=session,
        actor=actor,
        levels=settings.label_levels,
        alert_id=alert_id,
        to=to,
        note=note,
    )
    return RedirectResponse(f"/securite/alertes/{alert_id}", status_code=303)
