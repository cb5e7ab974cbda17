"""NATS servers for the live tests: the machine's shared one (``HYPERVISION_TEST_NATS_URL``,
default nats://127.0.0.1:4222, started by ``.ci/run``) and private ones that a test starts,
kills and restarts itself (``nats-server`` with JetStream, on a free loopback port)."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

import nats
from nats.js.errors import NotFoundError

from hypervision.live.nats_bus import stream_name

TEST_NATS_URL = os.environ.get("HYPERVISION_TEST_NATS_URL", "nats://127.0.0.1:4222")
NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"


def nats_required() -> bool:
    return bool(os.environ.get("CI")) or os.environ.get("HYPERVISION_TEST_NATS") == "required"


def server_info(host: str, port: int, timeout: float = 2.0) -> dict[str, object]:
    """The INFO a NATS server sends first on a new connection."""
    with socket.create_connection((host, port), timeout=timeout) as conn:
        line = conn.makefile("rb").readline()
    if not line.startswith(b"INFO "):
        raise ConnectionError(f"not a NATS server at {host}:{port}")
    info: dict[str, object] = json.loads(line[5:])
    return info


def nats_unavailable_reason() -> str | None:
    """Why the NATS tests cannot run here, or None."""
    if not Path(NATS_SERVER).is_file():
        return "nats-server is not installed (Debian package nats-server)"
    parts = urlsplit(TEST_NATS_URL)
    try:
        info = server_info(parts.hostname or "127.0.0.1", parts.port or 4222)
    except (OSError, ValueError) as exc:
        return f"NATS unreachable at {TEST_NATS_URL} ({type(exc).__name__}: {exc})"
    if not info.get("jetstream"):
        return f"NATS at {TEST_NATS_URL} runs without JetStream (-js)"
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def unique_subject() -> str:
    """A subject of one's own on the shared server: other test runs publish there too."""
    return f"hypervision.test.{secrets.token_hex(6)}"


async def delete_stream(url: str, subject: str) -> None:
    """Remove the stream the application created for ``subject`` (the shared server keeps
    what the tests leave)."""
    client = await nats.connect(url, connect_timeout=2, allow_reconnect=False)
    try:
        with contextlib.suppress(NotFoundError):
            await client.jetstream(timeout=2).delete_stream(stream_name(subject))
    finally:
        await client.close()


async def stream_messages(url: str, subject: str) -> int:
    """How many messages the stream the application created for ``subject`` holds."""
    client = await nats.connect(url, connect_timeout=2, allow_reconnect=False)
    try:
        info = await client.jetstream(timeout=2).stream_info(stream_name(subject))
    finally:
        await client.close()
    return info.state.messages


@dataclass
class NatsServer:
    """A ``nats-server -js`` process of a test's own; ``kill`` it and ``start`` it again on
    the same port and store directory."""

    store: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    _log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.store / "nats-server.log"

    def start(self, within: float = 10.0) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        self.store.mkdir(parents=True, exist_ok=True)
        if self._log is None:
            self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [NATS_SERVER, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.starts += 1
        deadline = time.monotonic() + within
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"nats-server exited: {self.log_path.read_text()[-2000:]}")
            try:
                if server_info("127.0.0.1", self.port, timeout=0.5).get("jetstream"):
                    return
            except (OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"nats-server not answering on {self.port} after {within}s")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL, as a crash: no goodbye to the clients."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def close(self) -> None:
        self.kill()
        if self._log is not None:
            self._log.close()
            self._log = None
