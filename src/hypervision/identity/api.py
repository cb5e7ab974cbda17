"""Identity API: sign-in, sessions, MFA, and administration of organisations, users, tokens."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request, Response, status
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from hypervision.core import cookies
from hypervision.core.deps import SESSION_COOKIE, DbSession, SettingsDep
from hypervision.core.errors import AppError, Forbidden, Invalid, error_response
from hypervision.core.openapi import CONFLICT, CREDENTIALS, NOT_FOUND, SIGNED_IN, errors
from hypervision.identity import auth, mfa, rights, service
from hypervision.identity.deps import AnyPrincipal, CurrentPrincipal, PasswordsDep, client_of
from hypervision.identity.models import RightsRequest, RightsRequestStatus, SessionKind, User
from hypervision.identity.schemas import (
    ApiTokenCreate,
    ApiTokenCreated,
    ApiTokenRead,
    ClearanceUpdate,
    GroupCreate,
    GroupRead,
    LoginResponse,
    Me,
    MfaConfirm,
    MfaEnrolment,
    OrganisationAdminRead,
    OrganisationCreate,
    OrganisationRead,
    OrganisationUpdate,
    PasswordChange,
    RecoveryCodes,
    RightsRequestRead,
    TokenResponse,
    UserCreate,
    UserCreated,
    UserPage,
    UserRead,
    UserUpdate,
)

# Each sub-router carries the prefix itself: its routes' own paths (audited on refusals) are
# then the full ones.
router = APIRouter()
public = APIRouter(prefix="/api/v1", responses=errors(400, 401, 403, 422, 429, 503))
signed_in = APIRouter(prefix="/api/v1", dependencies=CREDENTIALS, responses=SIGNED_IN)

UsernameField = Annotated[str, Form(min_length=1, max_length=200)]
PasswordField = Annotated[str, Form(min_length=1, max_length=1024)]
OtpField = Annotated[str | None, Form(max_length=32)]


# --- sign-in ------------------------------------------------------------------------------


@public.post("/auth/token", response_model=TokenResponse, tags=["auth"])
async def issue_token(
    request: Request,
    settings: SettingsDep,
    passwords: PasswordsDep,
    username: UsernameField,
    password: PasswordField,
    otp: OtpField = None,
) -> TokenResponse:
    """Sign in with a password (and a TOTP or recovery code) and get a bearer token."""
    result = await auth.sign_in(
        sessions=request.app.state.sessions,
        settings=settings,
        passwords=passwords,
        username=username,
        password=password,
        otp=otp,
        kind=SessionKind.BEARER,
        client=client_of(request),
    )
    if isinstance(result, AppError):
        raise result
    return TokenResponse(
        access_token=result.token,
        expires_at=result.session.expires_at,
        mfa_enrolment_required=result.enrolment_required,
    )


@public.post("/auth/login", response_model=LoginResponse, tags=["auth"])
async def login(
    request: Request,
    response: Response,
    settings: SettingsDep,
    passwords: PasswordsDep,
    username: UsernameField,
    password: PasswordField,
    otp: OtpField = None,
) -> LoginResponse:
    """Browser sign-in: sets a new session cookie (any previous one is ended)."""
    refuse_cross_site(request)
    result = await auth.sign_in(
        sessions=request.app.state.sessions,
        settings=settings,
        passwords=passwords,
        username=username,
        password=password,
        otp=otp,
        kind=SessionKind.WEB,
        client=client_of(request),
        replaces=request.cookies.get(SESSION_COOKIE),
    )
    if isinstance(result, AppError):
        raise result
    cookies.set_session(response, result.token, settings)
    return LoginResponse(
        username=result.user.username,
        csrf_token=result.session.csrf_token,
        expires_at=result.session.expires_at,
        mfa_enrolment_required=result.enrolment_required,
    )


@signed_in.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT, tags=["auth"])
async def logout(response: Response, session: DbSession, actor: AnyPrincipal) -> None:
    """Ends the current session (cookie or bearer token) on the server."""
    if actor.session_id is None:
        raise Invalid(
            "Un jeton d'API se révoque par un administrateur (DELETE /api/v1/api-tokens/{id}).",
            "An API token is revoked by an administrator (DELETE /api/v1/api-tokens/{id}).",
        )
    await auth.sign_out(session=session, actor=actor)
    cookies.clear_session(response)


@signed_in.get("/auth/me", response_model=Me, tags=["auth"])
async def me(actor: AnyPrincipal) -> Me:
    return Me(
        username=actor.username,
        organisation_id=actor.organisation_id,
        roles=sorted(actor.roles),
        clearance=actor.clearance,
        groups=sorted(actor.groups),
        scopes=sorted(actor.scopes) if actor.scopes is not None else None,
    )


@signed_in.post("/auth/password", status_code=status.HTTP_204_NO_CONTENT, tags=["auth"])
async def change_password(
    session: DbSession, passwords: PasswordsDep, actor: CurrentPrincipal, data: PasswordChange
) -> None:
    _require_interactive(actor)
    await auth.change_password(
        session=session,
        passwords=passwords,
        actor=actor,
        current=data.current_password,
        new=data.new_password,
    )


def refuse_cross_site(request: Request) -> None:
    """Login CSRF: a cookie sign-in must come from our own pages (or a non-browser client)."""
    site = request.headers.get("sec-fetch-site")
    origin = request.headers.get("origin")
    host = request.headers.get("host", "")
    cross = (site is not None and site not in ("same-origin", "none")) or (
        origin is not None and origin.split("://", 1)[-1] != host
    )
    if cross:
        raise Forbidden(
            "Connexion refusée : requête venant d'un autre site.",
            "Sign-in refused: the request comes from another site.",
            code="cross_site_refused",
        )


def _require_interactive(actor: AnyPrincipal) -> None:
    if actor.session_id is None:
        raise Forbidden(
            "Action réservée à une session ouverte par mot de passe.",
            "Only a password-signed-in session can do this.",
        )


async def _self(session: DbSession, actor: AnyPrincipal) -> User:
    _require_interactive(actor)
    assert actor.user_id is not None
    return await service.get_user(session=session, user_id=actor.user_id)


@signed_in.post("/auth/mfa/enrol", response_model=MfaEnrolment, tags=["auth"], responses=CONFLICT)
async def mfa_enrol(session: DbSession, settings: SettingsDep, actor: AnyPrincipal) -> MfaEnrolment:
    """Starts TOTP enrolment: a secret, its otpauth URI and a QR code (SVG) to scan."""
    user = await _self(session, actor)
    return await mfa.start_enrolment(session=session, settings=settings, actor=actor, user=user)


@signed_in.post(
    "/auth/mfa/confirm", response_model=RecoveryCodes, tags=["auth"], responses=CONFLICT
)
async def mfa_confirm(
    session: DbSession, settings: SettingsDep, actor: AnyPrincipal, data: MfaConfirm
) -> RecoveryCodes:
    """Turns MFA on with a first code; returns recovery codes (shown once). A session limited
    to enrolment becomes a full session."""
    user = await _self(session, actor)
    codes = await mfa.confirm_enrolment(
        session=session, settings=settings, actor=actor, user=user, otp=data.otp
    )
    await auth.lift_enrolment_limit(session=session, session_id=actor.session_id)
    return RecoveryCodes(recovery_codes=codes)


# --- administration -----------------------------------------------------------------------


@signed_in.get("/organisations", response_model=list[OrganisationRead], tags=["admin"])
async def list_organisations(session: DbSession, actor: CurrentPrincipal) -> list[OrganisationRead]:
    _ = actor  # any signed-in user may see the organisation tree (needed to choose audiences)
    orgs = await service.list_organisations(session=session)
    return [OrganisationRead.model_validate(o) for o in orgs]


@signed_in.post(
    "/organisations",
    response_model=OrganisationRead,
    status_code=201,
    tags=["admin"],
    responses=CONFLICT | NOT_FOUND,
)
async def create_organisation(
    session: DbSession, actor: CurrentPrincipal, data: OrganisationCreate
) -> OrganisationRead:
    org = await service.create_organisation(session=session, actor=actor, data=data)
    return OrganisationRead.model_validate(org)


@signed_in.get(
    "/organisations/{code}",
    response_model=OrganisationAdminRead,
    tags=["admin"],
    responses=NOT_FOUND,
)
async def get_organisation(
    session: DbSession, actor: CurrentPrincipal, code: Annotated[str, Path(max_length=32)]
) -> OrganisationAdminRead:
    """One organisation with its network rules (administrators, security officers)."""
    org = await service.read_organisation(session=session, actor=actor, code=code)
    return OrganisationAdminRead.model_validate(org)


@signed_in.patch(
    "/organisations/{code}",
    response_model=OrganisationAdminRead,
    tags=["admin"],
    responses=NOT_FOUND,
)
async def update_organisation(
    session: DbSession,
    actor: CurrentPrincipal,
    code: Annotated[str, Path(max_length=32)],
    data: OrganisationUpdate,
) -> OrganisationAdminRead:
    """Administrators set an organisation's defaults for its officers' new entries, and the
    networks its members may work from (``allowed_networks``, CIDRs; empty: anywhere) and
    whether their sign-ins need a client certificate verified by the ingress."""
    org = await service.update_organisation(session=session, actor=actor, code=code, data=data)
    return OrganisationAdminRead.model_validate(org)


@signed_in.get("/groups", response_model=list[GroupRead], tags=["admin"])
async def list_groups(session: DbSession, actor: CurrentPrincipal) -> list[GroupRead]:
    _ = actor
    return [GroupRead.model_validate(g) for g in await service.list_groups(session=session)]


@signed_in.post(
    "/groups", response_model=GroupRead, status_code=201, tags=["admin"], responses=CONFLICT
)
async def create_group(session: DbSession, actor: CurrentPrincipal, data: GroupCreate) -> GroupRead:
    return GroupRead.model_validate(
        await service.create_group(session=session, actor=actor, data=data)
    )


@signed_in.get("/users", response_model=UserPage, tags=["admin"])
async def list_users(
    session: DbSession,
    actor: CurrentPrincipal,
    after: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> UserPage:
    users, cursor = await service.list_users(session=session, actor=actor, after=after, limit=limit)
    items = [await service.user_read(session=session, user=u) for u in users]
    return UserPage(items=items, next_cursor=cursor)


@signed_in.post(
    "/users",
    response_model=UserCreated,
    status_code=201,
    tags=["admin"],
    responses=CONFLICT | NOT_FOUND,
)
async def create_user(
    session: DbSession,
    settings: SettingsDep,
    passwords: PasswordsDep,
    actor: CurrentPrincipal,
    data: UserCreate,
) -> UserCreated:
    """Creates the account with no role, the lowest clearance and no group; the rights asked
    for are a pending request (``rights_request``) that a second administrator approves."""
    user, request = await service.create_account(
        session=session, actor=actor, settings=settings, passwords=passwords, data=data
    )
    read = await service.user_read(session=session, user=user)
    pending = await rights.present(session=session, requests=[request]) if request else [None]
    return UserCreated(**read.model_dump(), rights_request=pending[0])


@signed_in.get("/users/{user_id}", response_model=UserRead, tags=["admin"], responses=NOT_FOUND)
async def get_user(session: DbSession, actor: CurrentPrincipal, user_id: uuid.UUID) -> UserRead:
    user = await service.read_user(session=session, actor=actor, user_id=user_id)
    return await service.user_read(session=session, user=user)


# A change that widens someone's rights answers 202 with the request a second administrator
# approves (ADR 0013); what narrows them has applied already.
WIDENING: dict[int | str, dict[str, Any]] = {
    202: {"model": RightsRequestRead, "description": "a widening awaits approval"}
}


async def _applied_or_pending(session: DbSession, result: User | RightsRequest) -> Response:
    if isinstance(result, RightsRequest):
        (read,) = await rights.present(session=session, requests=[result])
        return JSONResponse(jsonable_encoder(read), status_code=202)
    user = await service.user_read(session=session, user=result)
    return JSONResponse(jsonable_encoder(user))


@signed_in.patch(
    "/users/{user_id}",
    response_model=UserRead,
    tags=["admin"],
    responses=WIDENING | CONFLICT | NOT_FOUND,
)
async def update_user(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    user_id: uuid.UUID,
    data: UserUpdate,
) -> Response:
    """Names and narrowed rights apply at once; added roles or groups wait for approval."""
    result = await service.update_user(
        session=session, actor=actor, settings=settings, user_id=user_id, data=data
    )
    return await _applied_or_pending(session, result)


@signed_in.put(
    "/users/{user_id}/clearance",
    response_model=UserRead,
    tags=["admin"],
    responses=WIDENING | NOT_FOUND,
)
async def set_clearance(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    user_id: uuid.UUID,
    data: ClearanceUpdate,
) -> Response:
    """A lower clearance applies at once; a higher one waits for approval."""
    result = await service.set_clearance(
        session=session,
        actor=actor,
        settings=settings,
        user_id=user_id,
        clearance=data.clearance,
        reason=data.reason,
    )
    return await _applied_or_pending(session, result)


@signed_in.post(
    "/users/{user_id}/disable", response_model=UserRead, tags=["admin"], responses=NOT_FOUND
)
async def disable_user(session: DbSession, actor: CurrentPrincipal, user_id: uuid.UUID) -> UserRead:
    user = await service.disable_user(session=session, actor=actor, user_id=user_id)
    return await service.user_read(session=session, user=user)


@signed_in.post(
    "/users/{user_id}/enable",
    response_model=UserRead,
    tags=["admin"],
    responses=WIDENING | NOT_FOUND,
)
async def enable_user(session: DbSession, actor: CurrentPrincipal, user_id: uuid.UUID) -> Response:
    """Enabling a disabled account waits for approval."""
    result = await service.enable_user(session=session, actor=actor, user_id=user_id)
    return await _applied_or_pending(session, result)


@signed_in.get("/rights-requests", response_model=list[RightsRequestRead], tags=["admin"])
async def list_rights_requests(
    session: DbSession,
    actor: CurrentPrincipal,
    status: RightsRequestStatus = RightsRequestStatus.PENDING,
) -> list[RightsRequestRead]:
    """The approvers' queue (``status=pending``, the default), or the decided requests."""
    rows = await rights.list_requests(session=session, actor=actor, status=status)
    return await rights.present(session=session, requests=rows)


async def _decide(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    request_id: uuid.UUID,
    *,
    approve: bool,
) -> Response:
    result = await rights.decide(
        session=session, actor=actor, settings=settings, request_id=request_id, approve=approve
    )
    if isinstance(result, AppError):  # stale: the refusal is audited, and committed
        return error_response(request, result)
    (read,) = await rights.present(session=session, requests=[result])
    return JSONResponse(jsonable_encoder(read))


@signed_in.post(
    "/rights-requests/{request_id}/approve",
    response_model=RightsRequestRead,
    tags=["admin"],
    responses=CONFLICT | NOT_FOUND,
)
async def approve_rights_request(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    request_id: uuid.UUID,
) -> Response:
    """Applies the request: only an administrator who is neither its requester nor the person
    concerned; refused (409) when that person's rights changed since it was made."""
    return await _decide(request, session, settings, actor, request_id, approve=True)


@signed_in.post(
    "/rights-requests/{request_id}/reject",
    response_model=RightsRequestRead,
    tags=["admin"],
    responses=NOT_FOUND,
)
async def reject_rights_request(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    request_id: uuid.UUID,
) -> Response:
    """Closes the request without applying it (any administrator, the requester included)."""
    return await _decide(request, session, settings, actor, request_id, approve=False)


@signed_in.get("/api-tokens", response_model=list[ApiTokenRead], tags=["admin"])
async def list_api_tokens(session: DbSession, actor: CurrentPrincipal) -> list[ApiTokenRead]:
    rows = await auth.list_api_tokens(session=session, actor=actor)
    return [ApiTokenRead.model_validate(r) for r in rows]


@signed_in.post(
    "/api-tokens",
    response_model=ApiTokenCreated,
    status_code=201,
    tags=["admin"],
    responses=NOT_FOUND,
)
async def create_api_token(
    session: DbSession, settings: SettingsDep, actor: CurrentPrincipal, data: ApiTokenCreate
) -> ApiTokenCreated:
    row, token = await auth.create_api_token(
        session=session, settings=settings, actor=actor, data=data
    )
    return ApiTokenCreated(**ApiTokenRead.model_validate(row).model_dump(), token=token)


@signed_in.delete("/api-tokens/{token_id}", status_code=204, tags=["admin"], responses=NOT_FOUND)
async def revoke_api_token(
    session: DbSession, actor: CurrentPrincipal, token_id: uuid.UUID
) -> None:
    await auth.revoke_api_token(session=session, actor=actor, token_id=token_id)


router.include_router(public)
router.include_router(signed_in)
