"""Test helpers: a self-signed certificate for a collector on 127.0.0.1, and reading what
the test collector (``tests/soc/receiver.py``) wrote."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SEQ = re.compile(r'\[hv@32473 seq="(\d+)"')


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for ``localhost`` and 127.0.0.1, its own CA; (certificate, key) files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "collector.pem", directory / "collector.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def received(out: Path) -> list[tuple[str, str]]:
    """(connection, message) of every whole line the collector wrote."""
    found: list[tuple[str, str]] = []
    if not out.exists():
        return found
    for line in out.read_text(encoding="utf-8").splitlines():
        try:
            connection, message = json.loads(line)
        except ValueError:
            continue  # a line cut short by the kill
        found.append((connection, message))
    return found


def record_seqs(messages: list[tuple[str, str]]) -> list[tuple[str, int]]:
    found: list[tuple[str, int]] = []
    for connection, message in messages:
        match = SEQ.search(message)
        if match:
            found.append((connection, int(match.group(1))))
    return found


async def until(
    predicate: Callable[[], bool], seconds: float, state: Callable[[], object] = lambda: ""
) -> None:
    """Wait for a background task's state to hold (polled: the exporter has no event);
    ``state`` describes what was seen when it times out."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {seconds} s: {state()}")
        await asyncio.sleep(0.02)
