"""A sent synthesis never outlives its sources' labels (ADR 0012, SECURITY.md 31): once an entry
in it is raised, every reader no longer cleared for that entry gets the synthesis without it —
no id, no title, no point on the map, figures over what they still see, a notice that parts
were hidden — in JSON, on the pages and in the PDF; readers still cleared get it whole, and the
stored synthesis (what was sent) does not change."""

from __future__ import annotations

import re
import uuid
from typing import Any

from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from hypervision.synthesis.models import Synthesis
from tests.factories import tx
from tests.synthesis.derived import API_SURFACES, WEB_SURFACES, synthesis_traces
from tests.synthesis.helpers import Room, pages_text
from tests.web.pages import browse_as

MEDICAL = {"level": "DR", "need_to_know": ["MEDICAL"], "audience": []}
HIDDEN_WORD = "Xyloscardie"  # only in the title of the entry that gets raised
NOTICE = "Contenu partiellement masqué"
POINT = re.compile(r"<circle ")
MERGED = re.compile(r">×(\d+)<")  # one marker for n entries at the same place


def points(page: str) -> int:
    """Entries drawn on the map figure (markers, those merged counted each)."""
    return len(POINT.findall(page)) + sum(int(n) - 1 for n in MERGED.findall(page))


async def _sent_rescue_synthesis(room: Room) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    """Three rescue entries (one critical, to be raised), drafted by Claire, validated by Marc,
    sent to Philippe Garnier (DR, no group) and to Nadia Docteur (DR + MEDICAL)."""
    hidden = await room.entry(
        "antoine", f"{HIDDEN_WORD} tribune Nord", category="rescue", severity="critical",
        location={"type": "Point", "coordinates": [2.2530, 48.8414]},
    )  # fmt: skip
    others = [
        await room.entry(
            "antoine", "Chute d'un spectateur porte B", category="rescue", severity="major",
            location={"type": "Point", "coordinates": [2.3601, 48.8984]},
        ),
        await room.entry("antoine", "Évacuation sanitaire quai Est", category="rescue",
                         severity="minor"),
    ]  # fmt: skip
    draft = await room.draft("claire", "Point secours", hours=24, categories=["rescue"])
    assert sorted(draft["entry_ids"]) == sorted(e["id"] for e in [hidden, *others])
    await room.sent("claire", "marc", draft["id"], users=["philippe.garnier", "docteur"])
    return draft["id"], hidden, others


async def _raise(room: Room, entry_id: str) -> None:
    response = await room.client.post(
        f"/api/v1/entries/{entry_id}/label",
        json={"label": MEDICAL, "reason": "secret médical"},
        headers=await room("lucie"),
    )
    assert response.status_code == 200, response.text


async def _read(room: Room, username: str, sid: str) -> Any:
    got = await room.client.get(f"/api/v1/syntheses/{sid}", headers=await room(username))
    assert got.status_code == 200, got.text
    return got.json()


async def test_a_raised_entry_disappears_from_every_form_of_the_synthesis(
    app: FastAPI, client: AsyncClient
) -> None:
    room = Room(app, client)
    sid, hidden, others = await _sent_rescue_synthesis(room)
    markers = [hidden["id"], HIDDEN_WORD]
    philippe = await room("philippe.garnier")

    # Before the raise, the recipient sees the entry everywhere.
    before = await synthesis_traces(
        app, client, username="philippe.garnier", headers=philippe, synthesis_id=sid,
        markers=markers,
    )  # fmt: skip
    for surface in ("api.synthesis", "api.inbox", "api.syntheses", "web.synthesis"):
        assert before[surface] == set(markers), (surface, before)
    assert before["api.pdf"] == {HIDDEN_WORD}  # the PDF shows titles, not ids
    read = (await client.get(f"/api/v1/syntheses/{sid}", headers=philippe)).json()
    assert read["figures"]["total"] == 3 and read.get("redacted", False) is False

    async with tx(app) as session:
        stored = await session.get(Synthesis, uuid.UUID(sid))
        assert stored is not None
        sent = (stored.version, list(stored.entry_ids), dict(stored.figures))

    await _raise(room, hidden["id"])
    assert (
        await client.get(f"/api/v1/entries/{hidden['id']}", headers=philippe)
    ).status_code == 404

    # After it: no trace of it anywhere, for the recipient and for the author and validator
    # (watch officers who are not in the medical group either).
    for username in ("philippe.garnier", "claire", "marc"):
        after = await synthesis_traces(
            app, client, username=username, headers=await room(username), synthesis_id=sid,
            markers=markers,
        )  # fmt: skip
        assert set(after) == {*API_SURFACES, *WEB_SURFACES}
        assert all(not found for found in after.values()), (username, after)

    read = (await client.get(f"/api/v1/syntheses/{sid}", headers=philippe)).json()
    assert read["redacted"] is True
    assert read["entry_ids"] == [e["id"] for e in others]
    assert [e["id"] for e in read["entries"]] == [e["id"] for e in others]
    figures = read["figures"]
    assert figures["total"] == 2 and figures["new_critical"] == []
    assert figures["by_severity"]["critical"] == 0 and figures["by_category"] == {"rescue": 2}
    inbox = (await client.get("/api/v1/inbox", headers=philippe)).json()
    assert inbox[0]["synthesis"]["redacted"] is True
    assert inbox[0]["synthesis"]["entry_ids"] == read["entry_ids"]
    assert inbox[0]["synthesis"]["figures"] == figures

    # Nothing was rewritten: the stored synthesis is what was sent.
    async with tx(app) as session:
        stored = await session.get(Synthesis, uuid.UUID(sid))
        assert stored is not None
        assert (stored.version, list(stored.entry_ids), dict(stored.figures)) == sent


async def test_the_reader_is_told_and_the_map_loses_the_point(
    app: FastAPI, client: AsyncClient
) -> None:
    room = Room(app, client)
    sid, hidden, _ = await _sent_rescue_synthesis(room)
    pages: dict[str, str] = {}
    for moment in ("before", "after"):
        if moment == "after":
            await _raise(room, hidden["id"])
        transport = ASGITransport(app=app, client=("203.0.113.9", 50001))
        async with AsyncClient(transport=transport, base_url="https://testserver") as web:
            await browse_as(web, "philippe.garnier")
            pages[moment] = (await web.get(f"/syntheses/{sid}")).text
            pages[f"{moment}-inbox"] = (await web.get("/boite")).text
    assert points(pages["before"]) == 3  # one point per located entry
    assert points(pages["after"]) == 2
    assert NOTICE not in pages["before"] and NOTICE not in pages["before-inbox"]
    assert NOTICE in pages["after"] and NOTICE in pages["after-inbox"]
    # the notice gives no count of what was hidden
    assert not re.search(r"\d+\s+entrées? masquées?", pages["after"])
    pdf = await room.pdf("philippe.garnier", sid)
    assert NOTICE in " ".join(pages_text(pdf))


async def test_a_reader_still_cleared_gets_it_whole(app: FastAPI, client: AsyncClient) -> None:
    room = Room(app, client)
    sid, hidden, others = await _sent_rescue_synthesis(room)
    await _raise(room, hidden["id"])
    docteur = await room("docteur")
    found = await synthesis_traces(
        app, client, username="docteur", headers=docteur, synthesis_id=sid,
        markers=[hidden["id"], HIDDEN_WORD],
    )  # fmt: skip
    for surface in ("api.synthesis", "api.inbox", "api.syntheses", "web.synthesis"):
        assert found[surface] == {hidden["id"], HIDDEN_WORD}, (surface, found)
    assert found["api.pdf"] == {HIDDEN_WORD}
    read = (await client.get(f"/api/v1/syntheses/{sid}", headers=docteur)).json()
    assert read["redacted"] is False
    assert read["entry_ids"] == [hidden["id"], *(e["id"] for e in others)]
    assert read["figures"]["total"] == 3
    assert [c["title"] for c in read["figures"]["new_critical"]] == [hidden["title"]]


async def test_who_validates_or_sends_must_see_all_of_it(app: FastAPI, client: AsyncClient) -> None:
    room = Room(app, client)
    hidden = await room.entry("antoine", f"{HIDDEN_WORD} loge C", category="rescue")
    await room.entry("antoine", "Chute d'un spectateur porte B", category="rescue")
    sid = (await room.draft("claire", "Point secours", hours=24, categories=["rescue"]))["id"]
    await room.step("claire", sid, "submit")
    await _raise(room, hidden["id"])
    # Marc is not in the medical group: he would answer for what he cannot read.
    refused = await room.step("marc", sid, "validate", status=403)
    assert refused["error"]["code"] == "content_not_cleared"
    assert HIDDEN_WORD not in str(refused) and hidden["id"] not in str(refused)
    # Lucie is, and validates it; she cannot send it to someone not cleared for the entry.
    assert (await room.step("lucie", sid, "validate"))["status"] == "validated"
    await room("philippe.garnier")
    await room("docteur")
    not_cleared = await room.step(
        "lucie", sid, "send", json={"users": ["philippe.garnier"]}, status=403
    )
    assert not_cleared["error"]["code"] == "recipient_not_cleared"
    sent = await room.step("lucie", sid, "send", json={"users": ["docteur"]})
    assert sent["status"] == "sent" and sent["redacted"] is False


async def test_references_are_named_only_to_who_may_see_their_target(
    app: FastAPI, client: AsyncClient
) -> None:
    """The situations of its scope and the synthesis it corrects are references: a reader who
    may not see the target gets no trace of it."""
    room = Room(app, client)
    made = await client.post(
        "/api/v1/situations",
        json={"title": "Cellule médicale", "label": MEDICAL},
        headers=await room("lucie"),
    )
    assert made.status_code == 201, made.text
    situation = made.json()["id"]
    await room.entry("lucie", "Poste de secours ouvert", category="rescue", situation_id=situation)
    first = await room.draft("lucie", "Point cellule", hours=24, situations=[situation])
    assert first["scope"]["situations"] == [situation] and first["label"]["level"] == "NP"
    await room.sent("lucie", "claire", first["id"], users=["philippe.garnier", "docteur"])

    assert (await _read(room, "docteur", first["id"]))["scope"]["situations"] == [situation]
    assert (await _read(room, "philippe.garnier", first["id"]))["scope"]["situations"] == []
    listed = await client.get("/api/v1/inbox", headers=await room("philippe.garnier"))
    assert listed.json()[0]["synthesis"]["scope"]["situations"] == []

    # A correction sent to someone who never received the first one does not point at it.
    correction = await room.step("lucie", first["id"], "supersede", status=201)
    assert correction["supersedes_id"] == first["id"]
    await room.sent("lucie", "sophie", correction["id"], users=["prefet"])
    assert (await _read(room, "prefet", correction["id"]))["supersedes_id"] is None
    assert (await _read(room, "marc", correction["id"]))["supersedes_id"] == first["id"]
