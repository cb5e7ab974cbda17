"""A small cast for the hub's tests: the CNCS (announcers), a prefecture, a ministry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import FastAPI
from httpx import AsyncClient

from hypervision.policy.roles import Role
from tests.factories import make_group, make_org, make_user, sign_in

NOW = datetime.now(UTC)
PUBLIC = {"level": "NP", "need_to_know": [], "audience": []}


def at(hours: float) -> str:
    return (NOW + timedelta(hours=hours)).isoformat()


async def cast(app: FastAPI, client: AsyncClient) -> dict[str, dict[str, str]]:
    """Signed-in headers of: chef (watch officer, CNCS), helene (authority, CNCS), olga
    (officer, PREF), marc (watch officer, PREF), admin (administrator, PREF), sec (security
    officer, PREF), dr (officer, PREF, DR clearance, group VIP)."""
    await make_group(app, "VIP")
    await make_org(app, "MININT")
    await make_org(app, "MININT-CNCS", "MININT")
    await make_org(app, "PREF")
    people = {
        "chef": ("MININT-CNCS", Role.WATCH_OFFICER, "DR", ["VIP"]),
        "helene": ("MININT-CNCS", Role.AUTHORITY, "DR", []),
        "olga": ("PREF", Role.OFFICER, "NP", []),
        "marc": ("PREF", Role.WATCH_OFFICER, "NP", []),
        "admin": ("PREF", Role.ADMINISTRATOR, "NP", []),
        "sec": ("PREF", Role.SECURITY_OFFICER, "DR", []),
        "dr": ("PREF", Role.OFFICER, "DR", ["VIP"]),
    }
    headers = {}
    for name, (org, role, clearance, groups) in people.items():
        await make_user(app, name, org, roles=[role], clearance=clearance, groups=groups)
        headers[name] = await sign_in(client, name)
    return headers
