"""Syslog over TLS to a collector the test runs (docs/adr/0037): at least once across a
collector killed and restarted mid-stream (no gap), a stalled collector, the lease."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import socket
import ssl
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy import insert, select

from hypervision.audit.checkpoints import generate_key, load_private_key, write_checkpoints
from hypervision.audit.models import AuditRecord
from hypervision.config import Settings
from hypervision.db import new_id, utcnow
from hypervision.soc.exporter import Exporter, exporters_from
from hypervision.soc.models import SocCursor
from tests.conftest import make_settings
from tests.factories import sequenced, tx
from tests.soc.receiver import read_frame
from tests.soc.tls import received, record_seqs, self_signed, until

RECEIVER = Path(__file__).with_name("receiver.py")


async def _records(app: FastAPI, n: int) -> None:
    """``n`` queued records in one statement (``audit.record``'s shape; thousands of calls
    would dominate the test), then chained."""
    now = utcnow()
    values = [
        {
            "id": new_id(),
            "at": now,
            "actor_id": None,
            "actor_name": "officer-7",
            "actor_organisation_id": None,
            "actor_clearance": "DR",
            "action": "entry.read",
            "surface": "web",
            "decision": "denied" if i % 7 == 0 else "allowed",
            "resource_type": "entry",
            "resource_ids": [f"00000000-0000-0000-0000-{i:012d}"],
            "labels": ["DR"],
            "detail": {"n": i},
            "request_id": f"req-{i}",
            "client_address": "203.0.113.7",
        }
        for i in range(n)
    ]
    async with tx(app) as session:
        await session.execute(insert(AuditRecord), values)
    await sequenced(app)


@contextlib.asynccontextmanager
async def collector(
    tmp_path: Path, out: Path, *, port: int = 0, delay: float = 0.0
) -> AsyncIterator[tuple[int, asyncio.subprocess.Process]]:
    cert, key = tmp_path / "collector.pem", tmp_path / "collector.key"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(RECEIVER),
        f"--port={port}",
        f"--cert={cert}",
        f"--key={key}",
        f"--out={out}",
        f"--delay={delay}",
        "--rcvbuf=16384",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 20)
        assert line.startswith(b"ready "), line
        yield int(line.split()[1]), process
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


def _settings(tmp_path: Path, database_url: str, port: int, **extra: object) -> Settings:
    return make_settings(
        tmp_path,
        database_url,
        soc_syslog_url=f"tls://127.0.0.1:{port}",
        soc_ca_file=tmp_path / "collector.pem",
        soc_backoff_seconds=0.05,
        soc_backoff_max_seconds=0.2,
        soc_poll_seconds=0.05,
        soc_batch=200,
        # What a collector killed may have held unread (kernel and its own buffers: about
        # 1 MiB here), less than the whole stream: the rewind is partial.
        soc_replay_bytes=2 * 1024 * 1024,
        **extra,
    )


def _missing(messages: list[tuple[str, str]], total: int) -> list[int]:
    return sorted(set(range(1, total + 1)) - {s for _, s in record_seqs(messages)})[:20]


async def test_no_gap_across_a_collector_killed_and_restarted(
    app: FastAPI, database_url: str, tmp_path: Path
) -> None:
    total = 6000
    self_signed(tmp_path)
    await _records(app, 1000)
    # Sign the first records: their checkpoint goes to the SOC too.
    keys = tmp_path / "keys"
    kid = generate_key(keys / "audit-ed25519.pem", keys / "audit-ed25519.pub")
    async with tx(app) as session:
        signed = await write_checkpoints(
            session=session,
            witness_dir=tmp_path / "audit-witness",
            private_key=load_private_key(keys / "audit-ed25519.pem"),
        )
    assert [c.last_seq for c in signed] == [1000] and kid
    await _records(app, total - 1000)
    out = tmp_path / "received.jsonl"
    async with collector(tmp_path, out, delay=0.0002) as (port, process):
        settings = _settings(tmp_path, database_url, port)
        [exporter] = exporters_from(settings, app.state.system_sessions)
        assert exporter.witness is not None
        exporter.start()
        try:
            await until(lambda: len(received(out)) >= total // 3, 60, lambda: exporter.state)
            process.send_signal(signal.SIGKILL)  # mid-stream: its buffers are lost
            await process.wait()
            killed_at = len(received(out))
            assert killed_at < total
            await until(lambda: exporter.state.failures >= 1, 30, lambda: exporter.state)
            async with collector(tmp_path, out, port=port):
                await until(
                    lambda: (
                        {s for _, s in record_seqs(received(out))} >= set(range(1, total + 1))
                        and any(" checkpoint " in m for _, m in received(out))
                    ),
                    90,
                    lambda: (exporter.state, _missing(received(out), total)),
                )
                await until(lambda: exporter.state.saved == total, 10, lambda: exporter.state)
        finally:
            await exporter.stop()
    seqs = record_seqs(received(out))
    assert {s for _, s in seqs} == set(range(1, total + 1))  # every record: no gap
    per_connection: dict[str, list[int]] = {}
    for connection, seq in seqs:
        per_connection.setdefault(connection, []).append(seq)
    assert len(per_connection) >= 2
    for numbers in per_connection.values():  # in order on each connection
        assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    duplicates = len(seqs) - total
    print(f"{total} records, {duplicates} received twice, killed after {killed_at}")  # noqa: T201
    checkpoint = next(m for _, m in received(out) if " checkpoint " in m)
    assert 'first_seq="1" last_seq="1000"' in checkpoint and 'tree_size="1000"' in checkpoint
    async with tx(app) as session:
        cursor = await session.get(SocCursor, "syslog")
    assert cursor is not None and cursor.sent_seq == total and cursor.checkpoint_sent == 1000
    assert cursor.owner is None  # released at stop
    assert exporter.state.failures >= 1 and not exporter.state.failing


async def test_a_stalled_collector_times_out_then_the_export_resumes(
    app: FastAPI, database_url: str, tmp_path: Path
) -> None:
    """A collector that accepts and never reads: the write time-out breaks the connection,
    the failure is audited past the threshold, and the next connection gets everything."""
    cert, key = self_signed(tmp_path)
    total = 2500
    await _records(app, total)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    stalled = True
    got: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if stalled:
                await asyncio.sleep(3600)
            while True:
                frame = (await read_frame(reader)).decode()
                if match := re.search(r'\[hv@32473 seq="(\d+)"', frame):
                    got.append(int(match.group(1)))
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    server = await asyncio.start_server(handle, sock=sock, ssl=context)
    port = sock.getsockname()[1]
    settings = _settings(
        tmp_path, database_url, port, soc_write_timeout_seconds=0.5, soc_failure_threshold=1
    )
    [exporter] = exporters_from(settings, app.state.system_sessions)
    exporter.start()
    try:
        await until(lambda: exporter.state.failing, 30)
        assert "stalled" in (exporter.state.last_error or "")
        stalled = False
        await until(lambda: set(got) >= set(range(1, total + 1)), 60)
        await until(lambda: not exporter.state.failing, 10)
    finally:
        await exporter.stop()
        server.close()
        await server.wait_closed()
    async with tx(app) as session:
        actions = (
            await session.scalars(
                select(AuditRecord.action).where(AuditRecord.action.like("soc.%"))
            )
        ).all()
    assert "soc.export_failing" in actions and "soc.export_recovered" in actions


async def test_one_exporter_per_sink_across_replicas(
    app: FastAPI, database_url: str, tmp_path: Path
) -> None:
    await _records(app, 5)
    settings = make_settings(tmp_path, database_url, soc_jsonl_path=tmp_path / "soc.jsonl")
    first = Exporter(
        sessions=app.state.system_sessions,
        settings=settings,
        sink=exporters_from(settings, app.state.system_sessions)[0].sink,
        witness=None,
    )
    [second] = exporters_from(settings, app.state.system_sessions)
    assert await first.ship() == 5
    assert await second.ship() == 0 and not second.state.leader  # the first holds the lease
    await _records(app, 3)
    await first.sink.close()
    await first.release()
    assert await second.ship() == 3  # takes over from the cursor: 6..8
    assert await first.ship() == 0
    await second.sink.close()
    lines = (tmp_path / "soc.jsonl").read_text().splitlines()
    assert len(lines) == 8
