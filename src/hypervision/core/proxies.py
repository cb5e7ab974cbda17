"""Trusted proxies: the client's address from ``X-Forwarded-For`` (and the scheme from
``X-Forwarded-Proto``) when, and only when, the socket's peer is one of
``forwarded_allow_ips`` — uvicorn's own rules, applied inside the application rather than by
the server, so that the application also knows whether a request came through such a proxy
(a header the ingress sets, e.g. a verified client certificate's, is believed only then;
docs/adr/0038)."""

from __future__ import annotations

from typing import Any, cast

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

VIA_TRUSTED_PROXY = "via_trusted_proxy"


class TrustedProxies:
    def __init__(self, app: ASGIApp, trusted: str) -> None:
        self.inner = ProxyHeadersMiddleware(cast(Any, app), trusted_hosts=trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            peer = scope.get("client")
            trusted = peer is not None and peer[0] in self.inner.trusted_hosts
            scope.setdefault("state", {})[VIA_TRUSTED_PROXY] = trusted
        await self.inner(cast(Any, scope), cast(Any, receive), cast(Any, send))


def via_trusted_proxy(scope: Scope) -> bool:
    """Whether the request's socket peer was a trusted proxy."""
    return bool(scope.get("state", {}).get(VIA_TRUSTED_PROXY, False))
