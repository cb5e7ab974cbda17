"""Passwords: argon2id hashes and the rules of SECURITY.md item 10 (ASVS 6.2)."""

from __future__ import annotations

import asyncio
import unicodedata
from functools import lru_cache

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from hypervision.config import Settings

MIN_LENGTH = 8
MAX_LENGTH = 128  # ASVS asks that at least 64 be accepted


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS  # 30,000 most common passwords

    return frozenset(FREQUENCY_LISTS["passwords"])


def password_problem(password: str, *, username: str = "") -> tuple[str, str] | None:
    """Why a new password is refused, as (French, English) messages, or None when acceptable."""
    length = len(password)
    if length < MIN_LENGTH:
        return (
            f"Le mot de passe doit compter au moins {MIN_LENGTH} caractères (15 recommandés).",
            f"The password must have at least {MIN_LENGTH} characters (15 recommended).",
        )
    if length > MAX_LENGTH:
        return (
            f"Le mot de passe ne peut dépasser {MAX_LENGTH} caractères.",
            f"The password cannot exceed {MAX_LENGTH} characters.",
        )
    folded = password.casefold()
    if folded in _common_passwords() or (username and username.casefold() in folded):
        return (
            "Ce mot de passe est trop courant ou contient l'identifiant : choisissez-en un autre.",
            "This password is too common or contains the username: choose another one.",
        )
    return None


def normalise(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


class Passwords:
    """argon2id hashing, run off the event loop (it is deliberately slow)."""

    def __init__(self, settings: Settings) -> None:
        self._hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
            type=Type.ID,
        )
        self._dummy = self._hasher.hash("not a real password: equalises timing")
        # Bounds memory and CPU when many sign-ins arrive at once; the rest wait their turn.
        self._slots = asyncio.Semaphore(settings.argon2_concurrency)

    def hash_sync(self, password: str) -> str:
        return self._hasher.hash(normalise(password))

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self.hash_sync, password)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """Constant work whether or not an account exists: a missing hash checks a dummy."""
        target = stored_hash or self._dummy

        def _check() -> bool:
            try:
                return self._hasher.verify(target, normalise(password))
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False

        async with self._slots:
            ok = await asyncio.to_thread(_check)
        return ok and stored_hash is not None

    def needs_rehash(self, stored_hash: str) -> bool:
        return self._hasher.check_needs_rehash(stored_hash)
