"""Random tokens, their stored digests, and encryption of secrets kept in the database."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, InvalidToken


def new_token(prefix: str) -> str:
    """A 256-bit random token, URL-safe, with a readable prefix (``hvs_`` session, ``hvt_`` API)."""
    return f"{prefix}{secrets.token_urlsafe(32)}"


def digest(token: str) -> str:
    """What is stored for a token: its SHA-256 (the token itself has 256 bits of entropy)."""
    return hashlib.sha256(token.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


class SecretBox:
    """Encrypts small secrets (TOTP seeds) with a key derived from the configured secret key."""

    def __init__(self, secret_key: str) -> None:
        raw = hashlib.sha256(b"hypervision/secret-box/v1" + secret_key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(raw))

    def seal(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("secret cannot be decrypted with the configured secret key") from exc
