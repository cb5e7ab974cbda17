"""Every cookie the application sets, with its flags, in one place.

- the session cookie: ``HttpOnly``, ``SameSite=Strict``, ``Secure`` unless the administrator
  turned it off for a trial over plain HTTP, for the session's absolute lifetime;
- the signed-in marker: set with it for two minutes, *without* ``Secure``, so that a sign-in
  page that receives the marker but not the session cookie knows the browser dropped it;
- the language: readable by the pages, ``SameSite=Lax``, a year.
"""

from __future__ import annotations

from starlette.responses import Response

from hypervision.config import Settings
from hypervision.core.i18n import LOCALE_COOKIE

SESSION_COOKIE = "hv_session"
SIGNED_IN_MARKER = "hv_signed_in"
SIGNED_IN_MARKER_SECONDS = 120
YEAR = 365 * 24 * 3600


def set_session(response: Response, token: str, settings: Settings) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        secure=settings.cookie_secure,
        samesite="strict",
        path="/",
        max_age=settings.session_absolute_hours * 3600,
    )


def set_signed_in_marker(response: Response) -> None:
    response.set_cookie(
        SIGNED_IN_MARKER,
        "1",
        httponly=True,
        secure=False,  # it must come back when the session cookie cannot: it says nothing
        samesite="strict",
        path="/",
        max_age=SIGNED_IN_MARKER_SECONDS,
    )


def clear_session(response: Response) -> None:
    """Sign-out: the session cookie and the marker go."""
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(SIGNED_IN_MARKER, path="/")


def set_locale(response: Response, locale: str) -> None:
    response.set_cookie(LOCALE_COOKIE, locale, max_age=YEAR, samesite="lax", path="/")
