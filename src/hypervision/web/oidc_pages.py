"""Sign-in through an OpenID Connect provider (docs/adr/0033): the start, which sends the
browser to the provider, and the return, which opens a session as the local sign-in does."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from hypervision.config import OidcProvider, Settings
from hypervision.core import cookies
from hypervision.core.cookies import SESSION_COOKIE
from hypervision.core.deps import SettingsDep
from hypervision.core.errors import AppError, NotFound
from hypervision.core.i18n import LOCALE_COOKIE, pick_locale
from hypervision.follows import service as prefs
from hypervision.identity import oidc
from hypervision.identity.deps import client_of
from hypervision.web.misc_pages import home_of
from hypervision.web.render import in_words, render
from hypervision.web.session import safe_next

router = APIRouter(include_in_schema=False)


def _provider(settings: Settings, name: str) -> OidcProvider:
    provider = settings.oidc_provider(name)
    if provider is None:
        raise NotFound("Fournisseur d'identité inconnu.", "Unknown identity provider.")
    return provider


def _refused(request: Request, error: AppError, suite: str = "") -> Response:
    context: dict[str, object] = {
        "next": safe_next(suite),
        "expired": False,
        "username": "",
        "step": "password",
        "error": in_words(request, error),
    }
    response = render(request, "sign_in.html", context, status_code=error.status)
    clear_flow(response)
    return response


def clear_flow(response: Response) -> None:
    response.delete_cookie(oidc.FLOW_COOKIE, path=oidc.FLOW_PATH)


@router.get("/connexion/oidc/{provider}", response_class=HTMLResponse)
async def start(
    request: Request, settings: SettingsDep, provider: str, suite: str | None = None
) -> Response:
    request.state.locale = pick_locale(request.cookies.get(LOCALE_COOKIE))
    chosen = _provider(settings, provider)
    discovery = oidc.discovery_of(request.app.state, settings)
    try:
        known = await discovery.get(chosen)
    except AppError as error:
        return _refused(request, error, suite or "")
    url, flow = oidc.start(settings, chosen, known.metadata, safe_next(suite) if suite else "")
    response = RedirectResponse(url, status_code=303)
    # Lax, not Strict: the provider sends the browser back with a top-level GET from its site.
    response.set_cookie(
        oidc.FLOW_COOKIE,
        flow,
        max_age=oidc.FLOW_SECONDS,
        path=oidc.FLOW_PATH,
        secure=settings.cookie_secure,
        httponly=True,
        samesite="lax",
    )
    return response


@router.get("/connexion/oidc/{provider}/retour", response_class=HTMLResponse)
async def back(
    request: Request,
    settings: SettingsDep,
    provider: str,
    code: str = "",
    state: str = "",
    error: str = "",
) -> Response:
    request.state.locale = pick_locale(request.cookies.get(LOCALE_COOKIE))
    chosen = _provider(settings, provider)
    sessions, client = request.app.state.sessions, client_of(request)
    flow = oidc.unseal(settings, request.cookies.get(oidc.FLOW_COOKIE))
    if (
        flow is None
        or flow.provider != chosen.name
        or not hmac.compare_digest(flow.state.encode(), state.encode())
    ):
        refusal: AppError = oidc.flow_expired()
        await oidc.refuse(sessions=sessions, provider=chosen, client=client, error=refusal)
        return _refused(request, refusal)
    if error or not code:
        refusal = oidc.SignInFailed(
            "La connexion a été annulée ou refusée par le fournisseur d'identité.",
            "The sign-in was cancelled or refused by the identity provider.",
            code="oidc_cancelled",
        )
        await oidc.refuse(sessions=sessions, provider=chosen, client=client, error=refusal)
        return _refused(request, refusal, flow.suite)
    discovery = oidc.discovery_of(request.app.state, settings)
    try:
        proven = await oidc.redeem(
            settings=settings, discovery=discovery, provider=chosen, flow=flow, code=code[:2000]
        )
    except oidc.SignInFailed as failed:
        await oidc.refuse(sessions=sessions, provider=chosen, client=client, error=failed)
        return _refused(request, failed, flow.suite)
    result = await oidc.sign_in(
        sessions=sessions,
        settings=settings,
        provider=chosen,
        proven=proven,
        client=client,
        replaces=request.cookies.get(SESSION_COOKIE),
    )
    if isinstance(result, AppError):
        return _refused(request, result, flow.suite)
    target = safe_next(flow.suite) if flow.suite else home_of(result.user.roles)
    # A page of ours, not a redirect: the session cookie is SameSite=Strict, and a browser
    # does not send it on a redirect chain that began on the provider's site; the page's own
    # navigation to the target is same-site, so the cookie goes with it.
    response = render(request, "signed_in.html", {"target": target})
    clear_flow(response)
    cookies.set_session(response, result.token, settings)
    cookies.set_signed_in_marker(response)
    async with sessions() as session:
        saved = (await prefs.preference(session, result.user.id)).locale
    if saved:
        cookies.set_locale(response, saved)
    return response


@router.post("/connexion/oidc/{provider}/deconnexion")
async def back_channel_logout(
    request: Request,
    settings: SettingsDep,
    provider: str,
    logout_token: Annotated[str, Form(max_length=20_000)] = "",
) -> Response:
    """The provider's back-channel logout (a server-to-server call with a signed logout token:
    no cookie, no CSRF token; docs/adr/0033)."""
    chosen = _provider(settings, provider)
    try:
        await oidc.back_channel_logout(
            sessions=request.app.state.sessions,
            discovery=oidc.discovery_of(request.app.state, settings),
            provider=chosen,
            logout_token=logout_token,
            client=client_of(request),
        )
    except oidc.SignInFailed as failed:
        body = {"error": "invalid_request", "error_description": failed.en}
        return JSONResponse(body, status_code=400)
    return Response(status_code=200)
