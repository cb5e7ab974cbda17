"""Password rules and hashing (SECURITY.md item 10)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hypervision.identity.passwords import MAX_LENGTH, Passwords, password_problem
from tests.conftest import make_settings


@pytest.mark.parametrize(
    ("password", "accepted"),
    [
        ("1234567", False),  # too short
        ("password", False),  # common
        ("Password1", False),  # common, case-folded
        ("qwertyuiop", False),
        ("jean.dupont-2024", False),  # contains the username
        ("vélo rouge sur la Seine", True),
        ("x" * 64, True),  # ASVS: at least 64 accepted
        ("Ω" * MAX_LENGTH, True),
        ("y" * (MAX_LENGTH + 1), False),
    ],
)
def test_rules(password: str, accepted: bool) -> None:
    assert (password_problem(password, username="jean.dupont") is None) is accepted


@settings(max_examples=50, deadline=None)
@given(st.text(min_size=20, max_size=60).filter(lambda s: s.strip() == s))
def test_long_random_passwords_are_accepted(password: str) -> None:
    assert password_problem(password, username="zz") is None or "zz" in password.casefold()


async def test_argon2id_round_trip(tmp_path: object) -> None:
    passwords = Passwords(make_settings(tmp_path, "sqlite+aiosqlite:///:memory:"))  # type: ignore[arg-type]
    stored = await passwords.hash("une phrase de passe")
    assert stored.startswith("$argon2id$")
    assert await passwords.verify(stored, "une phrase de passe")
    assert not await passwords.verify(stored, "une autre phrase")
    assert not await passwords.verify(None, "une phrase de passe")
    # Unicode normalisation: the composed and decomposed forms are the same password
    accented = await passwords.hash("caf\u00e9 au lait")
    assert await passwords.verify(accented, "cafe\u0301 au lait")
