"""The signed challenge that stands for a checked password between the two sign-in steps."""

from __future__ import annotations

import time
import uuid

from hypervision.config import Settings
from hypervision.web.auth_pages import CHALLENGE_SECONDS, make_challenge, read_challenge


def _settings(key: str) -> Settings:
    return Settings.model_construct(secret_key=key)


def test_a_challenge_names_its_account_until_it_expires() -> None:
    settings, user = _settings("k" * 40), uuid.uuid4()
    assert read_challenge(settings, make_challenge(settings, user)) == user
    stale = make_challenge(settings, user, now=time.time() - CHALLENGE_SECONDS - 1)
    assert read_challenge(settings, stale) is None


def test_a_challenge_cannot_be_forged_nor_moved_to_another_account() -> None:
    settings, user = _settings("k" * 40), uuid.uuid4()
    challenge = make_challenge(settings, user)
    assert read_challenge(_settings("z" * 40), challenge) is None
    _, expires, signature = challenge.split(".")
    assert read_challenge(settings, f"{uuid.uuid4()}.{expires}.{signature}") is None
    assert read_challenge(settings, "") is None
    assert read_challenge(settings, "not.a.challenge") is None
    assert read_challenge(settings, "é.1.signé") is None  # not ASCII: refused, no error
