"""Sign-in (password, then TOTP when the account has it), MFA enrolment, sign-out, language."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hypervision.config import Settings
from hypervision.core import cookies
from hypervision.core.cookies import SESSION_COOKIE, SIGNED_IN_MARKER
from hypervision.core.deps import DbSession, SettingsDep
from hypervision.core.errors import AppError, Invalid
from hypervision.core.i18n import LOCALE_COOKIE, LOCALES, pick_locale
from hypervision.follows import service as prefs
from hypervision.identity import auth, mfa, oidc, service
from hypervision.identity.api import refuse_cross_site
from hypervision.identity.deps import PasswordsDep, client_of
from hypervision.identity.models import SessionKind
from hypervision.web.misc_pages import home_of
from hypervision.web.render import in_words, render, translator
from hypervision.web.session import Officer, safe_next

router = APIRouter(include_in_schema=False)
CHALLENGE_SECONDS = 300
COOKIE_LOST = {
    True: (
        "Vous vous êtes bien identifié, mais votre navigateur n'a pas renvoyé le cookie de "
        "session : ce cookie est « Secure » et ne circule qu'en HTTPS, ou en HTTP sur "
        "l'adresse de bouclage (127.0.0.1, localhost). Ouvrez Hypervision en HTTPS ; pour un "
        "essai sans HTTPS seulement, l'administrateur peut régler "
        "HYPERVISION_COOKIE_SECURE=false.",
        "You signed in, but your browser did not send the session cookie back: it is a "
        "'Secure' cookie, sent only over HTTPS, or over HTTP to the loopback address "
        "(127.0.0.1, localhost). Open Hypervision over HTTPS; for a trial without HTTPS only, "
        "the administrator may set HYPERVISION_COOKIE_SECURE=false.",
    ),
    False: (
        "Vous vous êtes bien identifié, mais votre navigateur n'a pas renvoyé le cookie de "
        "session : autorisez les cookies pour ce site.",
        "You signed in, but your browser did not send the session cookie back: allow cookies "
        "for this site.",
    ),
}


def _challenge_signature(settings: Settings, body: str) -> str:
    key = settings.secret_key.encode()
    return hmac.new(key, f"sign-in-code|{body}".encode(), hashlib.sha256).hexdigest()


def make_challenge(settings: Settings, user_id: uuid.UUID, now: float | None = None) -> str:
    """What the code page carries instead of the password: "this account's password was right,
    a few minutes ago", signed with the server's secret key."""
    body = f"{user_id}.{int((now or time.time()) + CHALLENGE_SECONDS)}"
    return f"{body}.{_challenge_signature(settings, body)}"


def read_challenge(settings: Settings, challenge: str) -> uuid.UUID | None:
    """The account of a challenge made by :func:`make_challenge`, or None (forged, expired)."""
    body, _, signature = challenge.rpartition(".")
    user, _, expires = body.partition(".")
    expected = _challenge_signature(settings, body).encode()
    if not hmac.compare_digest(signature.encode(), expected):  # bytes: any text is refused
        return None
    try:
        if int(expires) < time.time():
            return None
        return uuid.UUID(user)
    except ValueError:
        return None


def _code_step(
    settings: Settings, *, user_id: uuid.UUID, username: str, suite: str
) -> dict[str, object]:
    return {
        "step": "code",
        "next": safe_next(suite),
        "username": username,
        "challenge": make_challenge(settings, user_id),
    }


@router.get("/", response_class=HTMLResponse)
async def home(request: Request) -> Response:
    target = "/accueil" if request.cookies.get(SESSION_COOKIE) else "/connexion"
    return RedirectResponse(target, status_code=303)


@router.get("/connexion", response_class=HTMLResponse)
async def sign_in_page(
    request: Request, settings: SettingsDep, suite: str | None = None, expiree: str = ""
) -> Response:
    request.state.locale = pick_locale(request.cookies.get(LOCALE_COOKIE))
    context: dict[str, object] = {
        "next": safe_next(suite),
        "expired": bool(expiree),
        "username": "",
        "step": "password",
    }
    if request.cookies.get(SIGNED_IN_MARKER) and not request.cookies.get(SESSION_COOKIE):
        french, english = COOKIE_LOST[settings.cookie_secure]
        context["cookie_lost"] = french if translator(request).locale == "fr" else english
        context["expired"] = False
    return render(request, "sign_in.html", context)


@router.post("/connexion", response_class=HTMLResponse)
async def sign_in(
    request: Request,
    settings: SettingsDep,
    passwords: PasswordsDep,
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    otp: Annotated[str, Form(max_length=32)] = "",
    suite: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    request.state.locale = pick_locale(request.cookies.get(LOCALE_COOKIE))
    refuse_cross_site(request)
    context: dict[str, object] = {
        "next": safe_next(suite),
        "expired": False,
        "username": username,
        "step": "password",
    }
    if not username.strip() or not password:
        context["error"] = translator(request).gettext("Enter your username and password.")
        return render(request, "sign_in.html", context, status_code=422)
    result = await auth.sign_in(
        sessions=request.app.state.sessions,
        settings=settings,
        passwords=passwords,
        username=username,
        password=password,
        otp=otp.strip() or None,
        kind=SessionKind.WEB,
        client=client_of(request),
        replaces=request.cookies.get(SESSION_COOKIE),
    )
    if isinstance(result, auth.SecondFactorRequired):
        # The password was right: the code is asked on a page of its own, the password is not
        # asked again (nor carried by the page: a signed challenge stands for it).
        code_step = _code_step(
            settings, user_id=result.user_id, username=username.strip(), suite=suite
        )
        return render(request, "sign_in.html", code_step)
    if isinstance(result, AppError):
        context["error"] = in_words(request, result)
        return render(
            request, "sign_in.html", context, status_code=result.status, headers=result.headers
        )
    return await _signed_in(request, settings, result, suite)


@router.post("/connexion/code", response_class=HTMLResponse)
async def sign_in_code(
    request: Request,
    settings: SettingsDep,
    challenge: Annotated[str, Form(max_length=200)] = "",
    username: Annotated[str, Form(max_length=200)] = "",
    otp: Annotated[str, Form(max_length=32)] = "",
    suite: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """Second step of a sign-in: the code of an account whose password was right."""
    request.state.locale = pick_locale(request.cookies.get(LOCALE_COOKIE))
    refuse_cross_site(request)
    user_id = read_challenge(settings, challenge)
    if user_id is None:
        context: dict[str, object] = {
            "next": safe_next(suite),
            "expired": False,
            "username": username,
            "step": "password",
            "error": translator(request).gettext(
                "Too late to type the code: sign in again with your password."
            ),
        }
        return render(request, "sign_in.html", context, status_code=401)
    result = await auth.sign_in_second_factor(
        sessions=request.app.state.sessions,
        settings=settings,
        user_id=user_id,
        otp=otp.strip(),
        kind=SessionKind.WEB,
        client=client_of(request),
        replaces=request.cookies.get(SESSION_COOKIE),
    )
    if isinstance(result, AppError):
        context = _code_step(settings, user_id=user_id, username=username, suite=suite)
        context["challenge"] = challenge  # a wrong code does not extend the time allowed
        context["error"] = in_words(request, result)
        return render(
            request, "sign_in.html", context, status_code=result.status, headers=result.headers
        )
    return await _signed_in(request, settings, result, suite)


async def _signed_in(
    request: Request, settings: Settings, result: auth.SignedIn, suite: str
) -> Response:
    home = safe_next(suite) if suite else home_of(result.user.roles)
    target = "/double-authentification" if result.enrolment_required else home
    response = RedirectResponse(target, status_code=303)
    cookies.set_session(response, result.token, settings)
    cookies.set_signed_in_marker(response)
    async with request.app.state.sessions() as session:
        saved = (await prefs.preference(session, result.user.id)).locale
    if saved:
        cookies.set_locale(response, saved)
    return response


@router.post("/deconnexion")
async def sign_out(
    request: Request, session: DbSession, settings: SettingsDep, actor: Officer
) -> Response:
    ended = await auth.sign_out(session=session, actor=actor)
    target = "/connexion"
    name = ended.oidc_provider if ended else None
    provider = settings.oidc_provider(name) if name else None
    if ended is not None and provider is not None:
        # Opened through a provider: the provider's session ends too (RP-initiated logout),
        # which then sends the browser back to the sign-in page. Ours has ended already.
        try:
            known = await oidc.discovery_of(request.app.state, settings).get(provider)
            at_provider = oidc.end_session_url(settings, known.metadata, provider, ended.id_token)
        except AppError:
            at_provider = None  # the provider is unreachable: our session is ended anyway
        target = at_provider or target
    response = RedirectResponse(target, status_code=303)
    cookies.clear_session(response)
    return response


@router.get("/double-authentification", response_class=HTMLResponse)
async def mfa_page(
    request: Request, session: DbSession, settings: SettingsDep, actor: Officer
) -> Response:
    assert actor.user_id is not None
    user = await service.get_user(session=session, user_id=actor.user_id)
    if user.mfa_enabled:
        return render(request, "mfa.html", {"enabled": True})
    enrolment = await mfa.start_enrolment(
        session=session, settings=settings, actor=actor, user=user
    )
    return render(request, "mfa.html", {"enabled": False, "enrolment": enrolment})


@router.post("/double-authentification", response_class=HTMLResponse)
async def mfa_confirm(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    actor: Officer,
    otp: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    assert actor.user_id is not None
    user = await service.get_user(session=session, user_id=actor.user_id)
    try:
        codes = await mfa.confirm_enrolment(
            session=session, settings=settings, actor=actor, user=user, otp=otp.strip()
        )
    except Invalid as error:
        # The secret already scanned stays; no secret is shown again (a new one is made only
        # by reloading the page, for this session's eyes only).
        context = {"enabled": False, "retry": True, "error": in_words(request, error)}
        return render(request, "mfa.html", context, status_code=422)
    await auth.lift_enrolment_limit(session=session, session_id=actor.session_id)
    return render(request, "mfa.html", {"enabled": True, "recovery_codes": codes})


@router.get("/langue/{locale}")
async def choose_language(locale: str, suite: str | None = None) -> Response:
    """Switch language (a cookie; signed-in officers also keep it in their preferences)."""
    response = RedirectResponse(safe_next(suite), status_code=303)
    cookies.set_locale(response, locale if locale in LOCALES else "fr")
    return response


@router.post("/langue")
async def save_language(
    session: DbSession,
    actor: Officer,
    locale: Annotated[str, Form(max_length=8)] = "fr",
    suite: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    chosen = locale if locale in LOCALES else "fr"
    await prefs.set_locale(session=session, actor=actor, locale=chosen)
    response = RedirectResponse(safe_next(suite), status_code=303)
    cookies.set_locale(response, chosen)
    return response
