"""Who is browsing: the session cookie resolved on every page, CSRF on every form, and the
redirects that make an expired session a sign-in page rather than an error."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request

from hypervision.alerts import service as alerts
from hypervision.core.deps import SESSION_COOKIE, DbSession, SettingsDep
from hypervision.core.errors import AppError, Forbidden, Unauthorized
from hypervision.core.i18n import LOCALE_COOKIE, pick_locale
from hypervision.follows import service as prefs
from hypervision.identity import auth, csrf
from hypervision.identity.deps import client_of
from hypervision.identity.models import SessionKind
from hypervision.identity.principal import Principal
from hypervision.policy.roles import Scope
from hypervision.policy.rules import Action, allowed
from hypervision.synthesis import counts
from hypervision.web.render import chrome_of

CSRF_FIELD = "csrf_token"
BACKGROUND = "x-hypervision-background"  # set by a page's periodic refresh (``_inbox_badge``)
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_FILES = 10  # per form


class SignInRequired(AppError):
    """Answered with a redirect to the sign-in page (or to MFA enrolment)."""

    status, code = 401, "sign_in_required"

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target


def sign_in_url(request: Request) -> str:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.headers.get("hx-request"):
        here = request.headers.get("hx-current-url", "/") or "/"
        here = "/" + here.split("://", 1)[-1].split("/", 1)[-1] if "://" in here else here
    return f"/connexion?suite={quote(here, safe='/')}"


def safe_next(target: str | None) -> str:
    """Only a path of this site: never an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/main-courante"
    return target


def referer_path(request: Request) -> str:
    """The page a form was sent from, when it is one of ours (else the feed)."""
    parts = urlsplit(request.headers.get("referer", ""))
    if parts.netloc and parts.netloc != request.headers.get("host"):
        return "/main-courante"
    return safe_next(parts.path + (f"?{parts.query}" if parts.query else ""))


async def check_csrf(request: Request, principal: Principal) -> None:
    sent = request.headers.get("x-csrf-token", "")
    form = None
    if not sent and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form(max_files=MAX_FILES, max_fields=400)
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else ""
    if not csrf.matches(sent, principal.csrf_token):
        if form is not None:
            await form.close()  # the endpoint that would have closed its files never runs
        raise Forbidden(
            "Le formulaire a expiré : rechargez la page et recommencez.",
            "The form has expired: reload the page and try again.",
            code="csrf_failed",
        )


async def _signed_in(request: Request, session: DbSession, settings: SettingsDep) -> Principal:
    """The signed-in officer (CSRF checked on forms), or a redirect to the sign-in page."""
    request.state.locale = pick_locale(request.cookies.get(LOCALE_COOKIE))
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise SignInRequired(sign_in_url(request))
    try:
        principal = await auth.resolve(
            session=session,
            settings=settings,
            token=token,
            kind=SessionKind.WEB,
            client=client_of(request),
            # a page's own periodic refresh does not keep an idle session alive
            touch=request.headers.get(BACKGROUND) != "1",
        )
    except auth.RefusedFromHere as refused:  # from outside its organisation's networks
        request.state.principal = refused.principal  # the refusal is audited under its name
        raise
    except Unauthorized:
        raise SignInRequired(sign_in_url(request) + "&expiree=1") from None
    request.state.principal = principal
    if request.method in UNSAFE:
        await check_csrf(request, principal)
    if _enrolling(principal) and request.url.path not in (
        "/double-authentification",
        "/deconnexion",
    ):
        raise SignInRequired("/double-authentification")
    assert principal.user_id is not None
    chrome = chrome_of(request)
    chrome.principal = principal
    chrome.csrf_token = principal.csrf_token or ""
    return principal


def _enrolling(principal: Principal) -> bool:
    return principal.scopes is not None and principal.scopes == {Scope.MFA_ENROL}


async def web_principal(request: Request, session: DbSession, settings: SettingsDep) -> Principal:
    """The signed-in officer, or a redirect to the sign-in page. Sets the page chrome."""
    principal = await _signed_in(request, session, settings)
    mine = await prefs.personal(
        session=session, settings=settings, actor=principal, enrolling=_enrolling(principal)
    )
    request.state.locale = pick_locale(mine.locale, request.cookies.get(LOCALE_COOKIE))
    chrome = chrome_of(request)
    chrome.full_name, chrome.organisation = mine.full_name, mine.organisation
    chrome.tour_pending = mine.tour_pending
    chrome.follow_categories = mine.follow_categories
    chrome.follow_situations = mine.follow_situations
    chrome.follow_entries = mine.follow_entries
    chrome.follows_read = not _enrolling(principal)
    chrome.badge = mine.badge
    chrome.inbox = await counts.unread(session=session, settings=settings, actor=principal)
    if allowed(principal, Action.AUDIT):
        chrome.alerts = await alerts.open_count(session)
    return principal


async def web_reader(request: Request, session: DbSession, settings: SettingsDep) -> Principal:
    """The signed-in officer for a fragment of a page already shown (a live card): no page
    set-up (name, preferences, follows, badge); the language is the page's (its cookie)."""
    return await _signed_in(request, session, settings)


Officer = Annotated[Principal, Depends(web_principal)]
Reader = Annotated[Principal, Depends(web_reader)]
