"""Pure ASGI middleware: request ids, security headers and no-store (streaming-safe)."""

from __future__ import annotations

import logging
import re
import secrets
import time

from starlette.datastructures import MutableHeaders
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hypervision.core import metrics as meters
from hypervision.core.deps import SESSION_COOKIE

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
# Directives a route's own CSP (e.g. the attachment download's sandbox) must still carry:
# frame-ancestors and base-uri do not fall back to default-src.
REQUIRED_CSP = {"frame-ancestors": "'none'", "base-uri": "'none'", "object-src": "'none'"}
PUBLIC_PREFIX = "/static/"  # identical for everybody: may be cached even for a signed-in user


def carries_credentials(scope: Scope) -> bool:
    """An ``Authorization`` header or the session cookie (whatever its value)."""
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            return True
        if name == b"cookie" and SESSION_COOKIE in cookie_parser(value.decode("latin-1")):
            return True
    return False


def complete_csp(policy: str) -> str:
    """A route's own policy, completed with the directives every response must carry."""
    present = {part.split()[0].lower() for part in policy.split(";") if part.strip()}
    missing = [
        f"{name} {value}"
        for name, value in REQUIRED_CSP.items()
        if name not in present and not (name == "object-src" and "default-src" in present)
    ]
    return "; ".join([policy.strip().rstrip(";"), *missing]) if missing else policy


def _printable(path: str) -> str:
    """One log line per request even if the path holds CR/LF or escape sequences."""
    return path.encode("unicode_escape").decode("ascii")[:300]


class BodyTooLarge(Exception):
    """A request body above the route's limit (answered 413 before it is all read)."""


class RequestContextMiddleware:
    """Gives every request an id (kept from ``X-Request-ID`` when well-formed), sets security
    headers, and forbids caching (``Cache-Control: no-store``, SECURITY.md item 9) of anything
    under ``/api`` and of every response to a request that carries credentials (session
    cookie or ``Authorization`` header) or that sets a cookie: pages, JSON, redirects, files,
    streams and errors alike — only the public static files under ``/static/`` stay
    cacheable."""

    def __init__(
        self,
        app: ASGIApp,
        img_sources: tuple[str, ...] = (),
        body_limits: tuple[tuple[str, int], ...] = (),
        body_limit: int = 2 * 1024 * 1024,
        metrics: meters.Metrics | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics  # requests counted here, once each (docs/adr/0032)
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
        no_store = scope["path"].startswith("/api/") or (
            carries_credentials(scope) and not scope["path"].startswith(PUBLIC_PREFIX)
        )
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
                policy = headers["content-security-policy"]
                if policy != self.headers["content-security-policy"]:
                    headers["content-security-policy"] = complete_csp(policy)
                if no_store or "set-cookie" in headers:  # nor an answer that sets a cookie
                    headers["cache-control"] = "no-store"
            await send(message)

        started = False
        status = 500
        begun = time.perf_counter()
        metrics = self.metrics
        bound = meters.bind(metrics) if metrics is not None else None

        async def tracking_send(message: Message) -> None:
            nonlocal started, status
            if message["type"] == "http.response.start":
                started, status = True, message["status"]
                if metrics is not None:  # at the start: a live stream counts when it opens
                    metrics.observe_request(scope, status, time.perf_counter() - begun)
                await send_with_headers(message)
            else:  # body chunks (every live frame) pass straight through
                await send(message)

        declared = dict(scope.get("headers", [])).get(b"content-length", b"")
        try:
            if declared.isdigit() and int(declared) > limit:
                raise BodyTooLarge()
            await self.app(scope, capped_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            status = 413
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
            if metrics is not None and bound is not None:
                meters.unbind(bound)
                if not started:  # answered here (413, 500) or never (the client left)
                    metrics.observe_request(scope, status, time.perf_counter() - begun)
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
