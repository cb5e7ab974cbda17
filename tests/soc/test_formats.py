"""RFC 5424 messages and JSON lines as the SOC receives them (docs/adr/0037)."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from hypervision.app import create_app
from hypervision.audit.checkpoints import Checkpoint
from hypervision.config import ConfigError, Settings, load_settings
from hypervision.soc import formats
from hypervision.soc.sinks import SocConfigError
from tests.conftest import TEST_SECRET, make_settings

HEADER = re.compile(
    r"^<(?P<pri>\d{1,3})>1 (?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z) (?P<host>\S{1,255}) "
    r"(?P<app>\S{1,48}) (?P<procid>\S{1,128}) (?P<msgid>\S{1,32}) (?P<rest>\[.*)$",
    re.DOTALL,
)


def _row(**changes: object) -> SimpleNamespace:
    values: dict[str, object] = {
        "seq": 42,
        "id": uuid.UUID(int=7),
        "at": datetime(2026, 12, 3, 14, 5, 6, 789012, tzinfo=UTC),
        "actor_id": uuid.UUID(int=8),
        "actor_name": 'eve "the] \\ tester',
        "actor_organisation_id": None,
        "actor_clearance": "DR",
        "action": "entry.read",
        "surface": "web",
        "decision": "denied",
        "resource_type": "entry",
        "resource_ids": [str(uuid.UUID(int=9)), str(uuid.UUID(int=10))],
        "labels": ["DR"],
        "detail": {"title": "never leaves"},
        "request_id": "req-1",
        "client_address": "203.0.113.7",
        "prev_hash": "a" * 64,
        "row_hash": "b" * 64,
    }
    values.update(changes)
    return SimpleNamespace(**values)


def _sd_params(element: str) -> dict[str, str]:
    """Parse one SD-ELEMENT's params, undoing the escapes (RFC 5424 §6.3.3)."""
    params: dict[str, str] = {}
    for match in re.finditer(r' ([^= \]"]{1,32})="((?:[^"\\\]]|\\["\\\]])*)"', element):
        params[match.group(1)] = re.sub(r"\\([\"\\\]])", r"\1", match.group(2))
    return params


def test_a_record_is_an_rfc5424_message_with_escaped_structured_data() -> None:
    builder = formats.Rfc5424(facility=13, hostname="hv-1 node", enterprise_number=32473)
    message = builder.record(_row()).decode("utf-8")
    header = HEADER.match(message)
    assert header, message
    assert int(header["pri"]) == 13 * 8 + formats.WARNING  # denied: warning
    assert header["ts"] == "2026-12-03T14:05:06.789012Z"
    assert (header["host"], header["app"], header["procid"]) == ("hv-1node", "hypervision", "-")
    assert header["msgid"] == "audit"
    rest = header["rest"]
    assert rest.startswith('[hv@32473 seq="42" ')
    # The escapes: " \ and ] take a backslash inside PARAM-VALUE.
    assert 'actor="eve \\"the\\] \\\\ tester"' in rest
    element_end = rest.index("] \ufeff")
    params = _sd_params(rest[: element_end + 1])
    assert params["actor"] == 'eve "the] \\ tester'
    assert params["seq"] == "42" and params["row_hash"] == "b" * 64
    assert params["prev_hash"] == "a" * 64 and params["decision"] == "denied"
    assert params["resource_ids"] == f"{uuid.UUID(int=9)},{uuid.UUID(int=10)}"
    assert params["labels"] == "DR" and params["resource_count"] == "2"
    assert "actor_org" not in params  # a null value is left out, not sent as "None"
    assert "never leaves" not in message and "title" not in message  # no detail
    assert rest[element_end + 2 :].startswith("\ufeff")  # MSG: BOM then UTF-8


def test_severities_frames_and_long_id_lists() -> None:
    builder = formats.Rfc5424(facility=13, hostname="h", enterprise_number=32473)
    for decision, severity in (("allowed", 6), ("not_found", 5), ("denied", 4)):
        message = builder.record(_row(decision=decision)).decode()
        assert message.startswith(f"<{13 * 8 + severity}>1 ")
    failing = builder.record(_row(action="soc.export_failing", decision="allowed")).decode()
    assert failing.startswith(f"<{13 * 8 + 3}>1 ")
    many = [str(uuid.UUID(int=n)) for n in range(100)]
    message = builder.record(_row(resource_ids=many)).decode()
    params = _sd_params(message)
    assert params["resource_count"] == "100" and params["resource_ids_truncated"] == "true"
    assert len(params["resource_ids"].split(",")) == formats.MAX_SYSLOG_IDS
    frame = formats.octet_frame("é".encode())
    assert frame == b"2 " + "é".encode()  # octets, not characters


def test_a_checkpoint_message_carries_what_verifying_needs_but_the_fingerprints() -> None:
    checkpoint = Checkpoint(
        version=1,
        first_seq=1,
        last_seq=3,
        count=3,
        merkle_root="c" * 64,
        last_row_hash="d" * 64,
        previous="0" * 64,
        created_at="2026-12-03T14:00:00+00:00",
        key_id="0123456789abcdef",
        fingerprints="AAAA",
    )
    builder = formats.Rfc5424(facility=13, hostname="h", enterprise_number=32473)
    message = builder.checkpoint(checkpoint, b"sig").decode()
    header = HEADER.match(message)
    assert header and header["msgid"] == "checkpoint" and int(header["pri"]) == 13 * 8 + 5
    params = _sd_params(message)
    assert message.split(" ")[6] == "[hvcp@32473"
    assert params["tree_size"] == "3" and params["merkle_root"] == "c" * 64
    assert params["signature"] == "c2ln" and "fingerprints" not in params
    line = json.loads(formats.checkpoint_json(checkpoint, b"sig"))
    assert line["type"] == "checkpoint" and "fingerprints" not in line


def test_a_json_line_has_the_same_fields_and_detail_only_when_asked() -> None:
    line = json.loads(formats.record_json(_row()))
    assert line["type"] == "audit" and line["seq"] == 42 and line["severity"] == "warning"
    assert set(formats.RECORD_FIELDS) <= set(line) and "detail" not in line
    assert line["at"] == "2026-12-03T14:05:06.789012+00:00"
    assert json.loads(formats.record_json(_row(), include_detail=True))["detail"] == {
        "title": "never leaves"
    }


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("udp://siem.example:514", "must be tls://host:port"),
        ("tls://siem.example", "must be tls://host:port"),
        ("tls://siem.example:port", "must be tls://host:port"),
        ("tls://siem.example:6514/x", "must be tls://host:port, with nothing after the port"),
    ],
)
def test_a_malformed_syslog_url_stops_start_up_naming_the_setting(
    url: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HYPERVISION_SOC_SYSLOG_URL", url)
    with pytest.raises(ConfigError, match=f"HYPERVISION_SOC_SYSLOG_URL: {message}"):
        load_settings(secret_key=TEST_SECRET)


def test_a_certificate_without_its_key_is_refused() -> None:
    with pytest.raises(ValidationError, match="HYPERVISION_SOC_CLIENT_KEY_FILE go together"):
        Settings(
            secret_key=TEST_SECRET,
            soc_syslog_url="tls://siem.example:6514",
            soc_client_cert_file=Path("/etc/hostname"),
        )


def test_missing_files_stop_the_server_at_start(tmp_path: Path) -> None:
    url = "sqlite+aiosqlite:///" + str(tmp_path / "x.db")
    missing_ca = make_settings(
        tmp_path, url, soc_syslog_url="tls://siem.example:6514", soc_ca_file=tmp_path / "ca.pem"
    )
    with pytest.raises(SocConfigError, match=r"HYPERVISION_SOC_CA_FILE: file .* not found"):
        create_app(missing_ca)
    (tmp_path / "ca.pem").write_text("not a certificate")
    with pytest.raises(SocConfigError, match="HYPERVISION_SOC_CA_FILE: not PEM"):
        create_app(missing_ca)
    no_dir = make_settings(tmp_path, url, soc_jsonl_path=tmp_path / "nowhere" / "soc.jsonl")
    with pytest.raises(SocConfigError, match="HYPERVISION_SOC_JSONL_PATH: directory"):
        create_app(no_dir)
