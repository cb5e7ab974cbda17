"""Request-scoped dependencies for who is acting: the principal behind the bearer token or
the session cookie (CSRF-checked), and the password hasher."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from hypervision.core.cookies import SESSION_COOKIE
from hypervision.core.deps import DbSession, SettingsDep
from hypervision.core.errors import Forbidden, Unauthorized
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
    )


PasswordsDep = Annotated[Passwords, Depends(get_passwords)]


async def get_principal(request: Request, session: DbSession, settings: SettingsDep) -> Principal:
    """Bearer token (API clients, ``/auth/token``) or session cookie (browser, CSRF-checked)."""
    client = client_of(request)
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized(
                "En-tête Authorization invalide : « Bearer <jeton> » attendu.",
                "Invalid Authorization header: expected 'Bearer <token>'.",
            )
        principal = await auth.resolve(
            session=session,
            settings=settings,
            token=token.strip(),
            kind=SessionKind.BEARER,
            client=client,
        )
    elif cookie := request.cookies.get(SESSION_COOKIE):
        principal = await auth.resolve(
            session=session, settings=settings, token=cookie, kind=SessionKind.WEB, client=client
        )
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
