"""JSON lines to a file the SOC's agent reads, and what the SOC checks on what it received:
``audit verify-export`` against the hash chain and the signed checkpoints (docs/adr/0037)."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import select
from typer.testing import CliRunner

from hypervision.app import create_app
from hypervision.audit import service as audit
from hypervision.audit.checkpoints import generate_key, load_private_key, write_checkpoints
from hypervision.audit.models import AuditRecord
from hypervision.cli import app as cli
from hypervision.config import Settings
from hypervision.soc.exporter import exporters_from, ship_once
from hypervision.soc.verify import verify_export
from tests.conftest import make_settings, once_across_engines, reset_database
from tests.factories import ADMIN, sequenced, tx
from tests.soc.tls import until
from tests.test_cli import _cli


async def _records(app: FastAPI, n: int) -> None:
    async with tx(app) as session:
        for i in range(n):
            await audit.record(
                session=session,
                actor=ADMIN,
                action="product.rows",
                resource_type="product",
                resource_ids=[f"p-{i}"],
                labels=["NP"],
                detail={"columns": ["a", "b"], "rows": i},
            )
    await sequenced(app)


async def _checkpoint(app: FastAPI, settings: Settings) -> None:
    async with tx(app) as session:
        await write_checkpoints(
            session=session,
            witness_dir=settings.audit_witness_path,
            private_key=load_private_key(settings.audit_key_path),
        )


def _check(lines: list[bytes], settings: Settings) -> list[str]:
    from hypervision.audit.checkpoints import load_public_key

    report = verify_export(lines, load_public_key(settings.audit_public_key_path))
    return report.problems


async def test_the_export_verifies_against_the_chain_and_the_checkpoints(
    app: FastAPI, database_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "soc.jsonl"
    settings = make_settings(
        tmp_path, database_url, soc_jsonl_path=out, soc_include_detail=True, soc_batch=16
    )
    generate_key(settings.audit_key_path, settings.audit_public_key_path)
    await _records(app, 50)
    await _checkpoint(app, settings)
    await _records(app, 20)
    await _checkpoint(app, settings)
    await _records(app, 5)  # not signed yet
    [exporter] = exporters_from(settings, app.state.system_sessions)
    assert await ship_once(exporter) == 75 + 2
    assert await ship_once(exporter) == 0  # nothing twice from a clean cursor
    lines = out.read_bytes().splitlines(keepends=True)
    kinds = [json.loads(line)["type"] for line in lines]
    assert kinds.count("audit") == 75 and kinds.count("checkpoint") == 2
    report = verify_export(lines, exporter.witness.public_key if exporter.witness else None)
    assert report.ok, report.problems
    assert (report.records, report.checkpoints, report.signed_through) == (75, 2, 70)
    assert report.recomputed == 75 and report.duplicates == 0

    # What the SOC would see of tampering, a lost line, a duplicate.
    def edited(n: int, change: Callable[[dict[str, object]], None]) -> list[bytes]:
        data = json.loads(lines[n])
        change(data)
        return [*lines[:n], json.dumps(data).encode() + b"\n", *lines[n + 1 :]]

    first = next(i for i, line in enumerate(lines) if b'"seq": 10,' in line)
    assert _check(edited(first, lambda d: d.update(actor_name="mallory")), settings) == [
        "record 10 does not match its row_hash (altered)"
    ]
    problems = _check(edited(first, lambda d: d.update(row_hash="f" * 64)), settings)
    assert "record 11 does not follow record 10 (prev_hash)" in problems
    assert any("checkpoint 1..50: the signature does not hold" in p for p in problems)
    assert _check([*lines[:first], *lines[first + 1 :]], settings) == [
        "records 10..10 are missing from the export"
    ]
    assert _check([*lines, lines[first], b'{"type": "aud'], settings) == []

    # The command the SOC runs.
    runner = CliRunner()
    key = ["--public-key", str(settings.audit_public_key_path)]
    result = runner.invoke(cli, ["audit", "verify-export", str(out), *key])
    assert result.exit_code == 0, result.output
    assert "export intact: records 1..75" in result.output
    assert "2 signed checkpoints verified (records 1..70)" in result.output
    broken = tmp_path / "broken.jsonl"
    broken.write_bytes(b"".join([*lines[:first], *lines[first + 1 :]]))
    result = runner.invoke(cli, ["audit", "verify-export", str(broken), *key])
    assert result.exit_code == 1 and "records 10..10 are missing" in result.output


async def test_a_failing_sink_shows_in_metrics_health_and_the_trail(
    database_url: str, tmp_path: Path
) -> None:
    directory = tmp_path / "soc"
    directory.mkdir()
    settings = make_settings(
        tmp_path,
        database_url,
        soc_jsonl_path=directory / "export.jsonl",
        soc_jsonl_rotate_bytes=4096,
        soc_failure_threshold=2,
        soc_backoff_seconds=0.01,
        soc_backoff_max_seconds=0.05,
        soc_poll_seconds=0.02,
        metrics_allow="203.0.113.0/24",
    )
    app = create_app(settings)
    await reset_database(app)
    [exporter] = app.state.soc_exporters
    transport = ASGITransport(app=app, client=("203.0.113.7", 50000))
    try:
        await _records(app, 30)
        shutil.rmtree(directory)  # the volume is gone: every pass fails
        exporter.start()
        await until(lambda: exporter.state.failing, 20)
        async with AsyncClient(transport=transport, base_url="https://testserver") as http:
            body = (await http.get("/metrics")).text
            assert 'hypervision_soc_export_failing{sink="jsonl"} 1.0' in body
            assert 'hypervision_soc_export_failures_total{sink="jsonl"}' in body
            ready = await http.get("/readyz")
            for _ in range(50):
                if ready.status_code == 200:
                    break
                await asyncio.sleep(0.1)
                ready = await http.get("/readyz")
            assert ready.status_code == 200, ready.text
            soc = ready.json()["soc"]["jsonl"]
            assert soc["state"] == "failing" and soc["consecutive_failures"] >= 2
            assert "No such file" in soc["last_error"]
        directory.mkdir()  # back: the export resumes from its cursor, rotating as it goes
        await until(lambda: not exporter.state.failing and exporter.state.saved >= 30, 20)
    finally:
        await exporter.stop()
        await app.state.hub.stop()
        await app.state.engine.dispose()
    files = sorted(directory.iterdir())
    assert len(files) > 1  # rotated at 4 KiB
    lines = [line for f in files for line in f.read_bytes().splitlines(keepends=True)]
    seqs = sorted(json.loads(line)["seq"] for line in lines)
    assert seqs[:30] == list(range(1, 31))
    app = create_app(make_settings(tmp_path, database_url))
    try:
        async with tx(app) as session:
            actions = (
                await session.scalars(
                    select(AuditRecord.action).where(AuditRecord.action.like("soc.%"))
                )
            ).all()
    finally:
        await app.state.engine.dispose()
    assert sorted(actions) == ["soc.export_failing", "soc.export_recovered"]


async def test_ship_once_from_the_command_line(
    app: FastAPI, database_url: str, tmp_path: Path
) -> None:
    once_across_engines(database_url)
    await _records(app, 11)
    async with tx(app) as session:  # queued: the command chains it (no server sequences here)
        await audit.record(session=session, actor=ADMIN, action="test.queued")
    out = tmp_path / "soc.jsonl"
    sink = {"HYPERVISION_SOC_JSONL_PATH": str(out)}
    result = _cli(database_url, tmp_path, "audit", "ship", "--once", env_extra=sink)
    assert result.returncode == 0, result.stderr
    assert "jsonl: 12 messages sent, records up to 12" in result.stdout
    again = _cli(database_url, tmp_path, "audit", "ship", "--once", env_extra=sink)
    assert "jsonl: 0 messages sent, records up to 12" in again.stdout
    assert len(out.read_bytes().splitlines()) == 12
    wrong = _cli(
        database_url,
        tmp_path,
        "audit",
        "ship",
        "--once",
        env_extra={"HYPERVISION_SOC_SYSLOG_URL": "tls://siem.example"},
    )
    assert wrong.returncode == 2
    assert "invalid setting HYPERVISION_SOC_SYSLOG_URL: must be tls://host:port" in wrong.stderr
