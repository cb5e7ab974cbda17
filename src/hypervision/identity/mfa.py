"""TOTP second factor (RFC 6238): enrolment with a QR code, verification, recovery codes."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime

import pyotp
import segno
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from hypervision.audit import service as audit
from hypervision.config import Settings
from hypervision.core.errors import Conflict, Invalid
from hypervision.db import utcnow
from hypervision.identity.models import Organisation, RecoveryCode, User
from hypervision.identity.principal import Principal
from hypervision.identity.schemas import MfaEnrolment
from hypervision.identity.secrets import SecretBox

ISSUER = "Hypervision"
RECOVERY_CODE_COUNT = 10
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no look-alikes (0/o, 1/l/i)
OTP_FORMAT = re.compile(r"[0-9]{6}")  # ASCII digits only (str.isdigit accepts "¹²³")


def mfa_required(settings: Settings, user: User, ancestry: list[Organisation]) -> bool:
    """Required when the user's organisation or any parent enforces it, or for every account
    cleared above the lowest level when ``mfa_required_for_dr`` is set."""
    if any(org.mfa_required for org in ancestry):
        return True
    return settings.mfa_required_for_dr and settings.level_rank(user.clearance) > 0


def _recovery_digest(settings: Settings, code: str) -> str:
    normalised = code.replace("-", "").replace(" ", "").lower()
    return hmac.new(settings.secret_key.encode(), normalised.encode(), hashlib.sha256).hexdigest()


async def start_enrolment(
    *, session: AsyncSession, settings: Settings, actor: Principal, user: User
) -> MfaEnrolment:
    if user.mfa_enabled:
        raise Conflict("La double authentification est déjà active.", "MFA is already enabled.")
    secret = pyotp.random_base32()
    user.mfa_secret = SecretBox(settings.secret_key).seal(secret)
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=ISSUER)
    qr_svg = segno.make(uri, error="m").svg_inline(scale=4, title="QR code TOTP")
    await audit.record(
        session=session,
        actor=actor,
        action="mfa.enrol_start",
        resource_type="user",
        resource_ids=[user.id],
    )
    return MfaEnrolment(secret=secret, otpauth_uri=uri, qr_svg=qr_svg)


async def confirm_enrolment(
    *, session: AsyncSession, settings: Settings, actor: Principal, user: User, otp: str
) -> list[str]:
    """Turns MFA on once the user proves the authenticator works; returns recovery codes once."""
    if user.mfa_enabled:
        raise Conflict("La double authentification est déjà active.", "MFA is already enabled.")
    if not user.mfa_secret or not await verify_totp(
        session=session, settings=settings, user=user, otp=otp
    ):
        raise Invalid(
            "Code de vérification incorrect.", "Wrong verification code.", code="invalid_otp"
        )
    user.mfa_enabled = True
    codes = await _new_recovery_codes(session=session, settings=settings, user=user)
    await audit.record(
        session=session,
        actor=actor,
        action="mfa.enable",
        resource_type="user",
        resource_ids=[user.id],
    )
    return codes


async def _new_recovery_codes(
    *, session: AsyncSession, settings: Settings, user: User
) -> list[str]:
    for old in await session.scalars(select(RecoveryCode).where(RecoveryCode.user_id == user.id)):
        await session.delete(old)
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(_ALPHABET) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
        session.add(RecoveryCode(user_id=user.id, code_hash=_recovery_digest(settings, raw)))
    await session.flush()
    return codes


def _matching_step(settings: Settings, user: User, otp: str, at: datetime | None) -> int | None:
    """The time step (current, or one either side) whose code is ``otp``, if any."""
    if not user.mfa_secret or not OTP_FORMAT.fullmatch(otp):
        return None
    totp = pyotp.TOTP(SecretBox(settings.secret_key).open(user.mfa_secret))
    current = totp.timecode(at or utcnow())
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.generate_otp(step).encode(), otp.encode()):
            return step
    return None


async def verify_totp(
    *, session: AsyncSession, settings: Settings, user: User, otp: str, at: datetime | None = None
) -> bool:
    """Checks the code and burns its step in one conditional UPDATE, so a code is accepted
    once even when several requests carry it at the same moment (replay refused)."""
    step = _matching_step(settings, user, otp, at)
    if step is None:
        return False
    result = await session.execute(
        update(User)
        .where(User.id == user.id, User.mfa_last_step < step)
        .values(mfa_last_step=step)
        .execution_options(synchronize_session=False)
    )
    if _rowcount(result) != 1:
        return False
    set_committed_value(user, "mfa_last_step", step)
    return True


async def use_recovery_code(
    *, session: AsyncSession, settings: Settings, user: User, code: str
) -> bool:
    """Marks an unused recovery code as used, atomically: each code works once."""
    result = await session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_hash == _recovery_digest(settings, code),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=utcnow())
    )
    return _rowcount(result) == 1


def _rowcount(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


async def check_second_factor(
    *, session: AsyncSession, settings: Settings, user: User, otp: str
) -> bool:
    otp = otp.strip()
    if await verify_totp(session=session, settings=settings, user=user, otp=otp):
        return True
    return 6 < len(otp) <= 32 and await use_recovery_code(
        session=session, settings=settings, user=user, code=otp
    )


def current_otp(settings: Settings, user: User) -> str:
    """The code an authenticator would show now (demo helper: `hypervision demo otp`)."""
    if not user.mfa_secret:
        raise ValueError(f"{user.username} has no MFA secret")
    return pyotp.TOTP(SecretBox(settings.secret_key).open(user.mfa_secret)).now()
