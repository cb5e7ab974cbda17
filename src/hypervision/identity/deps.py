"""Request-scoped dependencies for who is acting: the principal behind the bearer token or
the session cookie (CSRF-checked), and the password hasher."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from hypervision.config import Settings
from hypervision.core.cookies import SESSION_COOKIE
from hypervision.core.deps import DbSession, SettingsDep
from hypervision.core.errors import Forbidden, Unauthorized
from hypervision.core.proxies import via_trusted_proxy
from hypervision.identity import auth, csrf
from hypervision.identity.models import SessionKind
from hypervision.identity.passwords import Passwords
from hypervision.identity.principal import Principal
from hypervision.policy.roles import Scope

CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_passwords(request: Request) -> Passwords:
    passwords: Passwords = request.app.state.passwords
    return passwords


def client_of(request: Request) -> auth.Client:
    return auth.Client(
        address=request.client.host if request.client else None,
        request_id=getattr(request.state, "request_id", None),
        certificate=certificate_verified(request),
    )


def certificate_verified(request: Request) -> bool:
    """Whether the ingress says it verified a client certificate (docs/adr/0038): its header
    (``client_cert_header``) holds the expected value, on a request relayed by a trusted proxy
    (from anyone else, the header is nobody's word)."""
    settings: Settings = request.app.state.settings
    if not settings.client_cert_header or not via_trusted_proxy(request.scope):
        return False
    sent = request.headers.getlist(settings.client_cert_header)
    return len(sent) == 1 and hmac.compare_digest(
        sent[0].strip().encode(), settings.client_cert_value.encode()
    )


PasswordsDep = Annotated[Passwords, Depends(get_passwords)]


async def get_principal(request: Request, session: DbSession, settings: SettingsDep) -> Principal:
    """Bearer token (API clients, ``/auth/token``) or session cookie (browser, CSRF-checked)."""
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized(
                "En-tête Authorization invalide : « Bearer <jeton> » attendu.",
                "Invalid Authorization header: expected 'Bearer <token>'.",
            )
        principal = await _resolve(request, session, settings, token.strip(), SessionKind.BEARER)
    elif cookie := request.cookies.get(SESSION_COOKIE):
        principal = await _resolve(request, session, settings, cookie, SessionKind.WEB)
        if request.method not in SAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER, "")
            if not csrf.matches(sent, principal.csrf_token):
                raise Forbidden(
                    "Jeton anti-CSRF manquant ou invalide.",
                    "Missing or invalid CSRF token.",
                    code="csrf_failed",
                )
    else:
        raise Unauthorized(headers={"WWW-Authenticate": "Bearer"})
    request.state.principal = principal
    return principal


async def _resolve(
    request: Request, session: DbSession, settings: SettingsDep, token: str, kind: SessionKind
) -> Principal:
    try:
        return await auth.resolve(
            session=session, settings=settings, token=token, kind=kind, client=client_of(request)
        )
    except auth.RefusedFromHere as refused:
        # A valid credential used from outside its organisation's networks: the refusal is
        # audited under its holder's name (core.errors -> audit.refusals).
        request.state.principal = refused.principal
        raise


async def get_full_principal(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    """A principal allowed past MFA enrolment: everything but enrolment needs this one."""
    if principal.scopes is not None and principal.scopes == {Scope.MFA_ENROL}:
        raise Forbidden(
            "Activez la double authentification avant de continuer.",
            "Enable two-factor authentication before going on.",
            code="mfa_enrolment_required",
        )
    return principal


AnyPrincipal = Annotated[Principal, Depends(get_principal)]
CurrentPrincipal = Annotated[Principal, Depends(get_full_principal)]
