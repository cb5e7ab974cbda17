"""OpenID Connect sign-in beside local accounts (docs/adr/0033).

Authorization code flow with PKCE (S256), ``state`` and ``nonce``. What the browser must bring
back (state, nonce, code verifier, the page to return to) travels in a short-lived cookie
signed with the server's secret key, so that any replica can finish a sign-in another one
started. The ID token (and a signed userinfo answer) is checked with joserfc against the
provider's published keys. Claims become an organisation and roles through the rules the
administrator wrote in ``HYPERVISION_OIDC_PROVIDERS``; clearance and need-to-know groups come
from the provider only when a rule maps them. An account is linked to the provider's
(issuer, subject) pair in ``user_identities``, never to a local account by name or e-mail.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from authlib.common.security import generate_token
from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hypervision.audit import service as audit
from hypervision.config import LOOPBACK_HOSTS, ClaimToList, ClaimToValue, OidcProvider, Settings
from hypervision.core import metrics
from hypervision.core.errors import AppError, Forbidden
from hypervision.db import transaction, utcnow
from hypervision.identity import auth, networks
from hypervision.identity.models import (
    AuthSession,
    NeedToKnowGroup,
    Organisation,
    SessionKind,
    User,
    UserGroup,
    UserIdentity,
)
from hypervision.identity.revocation import announce_revocation

log = logging.getLogger("hypervision.oidc")

FLOW_COOKIE = "hv_oidc"
FLOW_PATH = "/connexion/oidc/"
FLOW_SECONDS = 600
LEEWAY_SECONDS = 60
# Asymmetric signatures only: an HS256 ID token would be signed with the client secret, which
# public clients do not have; "none" is never accepted.
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]
USERNAME_CHARS = re.compile(r"[^a-z0-9._-]+")


class SignInFailed(AppError):
    """A sign-in through a provider that cannot complete: the provider's answer was wrong or
    missing (400), or the provider could not be reached (502)."""

    status, code = 400, "oidc_failed"
    fr = "La connexion par le fournisseur d'identité a échoué : recommencez."
    en = "Signing in through the identity provider failed: start again."


class Unreachable(SignInFailed):
    status, code = 502, "oidc_unreachable"
    fr = "Le fournisseur d'identité ne répond pas : réessayez dans un instant."
    en = "The identity provider does not answer: try again in a moment."


def flow_expired() -> SignInFailed:
    return SignInFailed(
        "Cette connexion a expiré ou ne vient pas de ce navigateur : recommencez depuis la page "
        "de connexion.",
        "This sign-in has expired or was not started in this browser: start again from the "
        "sign-in page.",
        code="oidc_state",
    )


def no_organisation() -> Forbidden:
    return Forbidden(
        "Votre compte n'est rattaché à aucune organisation de la plateforme : contactez "
        "l'administrateur.",
        "Your account belongs to no organisation of the platform: contact the administrator.",
        code="oidc_no_organisation",
    )


def account_disabled() -> Forbidden:
    return Forbidden(
        "Ce compte est désactivé : contactez l'administrateur.",
        "This account is disabled: contact the administrator.",
        code="account_disabled",
    )


# --- the provider's metadata and keys ------------------------------------------------------


@dataclass(frozen=True)
class Metadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    end_session_endpoint: str | None
    token_auth_methods: tuple[str, ...]


@dataclass
class _Known:
    metadata: Metadata
    keys: KeySet
    until: float


@dataclass
class Discovery:
    """Each provider's discovery document and keys, read once per ``oidc_discovery_seconds``
    (and the keys again at once when a token names a key not seen yet: rotation)."""

    settings: Settings
    known: dict[str, _Known] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def get(self, provider: OidcProvider, *, fresh_keys: bool = False) -> _Known:
        async with self.lock:
            found = self.known.get(provider.name)
            if found is None or found.until <= time.monotonic():
                metadata = _metadata(provider, await self._json(provider.issuer + DISCOVERY))
                keys = await self._keys(metadata)
                until = time.monotonic() + self.settings.oidc_discovery_seconds
                found = _Known(metadata, keys, until)
                self.known[provider.name] = found
            elif fresh_keys:
                found.keys = await self._keys(found.metadata)
            return found

    async def _keys(self, metadata: Metadata) -> KeySet:
        try:
            return KeySet.import_key_set(await self._json(metadata.jwks_uri))
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            log.warning("provider keys unreadable at %s: %s", metadata.jwks_uri, exc)
            raise Unreachable() from None

    async def _json(self, url: str) -> Any:
        try:
            async with http_client(self.settings) as client:
                response = await client.get(url, headers={"Accept": "application/json"})
            response.raise_for_status()
            return response.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("provider document unreadable at %s: %s", url, exc)
            raise Unreachable() from None


DISCOVERY = "/.well-known/openid-configuration"


def http_client(settings: Settings) -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=settings.oidc_timeout_seconds, follow_redirects=False)


def _metadata(provider: OidcProvider, document: Any) -> Metadata:
    """The endpoints of a discovery document, refused unless it is the configured issuer's
    (OpenID Connect Discovery 4.3) and its endpoints are https (or loopback) URLs."""
    if not isinstance(document, dict) or document.get("issuer") != provider.issuer:
        log.warning("provider %s: discovery names another issuer", provider.name)
        raise Unreachable()

    def url(key: str, *, required: bool = True) -> str | None:
        value = document.get(key)
        if value is None and not required:
            return None
        parts = urlsplit(value) if isinstance(value, str) else None
        if parts is None or not (
            parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS)
        ):
            log.warning("provider %s: bad %s in discovery", provider.name, key)
            raise Unreachable()
        return value

    methods = document.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    return Metadata(
        issuer=provider.issuer,
        authorization_endpoint=str(url("authorization_endpoint")),
        token_endpoint=str(url("token_endpoint")),
        jwks_uri=str(url("jwks_uri")),
        userinfo_endpoint=url("userinfo_endpoint", required=False),
        end_session_endpoint=url("end_session_endpoint", required=False),
        token_auth_methods=tuple(str(m) for m in methods),
    )


def discovery_of(state: Any, settings: Settings) -> Discovery:
    """The application's discovery cache (made on first use)."""
    found = getattr(state, "oidc_discovery", None)
    if not isinstance(found, Discovery):
        found = Discovery(settings)
        state.oidc_discovery = found
    return found


# --- the browser's side of the flow ---------------------------------------------------------


@dataclass(frozen=True)
class Flow:
    provider: str
    state: str
    nonce: str
    verifier: str
    suite: str


def redirect_uri(settings: Settings, provider: OidcProvider) -> str:
    return f"{settings.public_url.rstrip('/')}/connexion/oidc/{provider.name}/retour"


def start(
    settings: Settings, provider: OidcProvider, metadata: Metadata, suite: str
) -> tuple[str, str]:
    """The provider's authorization URL and the signed flow cookie's value."""
    flow = Flow(
        provider=provider.name,
        state=generate_token(43),
        nonce=generate_token(43),
        verifier=generate_token(64),
        suite=suite,
    )
    url = str(
        add_params_to_uri(
            metadata.authorization_endpoint,
            [
                ("response_type", "code"),
                ("client_id", provider.client_id),
                ("redirect_uri", redirect_uri(settings, provider)),
                ("scope", provider.scopes),
                ("state", flow.state),
                ("nonce", flow.nonce),
                ("code_challenge", create_s256_code_challenge(flow.verifier)),
                ("code_challenge_method", "S256"),
            ],
        )
    )
    return url, seal(settings, flow)


def _signature(settings: Settings, body: str) -> str:
    key = settings.secret_key.encode()
    return hmac.new(key, f"oidc-flow|{body}".encode(), hashlib.sha256).hexdigest()


def seal(settings: Settings, flow: Flow, now: float | None = None) -> str:
    data = {**flow.__dict__, "expires": int((now or time.time()) + FLOW_SECONDS)}
    body = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode()
    return f"{body}.{_signature(settings, body)}"


def unseal(settings: Settings, value: str | None) -> Flow | None:
    """The flow of a cookie made by :func:`seal`, or None (missing, forged, expired)."""
    if not value:
        return None
    body, _, signature = value.rpartition(".")
    if not hmac.compare_digest(signature.encode(), _signature(settings, body).encode()):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(body.encode()))
        if int(data.pop("expires")) < time.time():
            return None
        return Flow(**{k: str(v) for k, v in data.items()})
    except (ValueError, TypeError, KeyError):
        return None


# --- the callback ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Proven:
    """What the provider vouched for: its ID token (kept for the end of the session) and the
    claims of the ID token, completed by the userinfo answer."""

    id_token: str
    claims: dict[str, Any]


async def redeem(
    *, settings: Settings, discovery: Discovery, provider: OidcProvider, flow: Flow, code: str
) -> Proven:
    """Exchanges the code, checks the ID token (and the userinfo answer when needed)."""
    known = await discovery.get(provider)
    metadata = known.metadata
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri(settings, provider),
        "code_verifier": flow.verifier,
    }
    basic = None
    if provider.client_secret and "client_secret_basic" in metadata.token_auth_methods:
        basic = httpx.BasicAuth(provider.client_id, provider.client_secret)
    else:
        data["client_id"] = provider.client_id
        if provider.client_secret:
            data["client_secret"] = provider.client_secret
    try:
        async with http_client(settings) as client:
            response = await client.post(
                metadata.token_endpoint,
                data=data,
                auth=basic or httpx.USE_CLIENT_DEFAULT,
                headers={"Accept": "application/json"},
            )
        answer = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        log.warning("provider %s: token endpoint unreadable: %s", provider.name, exc)
        raise Unreachable() from None
    if response.status_code != 200 or not isinstance(answer, dict):
        error = answer.get("error") if isinstance(answer, dict) else None
        log.warning("provider %s refused the code: %s", provider.name, error)
        raise SignInFailed(
            "Le fournisseur d'identité a refusé le code de connexion (déjà utilisé ou expiré) : "
            "recommencez.",
            "The identity provider refused the sign-in code (already used or expired): start "
            "again.",
            code="oidc_code_refused",
        )
    id_token = answer.get("id_token")
    if not isinstance(id_token, str):
        raise SignInFailed()
    claims = await _verified(discovery, provider, id_token, nonce=flow.nonce)
    access_token = answer.get("access_token")
    if _missing_claims(provider, claims) and metadata.userinfo_endpoint and access_token:
        extra = await _userinfo(
            settings, discovery, provider, str(metadata.userinfo_endpoint), str(access_token)
        )
        if extra.get("sub") != claims["sub"]:
            log.warning("provider %s: userinfo is about another subject", provider.name)
            raise SignInFailed()
        claims = {**extra, **claims}
    return Proven(id_token=id_token, claims=claims)


async def _verified(
    discovery: Discovery,
    provider: OidcProvider,
    token: str,
    *,
    nonce: str | None,
    id_token: bool = True,
    subject: bool = True,
) -> dict[str, Any]:
    """The claims of a JWT signed with one of the provider's keys, checked: issuer, audience,
    expiry, issue time and nonce for an ID token; issuer and audience when a signed userinfo
    answer carries them."""
    known = await discovery.get(provider)
    try:
        decoded = jwt.decode(token, known.keys, algorithms=ALGORITHMS)
    except JoseError:
        # Signed with a key not among those read: the provider may have rotated its keys
        # since; read them again, once, and try again.
        known = await discovery.get(provider, fresh_keys=True)
        try:
            decoded = jwt.decode(token, known.keys, algorithms=ALGORITHMS)
        except JoseError as again:
            log.warning("provider %s: bad signature: %s", provider.name, again)
            raise SignInFailed() from None
    claims = dict(decoded.claims)
    rules: dict[str, Any] = {
        "iss": {"essential": id_token, "value": provider.issuer},
        "aud": {"essential": id_token, "value": provider.client_id},
        "sub": {"essential": subject},
    }
    if id_token:
        rules |= {
            "exp": {"essential": True},
            "iat": {"essential": True},
            "nonce": {"essential": True, "value": nonce},
        }
    try:
        JWTClaimsRegistry(leeway=LEEWAY_SECONDS, **rules).validate(claims)
    except JoseError as exc:
        log.warning("provider %s: token refused: %s", provider.name, exc)
        raise SignInFailed() from None
    audience = claims.get("aud")
    if (
        id_token
        and isinstance(audience, list)
        and len(audience) > 1
        and claims.get("azp") != provider.client_id
    ):
        raise SignInFailed()
    if subject and (not isinstance(claims.get("sub"), str) or not claims["sub"]):
        raise SignInFailed()
    return claims


async def _userinfo(
    settings: Settings, discovery: Discovery, provider: OidcProvider, url: str, token: str
) -> dict[str, Any]:
    """The userinfo answer: JSON, or a JWT signed by the provider (ProConnect), checked."""
    try:
        async with http_client(settings) as client:
            response = await client.get(url, headers={"Authorization": f"Bearer {token}"})
        response.raise_for_status()
    except httpx.HTTPError as exc:
        log.warning("provider %s: userinfo unreadable: %s", provider.name, exc)
        raise Unreachable() from None
    if response.headers.get("content-type", "").split(";")[0].strip() == "application/jwt":
        signed = response.text.strip()
        return await _verified(discovery, provider, signed, nonce=None, id_token=False)
    try:
        answer = response.json()
    except ValueError:
        raise SignInFailed() from None
    if not isinstance(answer, dict):
        raise SignInFailed()
    return answer


# --- the administrator's rules -------------------------------------------------------------


def claim_values(claims: Mapping[str, Any], name: str) -> list[str]:
    """A claim's values: a string, or the strings of a list; ``a.b`` reaches into an object
    (Keycloak's ``realm_access.roles``) when no claim has that very name."""
    value: Any = claims.get(name)
    if value is None and "." in name:
        value = claims
        for part in name.split("."):
            value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, str | int) and not isinstance(value, bool):
        return [str(value)]
    if isinstance(value, list):
        return [str(v) for v in value if isinstance(v, str | int) and not isinstance(v, bool)]
    return []


def map_value(rule: ClaimToValue, claims: Mapping[str, Any]) -> str | None:
    for value in claim_values(claims, rule.claim):
        if value in rule.map:
            return rule.map[value]
    return rule.default


def map_list(rule: ClaimToList, claims: Mapping[str, Any]) -> list[str]:
    found: set[str] = set()
    matched = False
    for value in claim_values(claims, rule.claim):
        if value in rule.map:
            matched = True
            found.update(rule.map[value])
    return sorted(found if matched else set(rule.default))


def _missing_claims(provider: OidcProvider, claims: Mapping[str, Any]) -> bool:
    rules: Iterable[ClaimToValue | ClaimToList | None] = (
        provider.organisation,
        provider.roles,
        provider.clearance,
        provider.groups,
    )
    wanted = [rule.claim for rule in rules if rule is not None]
    wanted += ["preferred_username", "email", "name"]
    return any(not claim_values(claims, name) for name in wanted)


def _username_base(claims: Mapping[str, Any]) -> str:
    for name in ("preferred_username", "email", "sub"):
        values = claim_values(claims, name)
        if values:
            cleaned = USERNAME_CHARS.sub("-", values[0].strip().lower()).strip("-.")[:56]
            if len(cleaned) >= 2:
                return cleaned
    return "sso"


async def _free_username(session: AsyncSession, base: str) -> str:
    taken = set(await session.scalars(select(User.username).where(User.username.like(f"{base}%"))))
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def _full_name(claims: Mapping[str, Any], username: str) -> str:
    name = " ".join(claim_values(claims, "name"))
    if not name:
        name = " ".join(
            claim_values(claims, "given_name") + claim_values(claims, "usual_name")
            or claim_values(claims, "family_name")
        )
    return (name.strip() or username)[:200]


async def sign_in(
    *,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    provider: OidcProvider,
    proven: Proven,
    client: auth.Client,
    replaces: str | None = None,
) -> auth.SignedIn | AppError:
    """Links (or creates) the account of the provider's subject, applies the administrator's
    rules, opens a web session. Refusals are audited and returned, as the local sign-in's."""
    claims = proven.claims
    subject = str(claims["sub"])
    who = f"{provider.name}:{subject}"[:100]
    method = {"method": "oidc", "provider": provider.name}
    async with transaction(sessions) as session:
        identity = await session.scalar(
            select(UserIdentity).where(
                UserIdentity.issuer == provider.issuer, UserIdentity.subject == subject
            )
        )
        user = await session.get(User, identity.user_id) if identity else None
        if user is not None and (not user.is_active or user.is_machine):
            refused = {**method, "reason": "disabled"}
            await _audit(session, user.username, client, "denied", refused, user)
            return account_disabled()
        code = map_value(provider.organisation, claims)
        org = (
            await session.scalar(select(Organisation).where(Organisation.code == code))
            if code
            else None
        )
        if org is None:
            reason = "no_organisation" if code is None else "unknown_organisation"
            name = user.username if user else who
            await _audit(session, name, client, "denied", {**method, "reason": reason}, user)
            return no_organisation()
        # Filtered upstream (docs/adr/0038): the organisation the account is to belong to.
        upstream = networks.sign_in_refusal(org, client.address, client.certificate)
        if upstream is not None:
            name = user.username if user else who
            await auth.audit_upstream_refusal(session, name, client, upstream, user)
            metrics.sign_in_failed("network")
            return upstream
        now = utcnow()
        before = _rights(user) if user else None
        if user is None:
            username = await _free_username(session, _username_base(claims))
            emails = claim_values(claims, "email")
            user = User(
                username=username,
                full_name=_full_name(claims, username),
                email=emails[0][:254] if emails else None,
                organisation_id=org.id,
                roles=[],
                clearance=settings.label_levels[0],
                password_hash=None,
            )
            session.add(user)
            await session.flush()
            session.add(
                UserIdentity(
                    issuer=provider.issuer,
                    subject=subject,
                    user_id=user.id,
                    created_at=now,
                    last_seen_at=now,
                )
            )
        else:
            assert identity is not None
            identity.last_seen_at = now
        user.organisation_id = org.id
        if provider.roles is not None:
            user.roles = map_list(provider.roles, claims)
        if provider.clearance is not None:
            user.clearance = map_value(provider.clearance, claims) or settings.label_levels[0]
        groups = None
        if provider.groups is not None:
            groups = await _set_groups(session, user, map_list(provider.groups, claims))
        after = _rights(user) | ({"groups": groups} if groups is not None else {})
        if before != after:
            await audit.record(
                session=session,
                actor=None,
                actor_name=who,
                action="user.create" if before is None else "user.update",
                surface="auth",
                resource_type="user",
                resource_ids=[user.id],
                detail={**method, "username": user.username, "rights": after},
                request_id=client.request_id,
                client_address=client.address,
            )
        if replaces:
            await auth.end_session(session=session, token=replaces)
        signed_in = await auth.open_session(
            session, settings, user, SessionKind.WEB, client, second_factor_elsewhere=True
        )
        signed_in.session.oidc_provider = provider.name
        signed_in.session.id_token = proven.id_token
        sid = claims.get("sid")
        signed_in.session.oidc_sid = sid[:255] if isinstance(sid, str) else None
        await _audit(session, user.username, client, "allowed", {**method, "kind": "web"}, user)
        return signed_in


def _rights(user: User | None) -> dict[str, Any]:
    if user is None:
        return {}
    return {
        "organisation_id": str(user.organisation_id),
        "roles": sorted(user.roles),
        "clearance": user.clearance,
    }


async def _set_groups(session: AsyncSession, user: User, codes: list[str]) -> list[str]:
    """The user's need-to-know groups become ``codes`` (those that exist; an unknown code in
    the rules is the administrator's to fix, logged)."""
    query = select(NeedToKnowGroup).where(NeedToKnowGroup.code.in_(codes))
    wanted = list(await session.scalars(query))
    unknown = set(codes) - {g.code for g in wanted}
    if unknown:
        log.warning("oidc group rules name unknown groups: %s", ", ".join(sorted(unknown)))
    current = list(await session.scalars(select(UserGroup).where(UserGroup.user_id == user.id)))
    keep = {g.id for g in wanted}
    for row in current:
        if row.group_id not in keep:
            await session.delete(row)
    have = {row.group_id for row in current}
    for group in wanted:
        if group.id not in have:
            session.add(UserGroup(user_id=user.id, group_id=group.id))
    await session.flush()
    return sorted(g.code for g in wanted)


async def refuse(
    *,
    sessions: async_sessionmaker[AsyncSession],
    provider: OidcProvider,
    client: auth.Client,
    error: AppError,
) -> None:
    """Audits a sign-in through ``provider`` refused before any account was known."""
    async with transaction(sessions) as session:
        detail = {"method": "oidc", "provider": provider.name, "reason": error.code}
        await _audit(session, f"{provider.name}:?", client, "denied", detail)


async def _audit(
    session: AsyncSession,
    name: str,
    client: auth.Client,
    decision: str,
    detail: dict[str, str],
    user: User | None = None,
) -> None:
    await auth.audit_login(session, name, client, decision, detail, user)


BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_MAX_AGE = 600


def logout_refused() -> SignInFailed:
    return SignInFailed(
        "Jeton de déconnexion invalide.", "Invalid logout token.", code="invalid_request"
    )


async def back_channel_logout(
    *,
    sessions: async_sessionmaker[AsyncSession],
    discovery: Discovery,
    provider: OidcProvider,
    logout_token: str,
    client: auth.Client,
) -> int:
    """OpenID Connect Back-Channel Logout 1.0: the provider says a person's session there has
    ended; ours opened through it end too, with their live streams. The logout token is
    checked like an ID token (signature, issuer, audience, issue time within ten minutes), and
    as the specification asks: the logout event, a ``sub`` or a ``sid``, a ``jti``, no
    ``nonce``. Returns the number of sessions ended; raises :class:`SignInFailed` (400)."""
    try:
        claims = await _logout_claims(discovery, provider, logout_token)
    except SignInFailed:
        async with transaction(sessions) as session:
            detail = {"method": "oidc", "provider": provider.name, "reason": "logout_token"}
            await audit.record(
                session=session, actor=None, actor_name=f"{provider.name}:?",
                action="auth.sign_out", surface="auth", decision="denied", detail=detail,
                request_id=client.request_id, client_address=client.address,
            )  # fmt: skip
        raise
    subject, sid = claims.get("sub"), claims.get("sid")
    async with transaction(sessions) as session:
        query = select(AuthSession).where(
            AuthSession.oidc_provider == provider.name, AuthSession.revoked_at.is_(None)
        )
        if isinstance(subject, str):
            identity = await session.scalar(
                select(UserIdentity).where(
                    UserIdentity.issuer == provider.issuer, UserIdentity.subject == subject
                )
            )
            if identity is None:
                return 0
            query = query.where(AuthSession.user_id == identity.user_id)
        if isinstance(sid, str):
            query = query.where(AuthSession.oidc_sid == sid)
        ended = list(await session.scalars(query))
        now = utcnow()
        for row in ended:
            row.revoked_at = now
            await announce_revocation(
                session=session, user_id=row.user_id, reason="signed_out", session_id=row.id
            )
        await audit.record(
            session=session,
            actor=None,
            actor_name=f"{provider.name}:{subject or sid}"[:100],
            action="auth.sign_out",
            surface="auth",
            resource_type="user",
            resource_ids=sorted({row.user_id for row in ended}),
            detail={
                "method": "oidc", "provider": provider.name, "channel": "back",
                "sessions": len(ended),
            },
            request_id=client.request_id,
            client_address=client.address,
        )  # fmt: skip
        return len(ended)


async def _logout_claims(
    discovery: Discovery, provider: OidcProvider, token: str
) -> dict[str, Any]:
    claims = await _verified(discovery, provider, token, nonce=None, id_token=False, subject=False)
    events = claims.get("events")
    issued = claims.get("iat")
    if (
        not isinstance(claims.get("iss"), str)
        or claims.get("aud") is None
        or not isinstance(issued, int)
        or abs(time.time() - issued) > LOGOUT_TOKEN_MAX_AGE + LEEWAY_SECONDS
        or not isinstance(claims.get("jti"), str)
        or not isinstance(events, dict)
        or not isinstance(events.get(BACKCHANNEL_EVENT), dict)
        or "nonce" in claims
        or not (isinstance(claims.get("sub"), str) or isinstance(claims.get("sid"), str))
    ):
        raise logout_refused()
    return claims


def end_session_url(
    settings: Settings, metadata: Metadata, provider: OidcProvider, id_token: str | None
) -> str | None:
    """RP-initiated logout at the provider, back to our sign-in page."""
    if not metadata.end_session_endpoint:
        return None
    params = [
        ("client_id", provider.client_id),
        ("post_logout_redirect_uri", f"{settings.public_url.rstrip('/')}/connexion"),
    ]
    if id_token:
        params.insert(0, ("id_token_hint", id_token))
    return str(add_params_to_uri(metadata.end_session_endpoint, params))
