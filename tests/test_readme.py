"""The README stays true: its demo logins are the scenario's."""

from __future__ import annotations

from pathlib import Path

from hypervision.demo.scenario import DEMO_PASSWORD, USERS, username_of

README = Path(__file__).parent.parent / "README.md"


def test_readme_lists_every_demo_login() -> None:
    text = README.read_text(encoding="utf-8")
    assert DEMO_PASSWORD in text
    for user in USERS:
        assert f"`{username_of(user.name)}`" in text, user.name
    assert "make demo" in text and "make test" in text
