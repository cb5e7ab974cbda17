"""OpenID Connect sign-in beside local accounts (docs/adr/0033), against a real provider run by
the tests (``oidc-provider-mock``, on the loopback address), both engines.

The provider is a Flask application in a thread: the browser's steps on its side (the
authorisation form, posted with a subject) go through a real HTTP client; our application's
calls to it (discovery, keys, token) go over real sockets too.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from sqlalchemy import select

from hypervision.audit.models import AuditRecord
from hypervision.config import ConfigError, Settings, load_settings
from hypervision.events.models import OutboxEvent
from hypervision.identity import oidc
from hypervision.identity.models import AuthSession, User, UserIdentity
from tests.conftest import make_settings
from tests.factories import PASSWORD, make_group, make_org, make_user, tx
from tests.security.test_web_hardening import assert_hardened
from tests.web.pages import csrf_of

with warnings.catch_warnings():
    # The provider (a test tool) imports authlib.jose, which warns about its own deprecation.
    warnings.simplefilter("ignore")
    from oidc_provider_mock import User as ProviderUser
    from oidc_provider_mock import run_server_in_thread

# The provider runs authlib's server side, in its thread, under this run's warning filters; it
# calls interfaces that authlib deprecates. Those warnings, and only those, are the tool's.
pytestmark = [
    pytest.mark.filterwarnings(r"ignore:get_jwt_config\(self, grant\) is deprecated"),
]
ALICE = "alice-sub"
CLAIMS: dict[str, Any] = {
    "preferred_username": "Alice.Martin",
    "email": "alice.martin@interieur.gouv.fr",
    "name": "Alice Martin",
    "org": "prefecture-75",
    "groups": ["cic-agents"],
}
PROVIDER_NAME = "kc"
TITLE = "Keycloak du ministère"
JAR_DOMAIN = "testserver.local"  # how http.cookiejar files a host name without a dot
CALLBACK = re.compile(r"^https://testserver/connexion/oidc/kc(-dr)?/retour\?")


@contextmanager
def provider_running() -> Iterator[str]:
    """The provider on a free loopback port; yields its issuer."""
    previous = os.environ.get("AUTHLIB_INSECURE_TRANSPORT")
    os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"  # the provider on plain HTTP, on loopback
    users = [ProviderUser(sub=ALICE, claims=CLAIMS)]
    try:
        with run_server_in_thread(port=0, require_nonce=True, user_claims=users) as server:
            yield f"http://localhost:{server.server_port}"
    finally:
        if previous is None:
            os.environ.pop("AUTHLIB_INSECURE_TRANSPORT", None)
        else:
            os.environ["AUTHLIB_INSECURE_TRANSPORT"] = previous


@pytest.fixture(scope="module")
def issuer() -> Iterator[str]:
    with provider_running() as running:
        yield running


def provider_config(issuer: str) -> dict[str, Any]:
    return {
        "name": PROVIDER_NAME,
        "title": TITLE,
        "issuer": issuer,
        "client_id": "hypervision",
        "client_secret": "un-secret-de-client",
        "organisation": {"claim": "org", "map": {"prefecture-75": "PREF75"}},
        "roles": {
            "claim": "groups",
            "map": {"cic-agents": ["officer"], "cic-chefs": ["officer", "watch_officer"]},
        },
    }


@pytest.fixture
def settings(database_url: str, tmp_path: Path, issuer: str) -> Settings:
    return make_settings(
        tmp_path,
        database_url,
        oidc_providers=[provider_config(issuer), cleared_config(issuer)],
        public_url="https://testserver",
    )


def cleared_config(issuer: str) -> dict[str, Any]:
    """Rules that also map clearance and need-to-know groups (only ever explicitly)."""
    return provider_config(issuer) | {
        "name": "kc-dr",
        "title": "Keycloak (habilitations)",
        "clearance": {"claim": "habilitation", "map": {"dr": "DR"}},
        "groups": {"claim": "groups", "map": {"cic-agents": ["CIC"]}},
    }


@pytest.fixture
async def new_client(app: FastAPI) -> AsyncIterator[Callable[[], Awaitable[AsyncClient]]]:
    """Another browser (its own cookie jar) on the same application."""
    opened: list[AsyncClient] = []

    async def open_one() -> AsyncClient:
        transport = ASGITransport(app=app, client=("203.0.113.8", 50001))
        opened.append(AsyncClient(transport=transport, base_url="https://testserver"))
        return opened[-1]

    yield open_one
    for http in opened:
        await http.aclose()


@pytest.fixture
async def provider_http() -> AsyncIterator[AsyncClient]:
    async with AsyncClient(timeout=10) as http:
        yield http


async def set_claims(http: AsyncClient, issuer: str, sub: str, claims: dict[str, Any]) -> None:
    answer = await http.put(f"{issuer}/users/{sub}", json=claims)
    assert answer.status_code == 204, answer.text


async def to_provider(client: AsyncClient, suite: str = "/aide", name: str = PROVIDER_NAME) -> str:
    """Clicks the provider's button: the authorisation URL the browser is sent to."""
    started = await client.get(f"/connexion/oidc/{name}?suite={suite}")
    assert started.status_code == 303, started.text
    assert_hardened(started.headers, "single sign-on: to the provider")
    flow = started.headers["set-cookie"].lower()
    assert "samesite=lax" in flow and "httponly" in flow and "max-age=600" in flow
    return started.headers["location"]


async def at_provider(http: AsyncClient, authorize: str, sub: str = ALICE) -> str:
    """The person signs in at the provider: our callback URL, as the provider redirects."""
    form = await http.get(authorize)
    assert form.status_code == 200 and 'name="sub"' in form.text
    answer = await http.post(authorize, data={"sub": sub})
    assert answer.status_code == 302, answer.text
    callback = answer.headers["location"]
    assert CALLBACK.match(callback), callback
    return callback


async def sign_in_through(
    client: AsyncClient, http: AsyncClient, sub: str = ALICE, name: str = PROVIDER_NAME
) -> httpx.Response:
    callback = await at_provider(http, await to_provider(client, name=name), sub)
    return await client.get(callback.removeprefix("https://testserver"))


async def audited(app: FastAPI) -> list[AuditRecord]:
    async with tx(app) as session:
        rows = await session.scalars(
            select(AuditRecord)
            .where(AuditRecord.action == "auth.sign_in")
            .order_by(AuditRecord.qid)
        )
        return list(rows)


async def test_the_whole_flow_against_the_provider(
    app: FastAPI, client: AsyncClient, provider_http: AsyncClient, issuer: str
) -> None:
    await make_org(app, "PREF75")
    page = await client.get("/connexion")
    assert f"Se connecter avec {TITLE}" in page.text
    assert 'href="/connexion/oidc/kc"' in page.text
    english = await client.get("/connexion", headers={"cookie": "hv_lang=en"})
    assert f"Sign in with {TITLE}" in english.text

    authorize = await to_provider(client)
    parts = urlsplit(authorize)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{issuer}/oauth2/authorize"
    asked = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert asked["response_type"] == "code" and asked["client_id"] == "hypervision"
    assert asked["code_challenge_method"] == "S256" and len(asked["code_challenge"]) == 43
    assert len(asked["state"]) >= 32 and len(asked["nonce"]) >= 32
    assert asked["redirect_uri"] == "https://testserver/connexion/oidc/kc/retour"
    assert set(asked["scope"].split()) == {"openid", "email", "profile"}
    flow_cookie = next(c for c in client.cookies.jar if c.name == oidc.FLOW_COOKIE)
    assert flow_cookie.has_nonstandard_attr("HttpOnly")
    assert flow_cookie.path == "/connexion/oidc/" and flow_cookie.secure
    flow = oidc.unseal(app.state.settings, flow_cookie.value)
    assert flow is not None and flow.state == asked["state"] and flow.suite == "/aide"
    assert asked["code_challenge"] != flow.verifier  # the challenge, never the verifier

    callback = await at_provider(provider_http, authorize)
    done = await client.get(callback.removeprefix("https://testserver"))
    assert done.status_code == 200, done.text
    assert '<meta http-equiv="refresh" content="0;url=/aide">' in done.text
    session_cookie = done.headers.get_list("set-cookie")
    assert any(c.startswith("hv_session=") and "SameSite=strict" in c for c in session_cookie)
    assert oidc.FLOW_COOKIE not in client.cookies  # used once, gone
    assert_hardened(done.headers, "single sign-on: signed in")
    me = (await client.get("/api/v1/auth/me")).json()
    async with tx(app) as session:
        user = await session.scalar(select(User).where(User.username == me["username"]))
        assert user is not None
        identity = await session.scalar(select(UserIdentity).where(UserIdentity.user_id == user.id))
        row = await session.scalar(select(AuthSession).where(AuthSession.user_id == user.id))
    assert me["username"] == "alice.martin"
    assert me["roles"] == ["officer"] and me["clearance"] == "NP" and me["groups"] == []
    assert user.full_name == "Alice Martin" and user.password_hash is None
    assert identity is not None and (identity.issuer, identity.subject) == (issuer, ALICE)
    assert row is not None and row.oidc_provider == "kc" and row.id_token
    assert (await client.get("/aide")).status_code == 200
    records = await audited(app)
    assert [(r.decision, r.detail) for r in records] == [
        ("allowed", {"method": "oidc", "provider": "kc", "kind": "web"})
    ]
    assert row.id_token not in str([r.detail for r in records])  # no token in the trail


async def test_a_second_sign_in_updates_roles_but_keeps_the_clearance_set_here(
    app: FastAPI, client: AsyncClient, provider_http: AsyncClient, issuer: str, new_client: Any
) -> None:
    await make_org(app, "PREF75")
    await make_user(app, "alice.martin", "PREF75")  # a local account of that name exists
    bob = "bob-sub"
    claims = {**CLAIMS, "preferred_username": "alice.martin", "groups": "cic-agents"}
    await set_claims(provider_http, issuer, bob, claims)
    assert (await sign_in_through(client, provider_http, bob)).status_code == 200
    me = (await client.get("/api/v1/auth/me")).json()
    assert me["username"] == "alice.martin-2"  # never the local account of the same name
    async with tx(app) as session:
        user = await session.scalar(select(User).where(User.username == "alice.martin-2"))
        assert user is not None
        user.clearance = "DR"  # raised by an administrator

    await set_claims(provider_http, issuer, bob, {**claims, "groups": ["cic-chefs", "x"]})
    again = await new_client()
    assert (await sign_in_through(again, provider_http, bob)).status_code == 200
    me = (await again.get("/api/v1/auth/me")).json()
    assert me["username"] == "alice.martin-2"
    assert me["roles"] == ["officer", "watch_officer"]  # the provider's authority
    assert me["clearance"] == "DR"  # the administrator's, untouched
    async with tx(app) as session:
        count = len(list(await session.scalars(select(UserIdentity))))
    assert count == 1


async def test_an_unmapped_organisation_is_refused_and_audited(
    app: FastAPI, client: AsyncClient, provider_http: AsyncClient, issuer: str
) -> None:
    await make_org(app, "PREF75")
    await set_claims(provider_http, issuer, "eve-sub", {**CLAIMS, "org": "ailleurs"})
    refused = await sign_in_through(client, provider_http, "eve-sub")
    assert refused.status_code == 403
    assert "rattaché à aucune organisation de la plateforme" in refused.text
    assert "hv_session" not in client.cookies
    async with tx(app) as session:
        assert list(await session.scalars(select(User))) == []
    [record] = await audited(app)
    assert record.decision == "denied"
    assert record.detail == {"method": "oidc", "provider": "kc", "reason": "no_organisation"}
    assert record.actor_name == "kc:eve-sub"


async def test_forged_replayed_and_foreign_states_are_refused(
    app: FastAPI, client: AsyncClient, provider_http: AsyncClient
) -> None:
    await make_org(app, "PREF75")
    callback = await at_provider(provider_http, await to_provider(client))
    path = callback.removeprefix("https://testserver")
    forged = re.sub(r"state=[^&]+", "state=forged", path)
    refused = await client.get(forged)
    assert refused.status_code == 400
    assert "Cette connexion a expiré ou ne vient pas de ce navigateur" in refused.text
    assert_hardened(refused.headers, "single sign-on: refused")
    assert oidc.FLOW_COOKIE not in client.cookies  # a refusal consumes the flow too

    # A whole good flow, then the same return replayed: the flow cookie is gone.
    good = await at_provider(provider_http, await to_provider(client))
    kept = client.cookies.get(oidc.FLOW_COOKIE, path="/connexion/oidc/")
    assert (await client.get(good.removeprefix("https://testserver"))).status_code == 200
    replayed = await client.get(good.removeprefix("https://testserver"))
    assert replayed.status_code == 400
    # Replayed with the old cookie put back: the provider refuses its code a second time.
    assert kept is not None
    client.cookies.set(oidc.FLOW_COOKIE, kept, domain=JAR_DOMAIN, path="/connexion/oidc/")
    again = await client.get(good.removeprefix("https://testserver"))
    assert again.status_code == 400
    assert "refusé le code de connexion" in again.text

    # No cookie at all (another browser), or a cookie signed with another key.
    stranger = await at_provider(provider_http, await to_provider(client))
    cookie = client.cookies.get(oidc.FLOW_COOKIE, path="/connexion/oidc/")
    assert cookie is not None
    client.cookies.delete(oidc.FLOW_COOKIE, domain=JAR_DOMAIN, path="/connexion/oidc/")
    other_key = replace_key(app.state.settings)
    flow = oidc.unseal(app.state.settings, cookie)
    assert flow is not None
    client.cookies.set(
        oidc.FLOW_COOKIE, oidc.seal(other_key, flow), domain=JAR_DOMAIN, path="/connexion/oidc/"
    )
    assert (await client.get(stranger.removeprefix("https://testserver"))).status_code == 400
    decisions = [(r.decision, (r.detail or {}).get("reason")) for r in await audited(app)]
    assert decisions == [
        ("denied", "oidc_state"),
        ("allowed", None),
        ("denied", "oidc_state"),
        ("denied", "oidc_code_refused"),
        ("denied", "oidc_state"),
    ]


def replace_key(settings: Settings) -> Settings:
    return settings.model_copy(update={"secret_key": "another-secret-key-" + "x" * 40})


async def test_an_id_token_for_another_nonce_is_refused(
    app: FastAPI, client: AsyncClient, provider_http: AsyncClient
) -> None:
    """The provider puts the nonce of the authorisation request in its ID token; a flow whose
    nonce differs (an ID token obtained for another sign-in) is refused."""
    await make_org(app, "PREF75")
    authorize = await to_provider(client)
    cookie = client.cookies.get(oidc.FLOW_COOKIE, path="/connexion/oidc/")
    flow = oidc.unseal(app.state.settings, cookie)
    assert flow is not None
    other = oidc.seal(app.state.settings, replace(flow, nonce="another-nonce"))
    client.cookies.set(oidc.FLOW_COOKIE, other, domain=JAR_DOMAIN, path="/connexion/oidc/")
    callback = await at_provider(provider_http, authorize)
    refused = await client.get(callback.removeprefix("https://testserver"))
    assert refused.status_code == 400
    assert "hv_session" not in client.cookies
    [record] = await audited(app)
    assert record.detail == {"method": "oidc", "provider": "kc", "reason": "oidc_failed"}


async def test_a_disabled_account_stays_refused(
    app: FastAPI, client: AsyncClient, provider_http: AsyncClient, new_client: Any
) -> None:
    await make_org(app, "PREF75")
    assert (await sign_in_through(client, provider_http)).status_code == 200
    async with tx(app) as session:
        user = await session.scalar(select(User).where(User.username == "alice.martin"))
        assert user is not None
        user.is_active = False
    other = await new_client()
    refused = await sign_in_through(other, provider_http)
    assert refused.status_code == 403 and "Ce compte est désactivé" in refused.text
    assert "hv_session" not in other.cookies
    assert (await audited(app))[-1].detail == {
        "method": "oidc",
        "provider": "kc",
        "reason": "disabled",
    }


async def test_sign_out_ends_the_session_here_and_at_the_provider(
    app: FastAPI, client: AsyncClient, provider_http: AsyncClient, issuer: str
) -> None:
    await make_org(app, "PREF75")
    assert (await sign_in_through(client, provider_http)).status_code == 200
    csrf = csrf_of(await client.get("/aide"))
    out = await client.post("/deconnexion", data={"csrf_token": csrf})
    assert out.status_code == 303
    target = urlsplit(out.headers["location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == f"{issuer}/oauth2/end_session"
    asked = {k: v[0] for k, v in parse_qs(target.query).items()}
    async with tx(app) as session:
        row = await session.scalar(select(AuthSession))
    assert row is not None and row.revoked_at is not None
    assert asked["id_token_hint"] == row.id_token
    assert asked["post_logout_redirect_uri"] == "https://testserver/connexion"
    assert (await client.get("/api/v1/auth/me")).status_code == 401
    ended = await provider_http.get(out.headers["location"])
    assert ended.status_code == 200  # the provider's own logout page


async def test_mapped_clearance_and_groups_come_from_the_provider(
    app: FastAPI, client: AsyncClient, provider_http: AsyncClient, issuer: str
) -> None:
    """Only when mapped explicitly: the rules of "kc-dr", unlike those of "kc", name them."""
    await make_org(app, "PREF75")
    await make_group(app, "CIC")
    await set_claims(provider_http, issuer, "carol-sub", {**CLAIMS, "habilitation": "dr"})
    done = await sign_in_through(client, provider_http, "carol-sub", name="kc-dr")
    assert done.status_code == 200
    me = (await client.get("/api/v1/auth/me")).json()
    assert (me["roles"], me["clearance"], me["groups"]) == (["officer"], "DR", ["CIC"])


def test_a_bad_provider_setting_is_refused_with_its_field(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    good = provider_config("https://sso.interieur.gouv.fr/realms/agents")
    monkeypatch.setenv("HYPERVISION_OIDC_PROVIDERS", json.dumps([good]))
    assert load_settings().oidc_providers[0].issuer == good["issuer"]
    for bad, words in (
        ({"issuer": "http://sso.example"}, r"PROVIDERS\[0\]\.issuer: must be an https://"),
        ({"roles": {"claim": "g", "map": {"x": ["roi"]}}}, r"PROVIDERS\[0\]\.roles: unknown role"),
        ({"organisation": {"claim": "org"}}, r"PROVIDERS\[0\]: organisation: give a map"),
        ({"clearance": {"claim": "c", "map": {"x": "TS"}}}, r"PROVIDERS: provider kc: clearance"),
        ({"scopes": "email"}, r"PROVIDERS\[0\]\.scopes: must include openid"),
        ({"name": "Mon SSO"}, r"PROVIDERS\[0\]\.name: String should match"),
        ({"nom": "x"}, r"PROVIDERS\[0\]\.nom: Extra inputs"),
    ):
        monkeypatch.setenv("HYPERVISION_OIDC_PROVIDERS", json.dumps([good | bad]))
        with pytest.raises(ConfigError, match=f"^invalid setting HYPERVISION_OIDC_{words}"):
            load_settings()
    for value, words in (("[{", "not valid JSON"), (json.dumps([good, good]), "distinct")):
        monkeypatch.setenv("HYPERVISION_OIDC_PROVIDERS", value)
        with pytest.raises(ConfigError, match=f"HYPERVISION_OIDC_PROVIDERS: .*{words}"):
            load_settings()
    monkeypatch.delenv("HYPERVISION_OIDC_PROVIDERS")
    assert load_settings().oidc_providers == ()  # the default: local accounts only


def test_claims_are_read_as_strings_lists_or_nested() -> None:
    claims = {"org": "a", "groups": ["x", "y", 3, None], "realm_access": {"roles": ["chef"]}}
    assert oidc.claim_values(claims, "org") == ["a"]
    assert oidc.claim_values(claims, "groups") == ["x", "y", "3"]
    assert oidc.claim_values(claims, "realm_access.roles") == ["chef"]
    assert oidc.claim_values(claims, "absent") == []


async def test_tokens_are_checked_signature_issuer_audience_time_and_nonce(issuer: str) -> None:
    """The checks of an ID token and of a signed userinfo answer (ProConnect's), each refused
    alone: keys of our own stand for the provider's, its real endpoints for a key rotation."""
    settings = make_settings(Path("."), "", oidc_providers=[provider_config(issuer)])
    provider = settings.oidc_providers[0]
    discovery = oidc.Discovery(settings)
    known = await discovery.get(provider)  # the real provider's discovery
    key = RSAKey.generate_key(2048, parameters={"kid": "ours"})
    known.keys = KeySet([key])
    now = int(time.time())
    good = {
        "iss": issuer, "aud": "hypervision", "sub": ALICE, "exp": now + 300, "iat": now,
        "nonce": "n-1",
    }  # fmt: skip

    def signed(claims: dict[str, Any], with_key: RSAKey = key) -> str:
        return jwt.encode({"alg": "RS256", "kid": with_key.kid}, claims, with_key)

    async def check(claims: dict[str, Any], **how: Any) -> dict[str, Any]:
        token = how.pop("token", None) or signed(claims)
        return await oidc._verified(discovery, provider, token, **{"nonce": "n-1", **how})

    assert (await check(good))["sub"] == ALICE
    assert (await check(good | {"aud": ["hypervision", "other"], "azp": "hypervision"}))["sub"]
    for wrong in (
        {"iss": "https://another.example"},
        {"aud": "another-client"},
        {"aud": ["hypervision", "other"]},  # several audiences and no azp of ours
        {"exp": now - 120},  # beyond the 60 s of leeway
        {"iat": None},
        {"nonce": "n-2"},
        {"sub": ""},
    ):
        claims = {k: v for k, v in (good | wrong).items() if v is not None}
        with pytest.raises(oidc.SignInFailed):
            await check(claims)
    stranger = RSAKey.generate_key(2048, parameters={"kid": "ours"})
    with pytest.raises(oidc.SignInFailed):  # another key of the same name
        await check(good, token=signed(good, stranger))
    unsigned = (
        ".".join(
            base64.urlsafe_b64encode(json.dumps(part).encode()).decode().rstrip("=")
            for part in ({"alg": "none", "typ": "JWT"}, good)
        )
        + "."
    )
    with pytest.raises(oidc.SignInFailed):
        await check(good, token=unsigned)
    # A key not seen yet: the keys are read again (the provider's real ones), still refused.
    rotated = RSAKey.generate_key(2048, parameters={"kid": "new"})
    with pytest.raises(oidc.SignInFailed):
        await check(good, token=signed(good, rotated))
    assert "ours" not in [k.kid for k in known.keys.keys]  # the provider's keys, read again

    # A signed userinfo answer: no nonce nor times required; issuer and audience when present.
    known.keys = KeySet([key])
    info = {"sub": ALICE, "org": "prefecture-75", "iss": issuer, "aud": "hypervision"}
    assert (await check(info, nonce=None, id_token=False))["org"] == "prefecture-75"
    assert (await check({"sub": ALICE, "org": "x"}, nonce=None, id_token=False))["org"] == "x"
    with pytest.raises(oidc.SignInFailed):
        await check(info | {"iss": "https://another.example"}, nonce=None, id_token=False)


async def test_back_channel_logout_ends_the_sessions_opened_through_the_provider(
    app: FastAPI, client: AsyncClient, provider_http: AsyncClient, issuer: str, new_client: Any
) -> None:
    """The provider's server-to-server logout (its logout token signed with a key of ours,
    put among the provider's known keys): our sessions opened through it end; a token that
    is not a logout token ends nothing."""
    await make_org(app, "PREF75")
    await make_user(app, "locale", "PREF75")  # a local session, which stays
    local: AsyncClient = await new_client()
    assert (
        await local.post("/connexion", data={"username": "locale", "password": PASSWORD})
    ).is_redirect
    assert (await sign_in_through(client, provider_http)).status_code == 200
    other = await new_client()
    assert (await sign_in_through(other, provider_http)).status_code == 200
    known = await oidc.discovery_of(app.state, app.state.settings).get(
        app.state.settings.oidc_providers[0]
    )
    key = RSAKey.generate_key(2048, parameters={"kid": "logout"})
    known.keys = KeySet([key])
    now = int(time.time())
    good = {
        "iss": issuer, "aud": "hypervision", "iat": now, "jti": "j-1", "sub": ALICE,
        "events": {oidc.BACKCHANNEL_EVENT: {}},
    }  # fmt: skip

    async def send(claims: dict[str, Any]) -> httpx.Response:
        token = jwt.encode({"alg": "RS256", "kid": "logout"}, claims, key)
        return await local.post("/connexion/oidc/kc/deconnexion", data={"logout_token": token})

    wrongs: list[dict[str, Any]] = [
        {"nonce": "n"},  # an ID token, not a logout token
        {"events": {}},
        {"jti": None},
        {"sub": None},  # neither sub nor sid
        {"aud": "another-client"},
        {"iat": now - 3600},
    ]
    for wrong in wrongs:
        refused = await send({k: v for k, v in (good | wrong).items() if v is not None})
        assert refused.status_code == 400, wrong
        assert refused.json()["error"] == "invalid_request"
    assert (await client.get("/api/v1/auth/me")).status_code == 200
    done = await send(good)
    assert done.status_code == 200
    assert (await client.get("/api/v1/auth/me")).status_code == 401
    assert (await other.get("/api/v1/auth/me")).status_code == 401
    assert (await local.get("/api/v1/auth/me")).status_code == 200  # the local session stays
    async with tx(app) as session:
        rows = list(
            await session.scalars(
                select(AuditRecord)
                .where(AuditRecord.action == "auth.sign_out")
                .order_by(AuditRecord.qid)
            )
        )
        outbox = list(
            await session.scalars(select(OutboxEvent).where(OutboxEvent.type == "identity.revoke"))
        )
    assert [r.decision for r in rows] == ["denied"] * 6 + ["allowed"]
    assert rows[-1].detail == {"method": "oidc", "provider": "kc", "channel": "back", "sessions": 2}
    assert len(outbox) == 2  # each session's live streams are told to close

    # By the provider's session id alone: only the session that carries it.
    assert (await sign_in_through(client, provider_http)).status_code == 200
    assert (await sign_in_through(other, provider_http)).status_code == 200
    async with tx(app) as session:
        first = await session.scalar(
            select(AuthSession)
            .where(AuthSession.revoked_at.is_(None), AuthSession.oidc_provider == "kc")
            .order_by(AuthSession.created_at)
        )
        assert first is not None
        first.oidc_sid = "sid-1"
    known.keys = KeySet([key])  # the sign-ins above read the provider's own keys again
    sid_only = {k: v for k, v in good.items() if k != "sub"} | {"sid": "sid-1", "jti": "j-2"}
    assert (await send(sid_only)).status_code == 200
    assert (await client.get("/api/v1/auth/me")).status_code == 401
    assert (await other.get("/api/v1/auth/me")).status_code == 200


async def test_the_organisation_networks_filter_single_sign_on_too(
    app: FastAPI, client: AsyncClient, provider_http: AsyncClient, new_client: Any
) -> None:
    """Filtered upstream (docs/adr/0038): the organisation the claims map to decides; the
    refusal comes before any account is created, and is audited with the address."""
    org = await make_org(app, "PREF75")
    async with tx(app) as session:
        found = await session.get(type(org), org.id)
        assert found is not None
        found.allowed_networks = ["198.51.100.0/24"]
    refused = await sign_in_through(client, provider_http)
    assert refused.status_code == 403
    assert "Connexion refusée depuis cette adresse réseau." in refused.text
    assert "hv_session" not in client.cookies
    async with tx(app) as session:
        assert list(await session.scalars(select(User))) == []
        [record] = await session.scalars(
            select(AuditRecord).where(AuditRecord.action == "auth.network_refused")
        )
        assert record.decision == "denied" and record.client_address == "203.0.113.7"
        assert record.actor_name == "kc:alice-sub"
        found = await session.get(type(org), org.id)
        assert found is not None
        found.allowed_networks = ["203.0.113.0/24"]
    other = await new_client()  # 203.0.113.8: inside now
    assert (await sign_in_through(other, provider_http)).status_code == 200
    assert "hv_session" in other.cookies
