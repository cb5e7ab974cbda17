"""Driving the evaluator as the server's sequencer does after each pass (tests run the app
without its lifespan)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient

from hypervision.alerts.evaluator import Evaluator
from hypervision.policy.roles import Role
from tests.factories import officer, sequenced, tx


async def evaluate(app: FastAPI, evaluator: Evaluator | None = None) -> int:
    """Chain the queue, then evaluate what was chained (the sequencer's after-pass hook);
    ``evaluator``: another replica's instead of this app's."""
    await sequenced(app)
    async with tx(app) as session:
        return int(await (evaluator or app.state.alerts).run(session))


async def security_officer(
    app: FastAPI, client: AsyncClient, name: str = "sophie.secu"
) -> dict[str, str]:
    headers = await officer(
        app, client, name, "SECU", clearance="DR", roles=(Role.SECURITY_OFFICER,)
    )
    await evaluate(app)  # first start: the cursor and the default rules
    return headers


async def set_rule(
    client: AsyncClient, headers: dict[str, str], kind: str, **values: Any
) -> dict[str, Any]:
    """Replace the default rule of ``kind`` with ``values`` (as an officer would in the form)."""
    rules = (
        await client.get("/api/v1/security/alert-rules", params={"kind": kind}, headers=headers)
    ).json()
    rule = rules["items"][0]
    body = {
        "kind": kind,
        "name": rule["name"],
        "severity": rule["severity"],
        **rule["params"],
        **values,
    }
    answer = await client.put(
        f"/api/v1/security/alert-rules/{rule['id']}", json=body, headers=headers
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def alerts(
    client: AsyncClient, headers: dict[str, str], **params: str
) -> list[dict[str, Any]]:
    answer = await client.get("/api/v1/security/alerts", params=params, headers=headers)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])
