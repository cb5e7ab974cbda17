""" "Did you mean" on both engines: typos corrected from the reader's visible records only."""

from __future__ import annotations

import re

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select

from hypervision.audit.models import AuditRecord
from hypervision.search.suggest import edit_distance, rank, similarity
from tests.factories import officer, tx
from tests.search.test_search_api import post_entry
from tests.web.pages import browse_as

DR = {"level": "DR", "audience": []}


async def search(client: AsyncClient, headers: dict[str, str], q: str) -> dict[str, object]:
    response = await client.get("/api/v1/search", params={"q": q}, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def test_ranking_measures() -> None:
    assert round(similarity("sait", "saint"), 3) == 0.375  # pg_trgm gives the same
    assert edit_distance("sait", "saint") == 1 and edit_distance("", "abc") == 3
    assert rank("sait", {"saint": 3, "sein": 9, "zebre": 50}) == ["saint"]
    # Equally close: the more frequent word first.
    assert rank("sait", {"saint": 3, "sain": 1}) == ["saint", "sain"]
    # A swap of two letters is one edit ("frnace" -> "france", stems "frnac" -> "franc").
    assert edit_distance("frnac", "franc") == 1
    assert rank("frnac", {"franc": 4, "frein": 2}, word="frnace") == ["franc"]
    # The typed word starts with the stem of the right word.
    assert rank("evacuaton", {"evacu": 2, "evad": 1}, word="evacuaton") == ["evacu"]


async def test_typos_get_a_correction(app: FastAPI, client: AsyncClient) -> None:
    alice = await officer(app, client, "alice", "PP")
    entry_id = await post_entry(
        client, alice, "Bouchon avenue du Président Wilson", "Circulation bloquée à Saint-Denis."
    )
    found = await search(client, alice, "sait-denis")
    assert found["items"] == [] and found["did_you_mean"] == "saint-denis"
    assert (await search(client, alice, "Bouchon Wilsn"))["did_you_mean"] == "Bouchon Wilson"
    # Known words are left alone, and nothing close enough gives no suggestion.
    assert (await search(client, alice, "bouchon"))["did_you_mean"] is None
    assert (await search(client, alice, "xqzw"))["did_you_mean"] is None
    async with tx(app) as session:
        records = list(
            await session.scalars(select(AuditRecord).where(AuditRecord.action == "search.suggest"))
        )
    assert len(records) == 2
    assert records[0].resource_ids == [entry_id] and records[0].labels == ["NP"]


async def test_a_word_only_in_hidden_records_is_never_suggested(
    app: FastAPI, client: AsyncClient
) -> None:
    alice = await officer(app, client, "alice", "PP", clearance="DR")
    bob = await officer(app, client, "bob", "SAMU", clearance="NP")
    await post_entry(client, alice, "Convoi Zanzibar", "Escorte prévue.", label=DR)
    await post_entry(client, alice, "Convoi sanitaire", "Escorte prévue.")
    # The cleared reader gets the correction; the NP reader, for whom the word exists only
    # in a DR entry, gets none, though "convoi" and "escorte" are visible to both.
    assert (await search(client, alice, "zanzibr"))["did_you_mean"] == "zanzibar"
    assert (await search(client, bob, "zanzibr"))["did_you_mean"] is None
    assert (await search(client, bob, "convoi zanzibr"))["did_you_mean"] is None
    assert (await search(client, bob, "convoy"))["did_you_mean"] == "convoi"


async def test_search_page_shows_the_corrected_results(app: FastAPI, client: AsyncClient) -> None:
    alice = await officer(app, client, "alice", "PP")
    await post_entry(client, alice, "Bouchon avenue du Président Wilson", "Saint-Denis bloqué.")
    await post_entry(client, alice, "Bouchon rue du Landy", "Circulation lente.")
    await browse_as(client, "alice")
    page = await client.get("/recherche", params={"q": "sait-denis"})
    assert page.status_code == 200
    assert 'id="correction"' in page.text and "saint-denis" in page.text
    assert "Bouchon avenue du Président Wilson" in page.text
    assert "rue du Landy" not in page.text
    # The correction finds nothing either: it is only proposed, as a link.
    page = await client.get("/recherche", params={"q": "landy wilsn"})
    assert 'id="correction"' not in page.text
    assert '<a href="/recherche?q=landy%20wilson">landy wilson</a>' in page.text


async def test_a_suggestion_from_a_dr_record_marks_the_page(
    app: FastAPI, client: AsyncClient
) -> None:
    alice = await officer(app, client, "alice", "PP", clearance="DR")
    await post_entry(client, alice, "Convoi Zanzibar", "Escorte prévue.", label=DR)
    await post_entry(client, alice, "Relève sanitaire", "Poste avancé.")
    await browse_as(client, "alice")
    # No record holds both words: nothing is shown but the suggestion, whose second word comes
    # from the DR entry: the page carries that entry's marking.
    page = await client.get("/recherche", params={"q": "sanitaire zanzibr"})
    assert '<a href="/recherche?q=sanitaire%20zanzibar">sanitaire zanzibar</a>' in page.text
    marking = re.search(r'<div id="marquage-haut"[^>]*>([^<]*)</div>', page.text)
    assert marking is not None and "DIFFUSION RESTREINTE" in marking.group(1)
    plain = await client.get("/recherche", params={"q": "sanitaire"})
    marking = re.search(r'<div id="marquage-haut"[^>]*>([^<]*)</div>', plain.text)
    assert marking is not None and "DIFFUSION RESTREINTE" not in marking.group(1)
