"""Errors with a stable JSON shape: ``{"error": {"code": ..., "message": ...}}``.

Messages are French first; a client asking ``Accept-Language: en`` gets English.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("hypervision.errors")


class AppError(Exception):
    status = 400
    code = "bad_request"
    fr = "Requête invalide."
    en = "Bad request."

    def __init__(
        self,
        fr: str | None = None,
        en: str | None = None,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.fr = fr or self.fr
        self.en = en or self.en
        self.code = code or self.code
        self.headers = headers or {}
        self.extra = extra or {}
        super().__init__(self.en)


class NotFound(AppError):
    status, code = 404, "not_found"
    fr, en = "Ressource introuvable.", "Resource not found."


class HiddenOrMissing(NotFound):
    """A protected record the reader asked for by id and may not see, or that does not exist.

    Answered exactly like any 404; the handler also audits the probe (SECURITY.md item 29):
    the id asked, and whether it exists (``denied``) or not (``not_found``), which only the
    trail knows. ``model`` is the record's ORM class (anything with an ``id`` column)."""

    def __init__(
        self, fr: str, en: str, *, resource_type: str, resource_id: uuid.UUID, model: Any
    ) -> None:
        super().__init__(fr, en)
        self.resource_type = resource_type
        self.resource_id = resource_id
        self.model = model


class Unauthorized(AppError):
    status, code = 401, "unauthorized"
    fr, en = "Authentification requise.", "Authentication required."


class Forbidden(AppError):
    status, code = 403, "forbidden"
    fr, en = "Action non autorisée.", "You are not allowed to do this."


class Conflict(AppError):
    status, code = 409, "conflict"
    fr, en = "Conflit avec l'état actuel.", "Conflict with the current state."


class Invalid(AppError):
    status, code = 422, "validation_error"
    fr, en = "Donnée invalide.", "Invalid data."


class TooManyRequests(AppError):
    status, code = 429, "too_many_requests"
    fr, en = "Trop de tentatives, réessayez plus tard.", "Too many attempts, try again later."

    def __init__(self, retry_after: int) -> None:
        super().__init__(headers={"Retry-After": str(max(1, retry_after))})


class Unavailable(AppError):
    status, code = 503, "database_unavailable"
    fr = "Service momentanément indisponible (base de données injoignable)."
    en = "Service temporarily unavailable (database unreachable)."


def _wants_english(request: Request) -> bool:
    return request.headers.get("accept-language", "").lower().startswith("en")


def error_response(request: Request, exc: AppError) -> JSONResponse:
    body: dict[str, Any] = {
        "code": exc.code,
        "message": exc.en if _wants_english(request) else exc.fr,
        **exc.extra,
    }
    return JSONResponse({"error": body}, status_code=exc.status, headers=exc.headers)


_HTTP_CODES = {
    400: ("bad_request", "Requête invalide.", "Bad request."),
    401: ("unauthorized", "Authentification requise.", "Authentication required."),
    403: ("forbidden", "Action non autorisée.", "Forbidden."),
    404: ("not_found", "Ressource introuvable.", "Resource not found."),
    405: ("method_not_allowed", "Méthode non autorisée.", "Method not allowed."),
    413: ("too_large", "Requête trop volumineuse.", "Request too large."),
    415: (
        "unsupported_media_type",
        "Type de contenu non pris en charge.",
        "Unsupported media type.",
    ),
}


def _field_name(err: Any) -> str:
    if err.get("type") == "json_invalid":
        return "body"
    loc = tuple(err.get("loc", ()))
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    return ".".join(parts) or "body"


# French wording of the validation errors people meet most; others keep Pydantic's English.
_FRENCH = {
    "missing": "champ obligatoire",
    "json_invalid": "JSON mal formé",
    "string_too_short": "trop court (au moins {min_length} caractères)",
    "string_too_long": "trop long (au plus {max_length} caractères)",
    "string_pattern_mismatch": "format invalide",
    "string_type": "texte attendu",
    "enum": "valeur non autorisée (possibles : {expected})",
    "literal_error": "valeur non autorisée (possibles : {expected})",
    "int_parsing": "nombre entier attendu",
    "int_type": "nombre entier attendu",
    "bool_parsing": "booléen attendu",
    "greater_than_equal": "doit être supérieur ou égal à {ge}",
    "less_than_equal": "doit être inférieur ou égal à {le}",
    "too_long": "trop d'éléments (au plus {max_length})",
    "too_short": "pas assez d'éléments (au moins {min_length})",
    "extra_forbidden": "champ non autorisé",
    "uuid_parsing": "identifiant (UUID) invalide",
    "value_error": "valeur invalide",
    "list_type": "liste attendue",
    "model_attributes_type": "objet JSON attendu",
    "dict_type": "objet JSON attendu",
    "bilingual": "{fr}",  # a PydanticCustomError carrying both (hypervision.core.charts)
}


def _field_message(err: Any, english: bool) -> str:
    kind = err.get("type", "")
    if english or kind not in _FRENCH:
        return str(err.get("msg", "invalid"))
    try:
        return _FRENCH[kind].format(**err.get("ctx", {}))
    except (KeyError, IndexError):
        return _FRENCH[kind].split(" (")[0]


# PostgreSQL SQLSTATEs answered 503 (docs/adr/0015): the server is not there, or not now.
# Class 08: connection exceptions. 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03
# cannot_connect_now (starting up, or a smart shutdown refusing new connections), 53300
# too_many_connections, 57014 query_canceled (our statement time-out), 55P03
# lock_not_available (our lock time-out).
DOWN_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300", "57014", "55P03"})
# SQLite (and errors that carry no SQLSTATE): the words of its "try again later" errors.
_DOWN_WORDS = ("connect", "unable to open", "disk i/o", "timeout", "locked", "busy")


def sqlstate_of(exc: BaseException) -> str | None:
    """The SQLSTATE of a driver error: SQLAlchemy's asyncpg adapter copies it onto the adapted
    error (``orig.sqlstate``), whose cause is asyncpg's own error."""
    orig = getattr(exc, "orig", exc)
    for err in (orig, getattr(orig, "__cause__", None)):
        code = getattr(err, "sqlstate", None)
        if isinstance(code, str) and code:
            return code
    return None


def is_database_down(exc: BaseException) -> bool:
    if isinstance(exc, IntegrityError):
        return False
    if isinstance(exc, PoolTimeoutError | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        code = sqlstate_of(exc)
        if code is not None:
            return code.startswith("08") or code in DOWN_SQLSTATES
        text = f"{type(exc.orig).__name__} {exc.orig}".lower()
        return any(w in text for w in _DOWN_WORDS)
    return isinstance(exc, OSError)


def is_refused_text(exc: BaseException) -> bool:
    """PostgreSQL refuses NUL characters and invalid encodings in text: the input was bad."""
    if not isinstance(exc, DBAPIError):
        return False
    text = str(exc.orig).lower()
    return "invalid byte sequence" in text or "unsupported unicode escape" in text


def _is_page(request: Request) -> bool:
    """A browser page of the web app (HTML errors), when the app has one."""
    check = getattr(request.app.state, "is_page", None)
    return bool(check and check(request))


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> Response:
        auditor = getattr(request.app.state, "audit_refusal", None)
        if auditor is not None and (exc.status == 403 or isinstance(exc, HiddenOrMissing)):
            await auditor(request, exc)
        if _is_page(request):
            return request.app.state.html_error(request, exc)  # type: ignore[no-any-return]
        return error_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        english = _wants_english(request)
        fields = [
            {"field": _field_name(err), "message": _field_message(err, english)}
            for err in exc.errors()
        ] or [{"field": "body", "message": "invalid"}]
        first = fields[0]
        if _is_page(request):
            page_error: AppError = Invalid(
                f"{first['field']} : {first['message']}", first["message"]
            )
            if any(err.get("loc", ("",))[0] == "path" for err in exc.errors()):
                page_error = NotFound()
            return request.app.state.html_error(request, page_error)  # type: ignore[no-any-return]
        err = Invalid(
            f"Champ « {first['field']} » : {first['message']}",
            f"Field '{first['field']}': {first['message']}",
            extra={"fields": fields},
        )
        return error_response(request, err)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code, fr, en = _HTTP_CODES.get(exc.status_code, ("error", "Erreur.", "Error."))
        err = AppError(fr, en, code=code, headers=dict(exc.headers or {}))
        err.status = exc.status_code
        if _is_page(request):
            return request.app.state.html_error(request, err)  # type: ignore[no-any-return]
        return error_response(request, err)

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        # Generic on purpose: a constraint error must not reveal rows the caller cannot see.
        return error_response(request, Conflict())

    async def _infrastructure(request: Request, exc: Exception) -> JSONResponse:
        if is_refused_text(exc):
            return await _data(request, exc)
        if is_database_down(exc):
            log.warning("database unavailable: %s %s", type(exc).__name__, sqlstate_of(exc) or "")
            return error_response(request, Unavailable(headers={"Retry-After": "5"}))
        raise exc  # answered by RequestContextMiddleware as a 500

    # Registered per class (not only on Exception) so they are answered without re-raising.
    for cls in (DBAPIError, PoolTimeoutError, OSError, TimeoutError):
        app.add_exception_handler(cls, _infrastructure)

    @app.exception_handler(DataError)
    async def _data(request: Request, exc: Exception) -> JSONResponse:
        # e.g. a NUL character PostgreSQL refuses in text: bad input, not a server fault
        if is_database_down(exc):
            return await _infrastructure(request, exc)
        return error_response(
            request,
            Invalid(
                "Donnée refusée par la base (caractère ou valeur non autorisé).",
                "Data refused by the database (character or value not allowed).",
            ),
        )
