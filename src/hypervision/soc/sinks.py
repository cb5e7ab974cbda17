"""Where the trail goes: one class per transport (docs/adr/0037).

A sink formats messages, opens its transport, and sends a batch: ``send`` returning means
"sent" (written and flushed; for the file, on disk). Anything that goes wrong raises
:class:`SinkError`; the exporter closes the sink, backs off and resumes from its cursor.

``replay_bytes``: how much of what was sent may still be lost when the transport breaks (what
kernel buffers held unread). Syslog over TCP has no acknowledgement, so after a broken
connection the exporter sends again the records of the last ``replay_bytes``; a file synced to
disk loses nothing (0).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol
from urllib.parse import urlsplit

from hypervision.audit.checkpoints import Checkpoint
from hypervision.config import ConfigError, Settings
from hypervision.soc import formats

SEND_BUFFER = 128 * 1024  # SO_SNDBUF of the syslog socket: bounds what our kernel holds
USERLAND_BUFFER = 16 * 1024  # what asyncio may hold once drain() returns


class SinkError(Exception):
    """The receiver refused, stalled or dropped the connection, or the file cannot be written."""


class SocConfigError(ConfigError):
    """The SOC export is configured wrongly; the message names the setting."""


class Sink(Protocol):
    name: str
    replay_bytes: int

    @property
    def connected(self) -> bool: ...
    async def check(self) -> None: ...

    def record(self, row: Any) -> bytes: ...
    def checkpoint(self, checkpoint: Checkpoint, signature: bytes) -> bytes: ...
    async def open(self) -> None: ...
    async def send(self, messages: list[bytes]) -> None: ...
    async def close(self) -> None: ...


class SyslogTlsSink:
    """RFC 5424 messages over TLS, octet-counted (RFC 5425): ``MSG-LEN SP SYSLOG-MSG``."""

    name = "syslog"

    def __init__(self, settings: Settings) -> None:
        parts = urlsplit(settings.soc_syslog_url)
        assert parts.hostname is not None and parts.port is not None  # checked by Settings
        self.host, self.port = parts.hostname, parts.port
        self.server_name = settings.soc_server_name or self.host
        self.context = tls_context(settings)
        self.connect_timeout = settings.soc_connect_timeout_seconds
        self.write_timeout = settings.soc_write_timeout_seconds
        self.replay_bytes = settings.soc_replay_bytes
        self.formatter = formats.Rfc5424(
            facility=settings.soc_facility,
            hostname=settings.soc_hostname or socket.gethostname(),
            enterprise_number=settings.soc_enterprise_number,
        )
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    def record(self, row: Any) -> bytes:
        return formats.octet_frame(self.formatter.record(row))

    def checkpoint(self, checkpoint: Checkpoint, signature: bytes) -> bytes:
        return formats.octet_frame(self.formatter.checkpoint(checkpoint, signature))

    @property
    def connected(self) -> bool:
        return self._writer is not None

    async def open(self) -> None:
        if self._writer is not None:
            return
        try:
            async with asyncio.timeout(self.connect_timeout):
                reader, writer = await asyncio.open_connection(
                    self.host,
                    self.port,
                    ssl=self.context,
                    server_hostname=self.server_name,
                    ssl_handshake_timeout=self.connect_timeout,
                )
        except TimeoutError:
            raise SinkError(f"{self.host}:{self.port}: no TLS connection within time") from None
        except ssl.SSLError as exc:
            raise SinkError(f"{self.host}:{self.port}: TLS refused ({exc.reason})") from None
        except OSError as exc:
            raise SinkError(f"{self.host}:{self.port}: {exc.strerror or exc}") from None
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        # drain() returns once everything is handed to the kernel, not to asyncio's buffer:
        # what "sent" means, and what bounds the bytes in flight (``replay_bytes``).
        writer.transport.set_write_buffer_limits(high=USERLAND_BUFFER)
        self._reader, self._writer = reader, writer

    async def check(self) -> None:
        """Raise SinkError when the collector has closed the connection (found between
        batches too, so that an idle exporter reconnects and replays what may be lost)."""
        reader, writer = self._reader, self._writer
        if reader is not None and writer is not None and (reader.at_eof() or writer.is_closing()):
            await self.close()
            raise SinkError(f"{self.host}:{self.port}: the collector closed the connection")

    async def send(self, messages: list[bytes]) -> None:
        writer, reader = self._writer, self._reader
        if writer is None or reader is None:
            raise SinkError("not connected")
        await self.check()  # a collector never writes back: end of stream is its close
        try:
            writer.write(b"".join(messages))
            async with asyncio.timeout(self.write_timeout):
                await writer.drain()
        except TimeoutError:
            await self.close()
            raise SinkError(
                f"{self.host}:{self.port}: stalled (nothing written for {self.write_timeout:g} s)"
            ) from None
        except (OSError, ssl.SSLError) as exc:
            await self.close()
            raise SinkError(f"{self.host}:{self.port}: connection lost ({exc})") from None

    async def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is None:
            return
        writer.transport.abort()  # never wait on a stalled peer
        with contextlib.suppress(Exception):
            await writer.wait_closed()


def tls_context(settings: Settings) -> ssl.SSLContext:
    """The client's TLS context: TLS 1.2 at least, the server's certificate and name checked
    against ``soc_ca_file`` (else the system's CAs); a client certificate when set."""
    for name, path in (
        ("HYPERVISION_SOC_CA_FILE", settings.soc_ca_file),
        ("HYPERVISION_SOC_CLIENT_CERT_FILE", settings.soc_client_cert_file),
        ("HYPERVISION_SOC_CLIENT_KEY_FILE", settings.soc_client_key_file),
    ):
        if path is not None and not path.is_file():
            raise SocConfigError(f"invalid setting {name}: file {str(path)!r} not found")
    try:
        context = ssl.create_default_context(
            cafile=str(settings.soc_ca_file) if settings.soc_ca_file else None
        )
    except ssl.SSLError as exc:
        raise SocConfigError(
            f"invalid setting HYPERVISION_SOC_CA_FILE: not PEM certificates ({exc.reason})"
        ) from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if settings.soc_client_cert_file and settings.soc_client_key_file:
        try:
            context.load_cert_chain(settings.soc_client_cert_file, settings.soc_client_key_file)
        except ssl.SSLError as exc:
            raise SocConfigError(
                "invalid setting HYPERVISION_SOC_CLIENT_CERT_FILE: the certificate and its key "
                f"do not load or do not match ({exc.reason})"
            ) from None
    return context


class JsonLinesSink:
    """One JSON object a line, appended to a file synced after each batch, and rotated when it
    reaches ``soc_jsonl_rotate_bytes`` (renamed ``<name>.<UTC time>``; a collector agent such as
    Filebeat or Wazuh's reads renamed files to their end)."""

    name = "jsonl"
    replay_bytes = 0

    def __init__(self, settings: Settings) -> None:
        assert settings.soc_jsonl_path is not None
        self.path = settings.soc_jsonl_path
        if not self.path.parent.is_dir():
            raise SocConfigError(
                f"invalid setting HYPERVISION_SOC_JSONL_PATH: directory "
                f"{str(self.path.parent)!r} not found"
            )
        self.rotate_bytes = settings.soc_jsonl_rotate_bytes
        self.keep = settings.soc_jsonl_keep
        self.include_detail = settings.soc_include_detail
        self._file: BinaryIO | None = None

    @property
    def connected(self) -> bool:
        return self._file is not None

    async def check(self) -> None:
        """A file has no peer to lose."""

    def record(self, row: Any) -> bytes:
        return formats.record_json(row, include_detail=self.include_detail)

    def checkpoint(self, checkpoint: Checkpoint, signature: bytes) -> bytes:
        return formats.checkpoint_json(checkpoint, signature)

    async def open(self) -> None:
        if self._file is None:
            try:
                self._file = await asyncio.to_thread(self._open)
            except OSError as exc:
                raise SinkError(f"{self.path}: {exc.strerror or exc}") from None

    def _open(self) -> BinaryIO:
        sink = self.path.open("ab")
        if sink.tell() > 0:  # a batch cut short by a crash: end its last line
            with self.path.open("rb") as tail:
                tail.seek(-1, os.SEEK_END)
                if tail.read(1) != b"\n":
                    sink.write(b"\n")
        return sink

    async def send(self, messages: list[bytes]) -> None:
        sink = self._file
        if sink is None:
            raise SinkError("not open")
        try:
            await asyncio.to_thread(self._write, sink, b"".join(messages))
        except OSError as exc:
            await self.close()
            raise SinkError(f"{self.path}: {exc.strerror or exc}") from None

    def _write(self, sink: BinaryIO, data: bytes) -> None:
        sink.write(data)
        sink.flush()
        os.fsync(sink.fileno())
        if sink.tell() >= self.rotate_bytes:
            sink.close()
            self._file = None
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            self.path.rename(self.path.with_name(f"{self.path.name}.{stamp}"))
            self._prune()
            self._file = self.path.open("ab")

    def _prune(self) -> None:
        if not self.keep:
            return
        rotated = sorted(self.path.parent.glob(f"{self.path.name}.*"))
        for old in rotated[: -self.keep]:
            old.unlink(missing_ok=True)

    async def close(self) -> None:
        sink, self._file = self._file, None
        if sink is not None:
            with contextlib.suppress(OSError):
                sink.close()


def sinks_from(settings: Settings) -> list[Sink]:
    """The configured sinks (none: the export is off); a wrong setting raises
    :class:`SocConfigError` naming it."""
    found: list[Sink] = []
    if settings.soc_syslog_url:
        found.append(SyslogTlsSink(settings))
    if settings.soc_jsonl_path is not None:
        found.append(JsonLinesSink(settings))
    return found


def rotated_files(path: Path) -> list[Path]:
    """The rotated files of a JSON lines sink, oldest first, then the current one."""
    rotated = sorted(path.parent.glob(f"{path.name}.*"))
    return [*rotated, path] if path.exists() else rotated
