"""A health-and-transport space for the report tests: a PREF watch officer's space shared
with every organisation, over an NP and a DR entry and a product released to SANTE only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient

from hypervision.policy.roles import Role
from tests.factories import ENTRY, make_org, make_user, officer, sign_in
from tests.spaces.test_spaces_api import PUBLIC, SANTE_ONLY, module, product

NP_TITLE, DR_TITLE = "Bus en panne porte Maillot", "Menace sur la ligne 13"
HOSPITALS = ("Bichat", "Avicenne", "Lariboisière")
MARKING = "DIFFUSION RESTREINTE"
PLACEHOLDER = "Ce module n'est pas disponible pour vous."


@dataclass
class Crisis:
    space_id: str
    chef: dict[str, str]  # PREF watch officer, DR: made the space
    voisin: dict[str, str]  # PREF officer, NP
    medecin: dict[str, str]  # SANTE officer, DR


async def crisis(app: FastAPI, client: AsyncClient, label: dict[str, Any] = PUBLIC) -> Crisis:
    chef = await officer(app, client, "chef", "PREF", roles=(Role.WATCH_OFFICER,))
    voisin = await officer(app, client, "voisin", "PREF", clearance="NP")
    await make_org(app, "SANTE")
    await make_user(app, "steward", "SANTE", roles=[Role.DATA_STEWARD], clearance="DR")
    medecin = await officer(app, client, "medecin", "SANTE")
    lits = await product(client, await sign_in(client, "steward"), SANTE_ONLY)
    for title, level in ((NP_TITLE, "NP"), (DR_TITLE, "DR")):
        body = {**ENTRY, "title": title, "category": "transport",
                "label": {"level": level, "need_to_know": [], "audience": []}}  # fmt: skip
        assert (await client.post("/api/v1/entries", json=body, headers=chef)).status_code == 201
    modules = [
        module("fil", "feed", limit=20),
        module("compte", "kpi", trend_hours=None, warning=1, alert=5),
        module("courbe", "chart", group_by="severity", kind="bar"),
        module("carte", "map"),
        module("lits", "table", product_id=lits, columns=["hopital", "lits"]),
        module("note", "text", markdown="## Consignes\n\nRester joignable."),
    ]
    made = await client.post(
        "/api/v1/spaces",
        json={"title": "Cellule transport et santé", "modules": modules, "label": label},
        headers=chef,
    )
    assert made.status_code == 201, made.text
    return Crisis(made.json()["id"], chef, voisin, medecin)
