"""The session's CSRF token as pages carry it: masked afresh in every page.

Pages are compressed (brotli/gzip) and carry the token next to text an attacker may choose (a
search, filters): BREACH guesses a secret from the compressed size of such pages. Each page
therefore carries ``m.<base64url(pad ‖ token XOR pad)>`` with a random pad: the bytes differ in
every answer, the secret behind them does not. The checks accept the masked form and the bare
token (API clients that read it from ``/api/v1/auth/me``).
"""

from __future__ import annotations

import base64
import binascii
import secrets

from hypervision.identity.secrets import same

PREFIX = "m."


def mask(token: str) -> str:
    if not token:
        return ""
    raw = token.encode()
    pad = secrets.token_bytes(len(raw))
    masked = bytes(a ^ b for a, b in zip(raw, pad, strict=True))
    return PREFIX + base64.urlsafe_b64encode(pad + masked).decode().rstrip("=")


def unmask(sent: str) -> str:
    """The token behind a masked value; anything else unchanged."""
    if not sent.startswith(PREFIX):
        return sent
    body = sent[len(PREFIX) :]
    try:
        data = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        return ""
    if len(data) % 2:
        return ""
    half = len(data) // 2
    try:
        return bytes(a ^ b for a, b in zip(data[:half], data[half:], strict=True)).decode()
    except UnicodeDecodeError:
        return ""


def matches(sent: str, token: str | None) -> bool:
    """The value sent (masked or bare) is the session's token."""
    return bool(token) and bool(sent) and same(unmask(sent), token or "")
