"""The label of a synthesis: at least the highest label of what it contains, computed, never
lowered silently. ``labels.combined`` and ``labels.at_least`` alone, then through the API
(draft, edits of the chosen entries, an explicit raise)."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from hypervision.config import Settings
from hypervision.policy.labels import Label
from hypervision.synthesis.labels import at_least, combined
from tests.conftest import TEST_SECRET
from tests.synthesis.helpers import PUBLIC, RESTRICTED, Room

OWNER = "org-cncs"
PLATFORM = Settings(secret_key=TEST_SECRET)  # levels NP < DR


def label(level: str = "NP", groups: tuple[str, ...] = (), audience: tuple[str, ...] = ()) -> Label:
    return Label(level, frozenset(groups), frozenset(audience), owner="org-author")


# --- combined ----------------------------------------------------------------------------------


def test_nothing_inside_is_the_lowest_level_for_everyone() -> None:
    assert combined(PLATFORM, [], OWNER) == Label("NP", frozenset(), frozenset(), OWNER)


def test_the_highest_level_wins() -> None:
    assert combined(PLATFORM, [label("NP"), label("DR"), label("NP")], OWNER).level == "DR"
    assert combined(PLATFORM, [label("NP"), label("NP")], OWNER).level == "NP"


def test_need_to_know_groups_are_united() -> None:
    result = combined(PLATFORM, [label("DR", ("VIP",)), label("NP", ("MEDICAL", "VIP"))], OWNER)
    assert result.need_to_know == {"VIP", "MEDICAL"}


def test_audiences_are_intersected_and_empty_ones_ignored() -> None:
    parts = [label(audience=("PREF", "CNCS")), label(), label(audience=("CNCS", "PREF", "MAIRIE"))]
    assert combined(PLATFORM, parts, OWNER).audience == {"PREF", "CNCS"}
    assert combined(PLATFORM, [label(), label()], OWNER).audience == frozenset()  # everyone


def test_disjoint_audiences_leave_the_owner_only() -> None:
    parts = [label(audience=("PREF",)), label(audience=("MAIRIE",))]
    result = combined(PLATFORM, parts, OWNER)
    assert result.audience == {OWNER} and result.owner == OWNER


def test_the_result_belongs_to_the_synthesis_owner() -> None:
    assert combined(PLATFORM, [label("DR")], OWNER).owner == OWNER


# --- at_least ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("candidate", "floor", "expected"),
    [
        (label("DR"), label("NP"), True),
        (label("NP"), label("DR"), False),
        (label("DR"), label("DR"), True),
        (label("DR", ("VIP", "MEDICAL")), label("DR", ("VIP",)), True),
        (label("DR"), label("NP", ("VIP",)), False),  # a group missing: less protective
        (label(audience=("CNCS",)), label(audience=("CNCS", "PREF")), True),  # narrower
        (label(audience=("CNCS", "PREF")), label(audience=("CNCS",)), False),  # wider
        (label("DR"), label(audience=("CNCS",)), False),  # everyone is wider than CNCS
        (label(audience=("CNCS",)), label(), True),  # the floor released to everyone
    ],
)
def test_at_least(candidate: Label, floor: Label, expected: bool) -> None:
    assert at_least(PLATFORM, candidate, floor) is expected


# --- through the API ---------------------------------------------------------------------------


async def test_a_restricted_entry_makes_a_restricted_synthesis(
    app: FastAPI, client: AsyncClient
) -> None:
    room = Room(app, client)
    await room.entry("antoine", "Bouchon porte Maillot", category="traffic")
    assert (await room.draft("claire", "Sans DR"))["label"]["level"] == "NP"
    await room.entry("antoine", "Renseignement sur un rassemblement", label=RESTRICTED)
    draft = await room.draft("claire", "Avec DR")
    assert draft["label"] == {"level": "DR", "need_to_know": [], "audience": []}
    assert draft["marking"] == "DIFFUSION RESTREINTE"


async def test_groups_united_and_audiences_intersected(app: FastAPI, client: AsyncClient) -> None:
    room = Room(app, client)
    for username in ("claire", "prefet", "maire"):  # their organisations make the audiences
        await room(username)
    vip = {"level": "DR", "need_to_know": ["VIP"], "audience": []}
    await room.entry("antoine", "Déplacement d'une personnalité", label=vip)
    await room.entry("antoine", "Point presse", label={"level": "NP", "audience": ["CNCS", "PREF"]})
    await room.entry(
        "antoine",
        "Filtrage renforcé",
        label={"level": "NP", "audience": ["CNCS", "PREF", "MAIRIE"]},
    )
    await room.entry("antoine", "Bouchon porte Maillot", label=PUBLIC)
    draft = await room.draft("claire", "Point de 19 h")  # Claire is in VIP: she sees all four
    assert len(draft["entry_ids"]) == 4
    assert draft["label"] == {"level": "DR", "need_to_know": ["VIP"], "audience": ["CNCS", "PREF"]}
    # Marc is not in VIP: his draft of the same scope has what he may read, labelled for it.
    marc = await room.draft("marc", "Point de 19 h")
    assert len(marc["entry_ids"]) == 3
    assert marc["label"] == {"level": "NP", "need_to_know": [], "audience": ["CNCS", "PREF"]}


async def test_removing_entries_never_lowers_the_label(app: FastAPI, client: AsyncClient) -> None:
    """What ``_apply_content`` does: the floor is recomputed from the chosen entries; the
    previous label is kept whenever it is at least that floor. So removing the DR entry leaves
    the synthesis DR (it is never lowered by an edit: to get an NP synthesis, draft a new one
    from a narrower scope), while the figures follow the entries."""
    room = Room(app, client)
    public = await room.entry("antoine", "Bouchon porte Maillot", category="traffic")
    await room.entry("antoine", "Renseignement sur un rassemblement", label=RESTRICTED)
    draft = await room.draft("claire", "Point de 19 h")
    assert draft["label"]["level"] == "DR" and draft["figures"]["total"] == 2

    edited = await room.patch("claire", draft["id"], {"entry_ids": [public["id"]]})
    assert edited["entry_ids"] == [public["id"]] and edited["figures"]["total"] == 1
    assert edited["label"]["level"] == "DR"
    assert edited["marking"] == "DIFFUSION RESTREINTE"
    emptied = await room.patch("claire", draft["id"], {"entry_ids": []})
    assert emptied["figures"]["total"] == 0 and emptied["label"]["level"] == "DR"


async def test_the_label_is_raised_explicitly_never_lowered(
    app: FastAPI, client: AsyncClient
) -> None:
    room = Room(app, client)
    await room.entry("antoine", "Bouchon porte Maillot", category="traffic")
    sid = (await room.draft("claire", "Point de 19 h"))["id"]
    raised = await room.patch("claire", sid, {"label": {"level": "DR", "need_to_know": ["VIP"]}})
    assert raised["label"] == {"level": "DR", "need_to_know": ["VIP"], "audience": []}
    # Asking for a lower label is no way down.
    again = await room.patch("claire", sid, {"label": {"level": "NP"}})
    assert again["label"] == raised["label"]
    # Nobody raises to what they could not read themselves (Marc is not in VIP).
    refused = await room.patch(
        "marc", sid, {"label": {"level": "DR", "need_to_know": ["VIP"]}}, status=404
    )
    assert refused["error"]["code"] == "not_found"  # he cannot even see it now
    await room("emilie")  # an NP officer: triage is for watch officers
    response = await client.patch(
        f"/api/v1/syntheses/{sid}", json={"title": "x"}, headers=await room("emilie")
    )
    assert response.status_code == 403


async def test_a_raised_label_survives_a_new_group_in_the_content(
    app: FastAPI, client: AsyncClient
) -> None:
    room = Room(app, client)
    await room.entry("antoine", "Bouchon porte Maillot", category="traffic")
    vip = await room.entry(
        "antoine", "Arrivée d'une délégation", label={"level": "NP", "need_to_know": ["VIP"]}
    )
    sid = (await room.draft("claire", "Point de 19 h", categories=["traffic"]))["id"]
    raised = await room.patch("claire", sid, {"label": {"level": "DR"}})
    assert raised["label"]["level"] == "DR"
    grown = await room.patch("claire", sid, {"entry_ids": [*raised["entry_ids"], vip["id"]]})
    assert grown["label"]["need_to_know"] == ["VIP"]
    assert grown["label"]["level"] == "DR"  # fails today: "NP"
