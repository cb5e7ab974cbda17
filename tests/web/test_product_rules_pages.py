"""A product's access rules on the web (both engines): readers see them in words; stewards
change them in a form; a change that could show more waits for a second steward, who approves
it on the page; the proposer may not; a wrong value is named in words and changes nothing."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from hypervision.policy.roles import Role
from tests.factories import make_user, sign_in
from tests.web.conftest import Browser
from tests.web.pages import browse_as, form_fields
from tests.web.test_product_pages import product

__all__ = ["product"]  # the fixture, shared with the product pages' tests


def _set(fields: list[tuple[str, str]], **changes: str) -> dict[str, list[str]]:
    """The form's fields with some changed, as httpx sends repeated fields."""
    sent: dict[str, list[str]] = {}
    for name, value in [(k, v) for k, v in fields if k not in changes] + list(changes.items()):
        sent.setdefault(name, []).append(value)
    return sent


async def _rules_of(client: AsyncClient, pid: str, username: str) -> dict[str, Any]:
    headers = await sign_in(client, username)
    answer = await client.get(f"/api/v1/products/{pid}", headers=headers)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()["rules"]
    return found


@pytest.fixture
async def second_steward(app: FastAPI, product: str) -> str:
    await make_user(app, "steward2", "SANTE", roles=[Role.DATA_STEWARD], clearance="DR")
    return product


async def test_readers_see_the_rules_in_words_and_may_not_change_them(
    client: AsyncClient, product: str
) -> None:
    csrf = await browse_as(client, "prefet")
    page = await client.get(f"/donnees/{product}/regles")
    assert page.status_code == 200, page.text
    assert "Montrer les lignes quand : « service » n&#39;est pas SAMU" in page.text
    assert "Sinon, la ligne est masquée." in page.text
    assert "Masquer « patients » quand : non (les groupes du lecteur contient MEDICAL)" in (
        page.text.replace("&#39;", "'")
    )
    assert 'id="regles-formulaire"' not in page.text
    refused = await client.post(
        f"/donnees/{product}/regles",
        data={"csrf_token": csrf, "rows_n": "0", "cols_n": "0", "rows_default": "allow",
              "action": "save"},
    )  # fmt: skip
    assert refused.status_code == 403
    assert (await client.get(f"/donnees/{product}")).text.count('id="lien-regles"') == 1


async def test_unchanged_rules_save_as_they_were(client: AsyncClient, product: str) -> None:
    before = await _rules_of(client, product, "steward")
    await browse_as(client, "steward")
    page = await client.get(f"/donnees/{product}/regles")
    fields = form_fields(page, "regles-formulaire")
    saved = await client.post(f"/donnees/{product}/regles", data=_set(fields, action="save"))
    assert saved.status_code == 303, saved.text
    assert saved.headers["location"].endswith("?fait=applied")
    assert await _rules_of(client, product, "steward") == before


async def test_a_narrowing_rule_applies_at_once(
    client: AsyncClient, new_client: Browser, product: str
) -> None:
    await browse_as(client, "steward")
    page = await client.get(f"/donnees/{product}/regles")
    added = await client.post(
        f"/donnees/{product}/regles",
        data=_set(form_fields(page, "regles-formulaire"), action="add_row"),
    )
    assert added.status_code == 200 and 'id="r2-legende"' in added.text
    # The new rule goes first: hide département 93's rows (a deny rule inserted: not wider).
    fields = _set(form_fields(added, "regles-formulaire"), r2_effect="deny",
                  r2_a0_left="rec:departement", r2_a0_op="eq", r2_a0_value="93",
                  action="save")  # fmt: skip
    saved = await client.post(f"/donnees/{product}/regles", data=fields)
    assert saved.status_code == 303, saved.text
    assert saved.headers["location"].endswith("?fait=applied")
    now = await _rules_of(client, product, "steward")
    assert now["rows"][2] == {
        "effect": "deny",
        "when": {"op": "eq", "left": {"rec": "departement"}, "right": {"value": "93"}},
        "note": "",
    }
    done = await client.get(saved.headers["location"])
    assert 'id="regles-fait"' in done.text


async def test_a_widening_change_waits_for_a_second_steward(
    client: AsyncClient, new_client: Browser, second_steward: str
) -> None:
    product = second_steward
    await browse_as(client, "steward")
    page = await client.get(f"/donnees/{product}/regles")
    fields = _set(form_fields(page, "regles-formulaire"), rows_default="allow",
                  reason="Les préfectures ont besoin des SAMU", action="save")  # fmt: skip
    saved = await client.post(f"/donnees/{product}/regles", data=fields)
    assert saved.status_code == 303 and saved.headers["location"].endswith("?fait=pending")
    assert (await _rules_of(client, product, "steward"))["rows_default"] == "deny"
    waiting = await client.get(f"/donnees/{product}/regles")
    assert "Changements en attente d&#39;un second gestionnaire" in waiting.text
    assert "Vous avez proposé ce changement" in waiting.text
    assert 'value="approve"' not in waiting.text  # the proposer cannot decide

    reader = await new_client()
    await browse_as(reader, "prefet")
    assert "SAMU" not in (await reader.get(f"/donnees/{product}")).text

    other = await new_client()
    await browse_as(other, "steward2")
    pending = await other.get(f"/donnees/{product}/regles")
    assert "Les préfectures ont besoin des SAMU" in pending.text
    assert "Sinon, la ligne est montrée." in pending.text  # the proposal, in words
    found = re.search(rf'action="(/donnees/{product}/regles/[0-9a-f-]+)"', pending.text)
    assert found, "no decision form"
    action = found.group(1)
    approved = await other.post(
        action, data={"csrf_token": _csrf(pending.text), "decision": "approve"}
    )
    assert approved.status_code == 303, approved.text
    assert approved.headers["location"].endswith("?fait=approved")
    assert (await _rules_of(client, product, "steward"))["rows_default"] == "allow"
    assert "SAMU" in (await reader.get(f"/donnees/{product}")).text
    again = await other.post(action, data={"csrf_token": _csrf(pending.text),
                                           "decision": "reject"})  # fmt: skip
    assert again.status_code == 409 and "déjà tranchée" in again.text


async def test_a_wrong_value_is_named_and_changes_nothing(
    client: AsyncClient, product: str
) -> None:
    before = await _rules_of(client, product, "steward")
    await browse_as(client, "steward")
    page = await client.get(f"/donnees/{product}/regles")
    fields = _set(form_fields(page, "regles-formulaire"), r0_a0_left="rec:lits",
                  r0_a0_value="douze", action="save")  # fmt: skip
    refused = await client.post(f"/donnees/{product}/regles", data=fields)
    assert refused.status_code == 422, refused.text
    assert "Règle de lignes 1, condition 1 (terme de droite) : entier attendu" in refused.text
    assert 'value="douze"' in refused.text  # the form comes back as typed
    assert await _rules_of(client, product, "steward") == before


async def test_rules_written_through_the_api_with_nesting_are_not_offered(
    client: AsyncClient, product: str
) -> None:
    nested = await _rules_of(client, product, "steward")
    steward = await sign_in(client, "steward")
    nested["rows"].insert(0, {"effect": "deny", "when": {"any": [{"all": [
        {"op": "eq", "left": {"rec": "service"}, "right": {"value": "X"}},
        {"op": "eq", "left": {"rec": "departement"}, "right": {"value": "Y"}}]}]}})  # fmt: skip
    put = await client.put(f"/api/v1/products/{product}/rules", json={"rules": nested},
                           headers=steward)  # fmt: skip
    assert put.status_code == 200 and put.json()["pending"] is None, put.text
    await browse_as(client, "steward")
    page = await client.get(f"/donnees/{product}/regles")
    assert 'id="regles-formulaire"' not in page.text and "imbriquées" in page.text
    assert "« service » est X ; « departement » est Y" in page.text


def _csrf(text: str) -> str:
    return text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
