"""GET /api/v1/search on both engines: French stemming, ranking, snippets, the policy over
entries and comments, hostile queries, audit and a bounded number of SQL queries."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import func, select, text

from hypervision.audit.models import AuditRecord
from hypervision.identity.models import Organisation, User
from hypervision.logbook import fulltext
from hypervision.logbook.models import Comment
from tests.factories import ENTRY, admin_headers, make_group, make_org, officer, tx
from tests.queries import count_queries

PUBLIC = {"level": "NP", "audience": []}


async def post_entry(
    client: AsyncClient,
    headers: dict[str, str],
    title: str,
    body: str = "",
    label: dict[str, Any] | None = None,
) -> str:
    data = {**ENTRY, "title": title, "body": body, "label": label or PUBLIC}
    response = await client.post("/api/v1/entries", json=data, headers=headers)
    assert response.status_code == 201, response.text
    entry_id: str = response.json()["id"]
    return entry_id


async def add_comment(
    app: FastAPI,
    entry_id: str,
    author: str,
    body: str,
    *,
    level: str = "NP",
    need_to_know: list[str] | None = None,
    audience: list[str] | None = None,
) -> uuid.UUID:
    """A comment row written directly (the comment service is not part of this feature),
    then indexed as the comment service will do it. ``audience`` holds organisation codes."""
    async with tx(app) as session:
        user = await session.scalar(select(User).where(User.username == author))
        assert user is not None
        codes = audience or []
        org_ids = list(
            await session.scalars(select(Organisation.id).where(Organisation.code.in_(codes)))
        )
        assert len(org_ids) == len(codes)
        comment = Comment(
            entry_id=uuid.UUID(entry_id),
            author_id=user.id,
            body=body,
            label_level=level,
            need_to_know=sorted(need_to_know or []),
            audience=sorted(str(o) for o in org_ids),
            organisation_id=user.organisation_id,
        )
        session.add(comment)
        await session.flush()
        await fulltext.index_comment(session, comment)
        return comment.id


async def search(
    client: AsyncClient, headers: dict[str, str], q: str, **params: Any
) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/search", params={"q": q, **params}, headers=headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def titles(items: list[dict[str, Any]]) -> list[str]:
    return [item["entry"]["title"] for item in items]


async def test_stemming_and_accent_folding(app: FastAPI, client: AsyncClient) -> None:
    alice = await officer(app, client, "alice", "PP")
    await post_entry(
        client, alice, "Manifestation place de la République", "Sécurité renforcée, foule dense."
    )
    await post_entry(client, alice, "Évacuation du stade", "Les tribunes nord sont vidées.")
    await post_entry(client, alice, "Colis suspect gare de Lyon", "Démineurs prévenus.")

    assert titles(await search(client, alice, "manifestations")) == [
        "Manifestation place de la République"
    ]
    for query in ("securite", "SÉCURITÉ", "sécurite renforcee", "republique"):
        assert titles(await search(client, alice, query)) == [
            "Manifestation place de la République"
        ], query
    for query in ("évacuer", "evacues", "évacuation"):
        assert titles(await search(client, alice, query)) == ["Évacuation du stade"], query
    assert titles(await search(client, alice, "demineur")) == ["Colis suspect gare de Lyon"]
    # every word is required; stop words are ignored
    assert await search(client, alice, "manifestation démineurs") == []
    assert titles(await search(client, alice, "le colis de la gare")) == [
        "Colis suspect gare de Lyon"
    ]
    assert await search(client, alice, "pompiers") == []


async def test_title_match_ranks_before_body_match(app: FastAPI, client: AsyncClient) -> None:
    alice = await officer(app, client, "alice", "PP")
    await post_entry(client, alice, "Point de situation", "Un incendie signalé au nord.")
    await post_entry(client, alice, "Incendie rue de Rivoli", "Deux engins sur place.")
    await post_entry(client, alice, "Rien à voir", "Circulation fluide.")
    items = await search(client, alice, "incendies")
    assert titles(items) == ["Incendie rue de Rivoli", "Point de situation"]
    assert items[0]["score"] > items[1]["score"] > 0
    assert [i["kind"] for i in items] == ["entry", "entry"]

    limited = await search(client, alice, "incendie", limit=1)
    assert titles(limited) == ["Incendie rue de Rivoli"]


async def test_one_hit_per_entry_with_its_best_match(app: FastAPI, client: AsyncClient) -> None:
    alice = await officer(app, client, "alice", "PP")
    both = await post_entry(client, alice, "Inondation du quai", "Eau montante.")
    await add_comment(app, both, "alice", "L'inondation gagne la rue.")
    await add_comment(app, both, "alice", "Inondations aussi au sous-sol.")
    only_comment = await post_entry(client, alice, "Point de situation", "RAS")
    comment_id = await add_comment(app, only_comment, "alice", "Début d'inondation en cave.")

    items = await search(client, alice, "inondation")
    assert [(i["entry"]["id"], i["kind"]) for i in items] == [
        (both, "entry"),
        (only_comment, "comment"),
    ]
    assert items[0]["comment_id"] is None
    assert items[1]["comment_id"] == str(comment_id)
    assert items[1]["excerpt_html"] == "Début d&#x27;<mark>inondation</mark> en cave."
    assert items[1]["title_html"] == "Point de situation"


async def test_snippets_are_highlighted_and_escaped(app: FastAPI, client: AsyncClient) -> None:
    alice = await officer(app, client, "alice", "PP")
    filler = " ".join(f"mot{i}" for i in range(60))
    entry_id = await post_entry(
        client,
        alice,
        "Alerte <b>incendie</b> & fumée",
        f'<script>alert("x")</script> {filler} un incendie <img src=x onerror=alert(1)> {filler}',
    )
    comment_id = await add_comment(app, entry_id, "alice", "<i>fumées</i> visibles")
    [hit] = await search(client, alice, "incendie fumee")
    assert hit["kind"] == "entry"
    assert hit["title_html"] == (
        "Alerte &lt;b&gt;<mark>incendie</mark>&lt;/b&gt; &amp; <mark>fumée</mark>"
    )
    excerpt = hit["excerpt_html"]
    assert excerpt.startswith("… mot") and excerpt.endswith(" …")
    assert "un <mark>incendie</mark> &lt;img src=x onerror=alert(1)&gt;" in excerpt
    assert "<script" not in excerpt and "<img" not in excerpt
    assert excerpt.replace("<mark>", "").replace("</mark>", "").count("<") == 0
    # the raw entry is delivered as the entries API delivers it
    assert hit["entry"]["body"].startswith('<script>alert("x")</script>')
    assert "<script" not in hit["entry"]["body_html"]

    [by_comment] = await search(client, alice, "visibles")
    assert by_comment["comment_id"] == str(comment_id)
    assert by_comment["excerpt_html"] == "&lt;i&gt;fumées&lt;/i&gt; <mark>visibles</mark>"


async def test_policy_applies_to_entries_and_comments(app: FastAPI, client: AsyncClient) -> None:
    await make_group(app, "VIP")
    alice = await officer(app, client, "alice", "PP", clearance="DR", groups=["VIP"])
    bob = await officer(app, client, "bob", "SAMU", clearance="NP")
    carol = await officer(app, client, "carol", "PP", clearance="NP")
    dave = await officer(app, client, "dave", "SAMU", clearance="DR", groups=["VIP"])

    await post_entry(client, alice, "Cortège public", "convoi")
    await post_entry(client, alice, "Cortège secret", "convoi", {"level": "DR", "audience": []})
    await post_entry(
        client, alice, "Cortège VIP", "convoi", {"level": "NP", "need_to_know": ["VIP"]}
    )
    await post_entry(client, alice, "Cortège PP", "convoi", {"level": "NP", "audience": ["PP"]})
    # a hidden entry whose comment is public: never found through the comment
    hidden = await post_entry(client, alice, "Note", "rien", {"level": "DR", "audience": []})
    await add_comment(app, hidden, "alice", "convoi retardé")
    # a public entry whose only match is a hidden comment: not found through that comment
    public = await post_entry(client, alice, "Point public", "rien")
    await add_comment(app, public, "alice", "convoi dérouté", level="DR")
    await add_comment(app, public, "alice", "convoi bloqué", need_to_know=["VIP"])
    await add_comment(app, public, "alice", "convoi arrêté", audience=["PP"])

    expected = {
        "alice": {
            "Cortège public",
            "Cortège secret",
            "Cortège VIP",
            "Cortège PP",
            "Note",
            "Point public",
        },
        "bob": {"Cortège public"},
        "carol": {"Cortège public", "Cortège PP", "Point public"},
        "dave": {"Cortège public", "Cortège secret", "Cortège VIP", "Note", "Point public"},
    }
    for name, headers in (("alice", alice), ("bob", bob), ("carol", carol), ("dave", dave)):
        items = await search(client, headers, "convoi")
        assert set(titles(items)) == expected[name], name
        assert len(items) == len(expected[name]), name
    # carol sees "Point public" only through the comment released to PP
    [point] = [i for i in await search(client, carol, "convoi") if i["kind"] == "comment"]
    assert point["excerpt_html"] == "<mark>convoi</mark> arrêté"
    # nothing of a hidden comment is delivered, not even in a snippet
    for headers, words in (
        (bob, ("dérouté", "bloqué", "retardé", "arrêté")),
        (carol, ("dérouté", "bloqué", "retardé")),
    ):
        for word in words:
            assert await search(client, headers, word) == [], word
    assert len(await search(client, dave, "bloqué")) == 1


async def test_hostile_queries_never_fail(app: FastAPI, client: AsyncClient) -> None:
    alice = await officer(app, client, "alice", "PP")
    await post_entry(client, alice, "Colis suspect", 'Le "colis" (NEAR) OR - * ^ : gare')
    hostile = [
        '"',
        '""',
        "*",
        "colis*",
        "NEAR(",
        "NEAR(colis gare)",
        "OR",
        "colis OR gare",
        "AND",
        "NOT colis",
        "-",
        "-colis",
        "(",
        ")",
        "(colis",
        "title:colis",
        "^colis",
        "{title body}: colis",
        "!@#$%^&*()_+={}[]|\\:;'<>,.?/~`",
        "'; DROP TABLE entries; --",
        "a\x00b",
        "colis\u200b",
        "\U0001f525 colis",
        "é" * 200,
        "colis " * 33 + "co",
        "a " * 100,
    ]
    for query in hostile:
        response = await client.get("/api/v1/search", params={"q": query}, headers=alice)
        assert response.status_code == 200, (query, response.text)
    assert titles(await search(client, alice, '"colis"')) == ["Colis suspect"]
    assert titles(await search(client, alice, "NEAR(colis gare)")) == ["Colis suspect"]
    assert await search(client, alice, "NEAR(colis rue)") == []  # plain words, all required
    assert titles(await search(client, alice, "(colis) -gare*")) == ["Colis suspect"]

    invalid: list[dict[str, str | int]] = [
        {"q": ""},
        {"q": "x" * 201},
        {"q": "colis", "limit": 0},
        {"limit": 5},
    ]
    for params in invalid:
        response = await client.get("/api/v1/search", params=params, headers=alice)
        assert response.status_code == 422, params
    for limit in (0, 101, "x"):
        response = await client.get(
            "/api/v1/search", params={"q": "colis", "limit": limit}, headers=alice
        )
        assert response.status_code == 422, limit
    assert (await client.get("/api/v1/search", params={"q": "colis"})).status_code == 401


async def test_audit_records_delivered_ids_not_the_query(app: FastAPI, client: AsyncClient) -> None:
    alice = await officer(app, client, "alice", "PP", clearance="DR")
    public = await post_entry(client, alice, "Crue de la Seine", "niveau 6 m")
    secret = await post_entry(
        client, alice, "Crue note", "niveau", {"level": "DR", "audience": ["PP"]}
    )
    await post_entry(client, alice, "Sans rapport", "rien")
    commented = await post_entry(client, alice, "Point météo", "pluie")
    comment_id = await add_comment(app, commented, "alice", "La crue monte", level="DR")

    query = "crues secrètes"[:5]  # "crues"
    items = await search(client, alice, query)
    delivered = [i["entry"]["id"] for i in items]
    assert set(delivered) == {public, secret, commented}
    assert (await search(client, alice, "introuvable")) == []

    async with tx(app) as session:
        records = list(
            await session.scalars(
                select(AuditRecord).where(AuditRecord.action == "search").order_by(AuditRecord.qid)
            )
        )
    assert len(records) == 2
    first, empty = records
    assert first.resource_type == "entry"
    assert first.resource_ids == delivered
    assert first.labels == ["DR", "NP"]
    assert first.detail == {"query_length": len(query), "comment_ids": [str(comment_id)]}
    assert empty.resource_ids == [] and empty.labels == []
    assert empty.detail == {"query_length": len("introuvable"), "comment_ids": []}
    for record in records:
        assert record.actor_name == "alice" and record.decision == "allowed"
        dump = repr(
            [getattr(record, f) for f in ("detail", "resource_ids", "labels", "actor_name")]
        )
        assert "crue" not in dump.lower() and "introuvable" not in dump.lower()


async def test_index_follows_corrections(app: FastAPI, client: AsyncClient) -> None:
    alice = await officer(app, client, "alice", "PP")
    created = await client.post(
        "/api/v1/entries",
        json={**ENTRY, "title": "Fuite de gaz", "body": "rue Lepic", "label": PUBLIC},
        headers=alice,
    )
    entry_id = created.json()["id"]
    assert titles(await search(client, alice, "gaz")) == ["Fuite de gaz"]
    patched = await client.patch(
        f"/api/v1/entries/{entry_id}",
        json={"title": "Fuite d'eau", "body": "rue des Abbesses"},
        headers={**alice, "If-Match": created.headers["etag"]},
    )
    assert patched.status_code == 200, patched.text
    assert await search(client, alice, "gaz") == []
    assert await search(client, alice, "Lepic") == []
    assert titles(await search(client, alice, "abbesses eau")) == ["Fuite d'eau"]

    comment_id = await add_comment(app, entry_id, "alice", "Canalisation rompue")
    assert [i["comment_id"] for i in await search(client, alice, "canalisation")] == [
        str(comment_id)
    ]
    async with tx(app) as session:
        comment = await session.get(Comment, comment_id)
        assert comment is not None
        comment.body = "Réparation en cours"
        await fulltext.index_comment(session, comment)
    assert await search(client, alice, "canalisation") == []
    assert len(await search(client, alice, "réparations")) == 1
    async with tx(app) as session:
        await session.delete(await session.get(Comment, comment_id))
        await fulltext.remove(session, comment_id)
    assert await search(client, alice, "réparation") == []


async def test_one_search_runs_a_bounded_number_of_queries(
    app: FastAPI, client: AsyncClient
) -> None:
    alice = await officer(app, client, "alice", "PP")

    async def statements_for(query: str, expected: int, searches: int = 1) -> int:
        with count_queries(app) as statements:
            items = await search(client, alice, query, limit=100)
        assert len(items) == expected
        searching = [s for s in statements if "search_fts" in s or "search_vector" in s]
        assert len(searching) == searches
        return len(statements)

    first = await post_entry(client, alice, "Orage violent", "grêle")
    await add_comment(app, first, "alice", "orage encore")
    one = await statements_for("orage", 1)
    for i in range(12):
        entry_id = await post_entry(client, alice, f"Orage {i}", "grêle")
        await add_comment(app, entry_id, "alice", f"orage {i}")
    many = await statements_for("orage", 13)
    # No hit: "did you mean" looks the word up (1) and reads close words (1); none is close.
    none = await statements_for("introuvable", 0, searches=3)
    nothing_to_search = await statements_for("!?*", 0, searches=0)
    assert one == many, "no query per hit"
    # authentication (4) + the search (1) + the audit record (3) + names for presenting (2)
    assert many <= 11
    assert nothing_to_search < none <= many + 2


@pytest.mark.parametrize(("word", "stored"), [("incendie", "incend"), ("Sécurité", "securit")])
async def test_what_each_engine_indexes(
    app: FastAPI, client: AsyncClient, database_url: str, word: str, stored: str
) -> None:
    """SQLite: one FTS5 row of folded stems per entry, written by the application.
    PostgreSQL: the generated column, nothing written by the application."""
    alice = await officer(app, client, "alice", "PP")
    entry_id = await post_entry(client, alice, f"{word} au stade", "Tribune évacuée")
    async with tx(app) as session:
        if database_url.startswith("sqlite"):
            rows = (await session.execute(select(fulltext.search_fts))).all()
            assert [(r.doc_id, r.entry_id, r.kind, r.title, r.body) for r in rows] == [
                (
                    uuid.UUID(entry_id),
                    uuid.UUID(entry_id),
                    "entry",
                    f"{stored} stad",
                    "tribun evacue",
                )
            ]
            assert rows[0].rowid == fulltext.rowid_of(uuid.UUID(entry_id))
        else:
            vector = await session.scalar(
                text("SELECT search_vector::text FROM entries WHERE id = :id"),
                {"id": uuid.UUID(entry_id)},
            )
            assert vector == f"'evacue':5B '{stored}':1A 'stad':3A 'tribun':4B"
    assert len(await search(client, alice, word)) == 1


LEVELS = ("NP", "DR")
LABELS: list[dict[str, Any]] = [
    {"level": level, "need_to_know": ntk, "audience": audience}
    for level in LEVELS
    for ntk in ([], ["VIP"])
    for audience in ([], ["SAMU"])
]


def reference_sees(user: dict[str, Any], label: dict[str, Any]) -> bool:
    """The visibility rule written out plainly (records owned by PP), for the leak matrix."""
    if LEVELS.index(label["level"]) > LEVELS.index(user["clearance"]):
        return False
    if not set(label["need_to_know"]) <= set(user["groups"]):
        return False
    audience = set(label["audience"])
    return not audience or user["org"] == "PP" or bool(audience & set(user["ancestry"]))


async def test_leak_matrix_over_entries_and_comments(app: FastAPI, client: AsyncClient) -> None:
    """Every user × every entry label × every comment label: the delivered entries are
    exactly those the reference model allows, through the entry or a visible comment."""
    await make_group(app, "VIP")
    await make_org(app, "PP")
    await make_org(app, "SAMU")
    await make_org(app, "PPN", parent="PP")
    await make_org(app, "SAMU75", parent="SAMU")
    users: dict[str, dict[str, Any]] = {
        "alice": {"org": "PP", "ancestry": ["PP"], "clearance": "DR", "groups": ["VIP"]},
        "bob": {"org": "SAMU", "ancestry": ["SAMU"], "clearance": "NP", "groups": []},
        "carol": {"org": "PP", "ancestry": ["PP"], "clearance": "NP", "groups": []},
        "dave": {"org": "SAMU", "ancestry": ["SAMU"], "clearance": "DR", "groups": ["VIP"]},
        "erin": {"org": "PPN", "ancestry": ["PPN", "PP"], "clearance": "DR", "groups": ["VIP"]},
        "frank": {"org": "SAMU75", "ancestry": ["SAMU75", "SAMU"], "clearance": "NP", "groups": []},
    }
    headers = {
        name: await officer(
            app, client, name, u["org"], clearance=u["clearance"], groups=u["groups"]
        )
        for name, u in users.items()
    }
    alice = headers["alice"]
    # (entry id, entry label, comment label or None when the entry itself matches)
    cases: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []
    for entry_label in LABELS:
        entry_id = await post_entry(client, alice, "Zeppelin en vue", "ballon", entry_label)
        cases.append((entry_id, entry_label, None))
        for comment_label in LABELS:
            entry_id = await post_entry(client, alice, "Observation", "ciel", entry_label)
            await add_comment(
                app,
                entry_id,
                "alice",
                "un zeppelin",
                level=comment_label["level"],
                need_to_know=comment_label["need_to_know"],
                audience=comment_label["audience"],
            )
            cases.append((entry_id, entry_label, comment_label))
    for name, user in users.items():
        allowed = {
            entry_id
            for entry_id, entry_label, comment_label in cases
            if reference_sees(user, entry_label)
            and (comment_label is None or reference_sees(user, comment_label))
        }
        if name == "alice":
            assert len(allowed) == len(cases) == 72
        if name == "bob":  # NP, no group, audience empty or SAMU: 2 labels of 8
            assert len(allowed) == 2 + 2 * 2
        items = await search(client, headers[name], "zeppelins", limit=100)
        delivered = [i["entry"]["id"] for i in items]
        assert len(delivered) == len(set(delivered)), name
        assert set(delivered) == allowed, name
        # the hidden comments' words are not searchable either
        for item in items:
            assert (item["kind"] == "comment") == (item["title_html"] == "Observation")
    async with tx(app) as session:
        count = await session.scalar(
            select(func.count()).select_from(AuditRecord).where(AuditRecord.action == "search")
        )
    assert count == len(users)


async def test_roles_without_read_are_refused(app: FastAPI, client: AsyncClient) -> None:
    admin = await admin_headers(app, client)
    response = await client.get("/api/v1/search", params={"q": "colis"}, headers=admin)
    assert response.status_code == 403
    async with tx(app) as session:
        actions = list(await session.scalars(select(AuditRecord.action)))
    assert "search" not in actions and "refused:forbidden" in actions
