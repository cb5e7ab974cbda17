"""Compression of the application's answers: brotli when the client takes it, else gzip.

Built on Starlette's gzip middleware, whose responders already leave alone what must not be
compressed: answers that carry their own ``Content-Encoding`` (the precompressed static files),
partial content, small bodies, and the excluded media types — among them
``text/event-stream``: the live stream is never compressed nor held back in a buffer.
"""

from __future__ import annotations

import brotli
from starlette.datastructures import Headers
from starlette.middleware.gzip import (
    DEFAULT_EXCLUDED_CONTENT_TYPES,
    GZipResponder,
    IdentityResponder,
)
from starlette.types import ASGIApp, Receive, Scope, Send

EXCLUDED = (
    *DEFAULT_EXCLUDED_CONTENT_TYPES,
    "text/event-stream",
    "application/pdf",
    "application/vnd.pmtiles",  # its tiles are compressed already
)
UNCOMPRESSED_PATHS = frozenset({"/api/v1/stream"})  # straight through: not even a look per frame
MINIMUM_SIZE = 500
BROTLI_QUALITY = 4  # per request: half the CPU of 5 on a 130 kB page, as small (measured)
GZIP_LEVEL = 6


def pick_encoding(accept: str) -> str | None:
    """``br`` when the client takes it, else ``gzip``, else None (q=0 refuses)."""
    offered: dict[str, float] = {}
    for item in accept.lower().split(","):
        name, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        offered[name.strip()] = quality
    for encoding in ("br", "gzip"):
        if offered.get(encoding, offered.get("*", 0.0)) > 0:
            return encoding
    return None


class BrotliResponder(IdentityResponder):
    content_encoding = "br"

    def __init__(self, app: ASGIApp, minimum_size: int, quality: int) -> None:
        super().__init__(app, minimum_size, exclude_content_types=EXCLUDED)
        self.quality = quality
        self._compressor: brotli.Compressor | None = None

    async def apply_compression(self, body: bytes, *, more_body: bool) -> bytes:
        if self._compressor is None:
            self._compressor = brotli.Compressor(quality=self.quality)
        out = self._compressor.process(body)
        # A streamed body is flushed chunk by chunk: nothing is held back.
        end = self._compressor.flush() if more_body else self._compressor.finish()
        return bytes(out + end)


class CompressionMiddleware:
    def __init__(self, app: ASGIApp, minimum_size: int = MINIMUM_SIZE) -> None:
        self.app = app
        self.minimum_size = minimum_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNCOMPRESSED_PATHS:
            await self.app(scope, receive, send)
            return
        encoding = pick_encoding(Headers(scope=scope).get("accept-encoding", ""))
        responder: ASGIApp
        if encoding == "br":
            responder = BrotliResponder(self.app, self.minimum_size, BROTLI_QUALITY)
        elif encoding == "gzip":
            responder = GZipResponder(
                self.app, self.minimum_size, GZIP_LEVEL, exclude_content_types=EXCLUDED
            )
        else:
            responder = IdentityResponder(
                self.app, self.minimum_size, exclude_content_types=EXCLUDED
            )
        await responder(scope, receive, send)
