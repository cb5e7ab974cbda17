"""Pure ASGI middleware: request ids and security headers (streaming-safe)."""

from __future__ import annotations

import logging
import re
import secrets
import time

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("hypervision.errors")
access = logging.getLogger("hypervision.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "geolocation=(self), camera=(), microphone=()",
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "strict-transport-security": "max-age=63072000; includeSubDomains",
}


def _printable(path: str) -> str:
    """One log line per request even if the path holds CR/LF or escape sequences."""
    return path.encode("unicode_escape").decode("ascii")[:300]


class BodyTooLarge(Exception):
    """A request body above the route's limit (answered 413 before it is all read)."""


class RequestContextMiddleware:
    """Gives every request an id (kept from ``X-Request-ID`` when well-formed), sets security
    headers, and forbids caching of anything under ``/api`` (SECURITY.md item 9)."""

    def __init__(
        self,
        app: ASGIApp,
        img_sources: tuple[str, ...] = (),
        body_limits: tuple[tuple[str, int], ...] = (),
        body_limit: int = 2 * 1024 * 1024,
    ) -> None:
        self.app = app
        self.body_limits = body_limits  # (path suffix or prefix, bytes): the upload routes
        self.body_limit = body_limit  # every other request body
        self.headers = dict(SECURITY_HEADERS)
        if img_sources:  # e.g. the configured map tile server
            extra = " ".join(img_sources)
            self.headers["content-security-policy"] = self.headers[
                "content-security-policy"
            ].replace("img-src 'self' data: blob:", f"img-src 'self' data: blob: {extra}")

    def _limit(self, path: str) -> int:
        for pattern, limit in self.body_limits:
            if path.startswith(pattern) or path.endswith(pattern):
                return limit
        return self.body_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers", [])).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.match(incoming) else secrets.token_hex(12)
        scope.setdefault("state", {})["request_id"] = request_id
        no_store = scope["path"].startswith("/api/")
        limit = self._limit(scope["path"])
        received = 0

        async def capped_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge()
            return message

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["x-request-id"] = request_id
                for name, value in self.headers.items():
                    headers.setdefault(name, value)
                if no_store:
                    headers["cache-control"] = "no-store"
            await send(message)

        started = False
        status = 500
        begun = time.perf_counter()

        async def tracking_send(message: Message) -> None:
            nonlocal started, status
            if message["type"] == "http.response.start":
                started, status = True, message["status"]
            await send_with_headers(message)

        declared = dict(scope.get("headers", [])).get(b"content-length", b"")
        try:
            if declared.isdigit() and int(declared) > limit:
                raise BodyTooLarge()
            await self.app(scope, capped_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            mib = max(1, limit // (1024 * 1024))
            body = (
                '{"error":{"code":"too_large","message":"Requête trop volumineuse (au plus '
                f'{mib} Mo)."}}}}'
            ).encode()
            await send_with_headers(
                {
                    "type": "http.response.start",
                    "status": 413,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"connection", b"close"),
                    ],
                }
            )
            await send_with_headers({"type": "http.response.body", "body": body})
        except Exception:
            # Last resort, inside this middleware so the answer keeps its security headers.
            log.exception("unexpected error (request %s)", request_id)
            if started:
                raise
            body = b'{"error":{"code":"internal_error","message":"Erreur interne."}}'
            await send_with_headers(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send_with_headers({"type": "http.response.body", "body": body})
        finally:
            # The access log: method, path and status only. Never the query string (it may
            # hold a search text) nor any header or body content (SECURITY.md item 22).
            access.info(
                "%s %s %s %.0fms request=%s",
                scope["method"],
                _printable(scope["path"]),
                status,
                (time.perf_counter() - begun) * 1000,
                request_id,
            )
