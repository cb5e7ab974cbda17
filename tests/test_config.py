"""Settings: defaults, parsing, and one clear line for a bad or missing setting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hypervision.config import ConfigError, load_settings

KEY = "k" * 40


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("HYPERVISION_"):
            monkeypatch.delenv(name)


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYPERVISION_SECRET_KEY", KEY)
    settings = load_settings()
    assert settings.label_levels == ("NP", "DR")
    assert settings.label_ceiling == "DR"
    assert settings.effective_database_url.startswith("sqlite+aiosqlite:///")
    assert settings.effective_database_url.endswith("var/hypervision.db")
    assert settings.bind_host == "127.0.0.1"


def test_levels_from_a_comma_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYPERVISION_SECRET_KEY", KEY)
    monkeypatch.setenv("HYPERVISION_LABEL_LEVELS", "NP, DR, SPECIAL")
    monkeypatch.setenv("HYPERVISION_LABEL_CEILING", "SPECIAL")
    settings = load_settings()
    assert settings.label_levels == ("NP", "DR", "SPECIAL")
    assert settings.level_rank("SPECIAL") == 2


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({}, "HYPERVISION_SECRET_KEY"),
        ({"HYPERVISION_SECRET_KEY": "short"}, "HYPERVISION_SECRET_KEY"),
        (
            {"HYPERVISION_SECRET_KEY": KEY, "HYPERVISION_LABEL_CEILING": "TS"},
            "HYPERVISION_LABEL_CEILING",
        ),
        (
            {"HYPERVISION_SECRET_KEY": KEY, "HYPERVISION_DATABASE_URL": "mysql://x"},
            "HYPERVISION_DATABASE_URL",
        ),
        (
            {"HYPERVISION_SECRET_KEY": KEY, "HYPERVISION_SESSION_IDLE_MINUTES": "soon"},
            "HYPERVISION_SESSION_IDLE_MINUTES",
        ),
        (
            {"HYPERVISION_SECRET_KEY": KEY, "HYPERVISION_BIND_PORT": "70000"},
            "HYPERVISION_BIND_PORT",
        ),
        (
            {"HYPERVISION_SECRET_KEY": KEY, "HYPERVISION_LIVE_BUS": "kafka"},
            "HYPERVISION_LIVE_BUS",
        ),
        (
            {"HYPERVISION_SECRET_KEY": KEY, "HYPERVISION_NATS_URL": "http://nats:4222"},
            "HYPERVISION_NATS_URL",
        ),
        (
            {"HYPERVISION_SECRET_KEY": KEY, "HYPERVISION_NATS_SUBJECT": "hypervision.>"},
            "HYPERVISION_NATS_SUBJECT",
        ),
    ],
)
def test_bad_settings_name_the_setting(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], named: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert named in message
    assert "\n" not in message


def test_nats_bus_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYPERVISION_SECRET_KEY", KEY)
    assert load_settings().nats_servers == ["nats://127.0.0.1:4222"]
    monkeypatch.setenv("HYPERVISION_LIVE_BUS", "nats")
    monkeypatch.setenv("HYPERVISION_NATS_URL", "nats://a:4222, tls://b:4222")
    monkeypatch.setenv("HYPERVISION_NATS_SUBJECT", "prod.hypervision-outbox")
    settings = load_settings()
    assert settings.live_bus == "nats"
    assert settings.nats_servers == ["nats://a:4222", "tls://b:4222"]
    assert settings.nats_subject == "prod.hypervision-outbox"


def test_env_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "hypervision.env"
    config.write_text(f"HYPERVISION_SECRET_KEY={KEY}\nHYPERVISION_BIND_PORT=9000\n")
    monkeypatch.setenv("HYPERVISION_CONFIG_FILE", str(config))
    assert load_settings().bind_port == 9000
    monkeypatch.setenv("HYPERVISION_BIND_PORT", "9001")  # variables win over the file
    assert load_settings().bind_port == 9001
    monkeypatch.setenv("HYPERVISION_CONFIG_FILE", str(tmp_path / "missing.env"))
    with pytest.raises(ConfigError, match="HYPERVISION_CONFIG_FILE"):
        load_settings()


def test_start_up_stops_with_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYPERVISION_")}
    result = subprocess.run(
        [sys.executable, "-m", "hypervision", "migrate"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == ["hypervision: invalid setting HYPERVISION_SECRET_KEY: is required but not set"]


def test_product_source_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sources are off by default; hosts and networks come as comma lists and are checked."""
    monkeypatch.setenv("HYPERVISION_SECRET_KEY", KEY)
    assert load_settings().product_source_hosts == ()
    monkeypatch.setenv(
        "HYPERVISION_PRODUCT_SOURCE_HOSTS", "Data.Example.gouv.fr, *.meteo.example, [::1]"
    )
    monkeypatch.setenv("HYPERVISION_PRODUCT_SOURCE_NETWORKS", "10.1.0.0/16")
    settings = load_settings()
    assert settings.product_source_hosts == ("data.example.gouv.fr", "*.meteo.example", "::1")
    assert settings.product_source_networks == ("10.1.0.0/16",)
    for name, value, words in (
        ("HYPERVISION_PRODUCT_SOURCE_HOSTS", "http://x.example/", "not a host name"),
        ("HYPERVISION_PRODUCT_SOURCE_NETWORKS", "10.1.0.0/99", "not a network"),
    ):
        monkeypatch.setenv(name, value)
        with pytest.raises(ConfigError, match=f"invalid setting {name}: .*{words}"):
            load_settings()
        monkeypatch.delenv(name)


def test_the_settings_know_the_policys_roles() -> None:
    from hypervision.config import ROLE_NAMES
    from hypervision.policy.roles import Role

    assert {r.value for r in Role} == ROLE_NAMES
