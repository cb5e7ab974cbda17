"""What the API description declares for its operations: the credentials they take and the
error answers they give (``{"error": {"code": ..., "message": ...}}``, see ``core.errors``).

The credentials are checked by ``identity.deps.get_principal``; the security dependencies here do
nothing at run time (``auto_error=False``) but put the schemes in the OpenAPI description, so
that clients and fuzzers know which operations need a bearer token or the session cookie.
"""

from __future__ import annotations

from typing import Any

from fastapi import Security
from fastapi.params import Depends
from fastapi.security import APIKeyCookie, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from hypervision.core.deps import SESSION_COOKIE


class FieldError(BaseModel):
    field: str
    message: str


class ErrorDetail(BaseModel):
    """Some errors carry more members (e.g. ``fields``, ``features``)."""

    model_config = ConfigDict(extra="allow")

    code: str = Field(description="Stable, machine-readable code, e.g. ``validation_error``.")
    message: str = Field(description="French, or English with ``Accept-Language: en``.")
    fields: list[FieldError] | None = Field(
        default=None, description="The invalid fields, for a validation error."
    )


class ErrorBody(BaseModel):
    error: ErrorDetail


_DESCRIPTIONS = {
    400: "Bad request: the body could not be read (e.g. not UTF-8)",
    401: "Authentication required, or the token or session is invalid or expired",
    403: "Not allowed (role, scope, clearance, need-to-know, or CSRF token)",
    404: "Not found, or not visible to the caller",
    409: "Conflict with the current state",
    410: "Gone: withdrawn (open data), with the reason",
    412: "Stale: the If-Match ETag is not the current version",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Invalid data",
    428: "If-Match header required",
    429: "Too many attempts; see Retry-After",
    503: "Service unavailable (database or audit trail unreachable); see Retry-After",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses, with the error body's schema."""
    return {s: {"model": ErrorBody, "description": _DESCRIPTIONS[s]} for s in statuses}


BEARER = HTTPBearer(
    auto_error=False,
    description="A token from POST /api/v1/auth/token, or an API token.",
)
SESSION = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    description="Browser session (POST /api/v1/auth/login); writes also need X-CSRF-Token.",
)

# Router dependencies for operations that need a signed-in principal (either credential).
CREDENTIALS: list[Depends] = [Security(BEARER)]
# What every such operation may answer besides its success.
SIGNED_IN = errors(400, 401, 403, 422, 503)
NOT_FOUND = errors(404)
CONFLICT = errors(409)
PRECONDITION = errors(409, 412, 428)
