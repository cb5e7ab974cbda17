"""The self-hosted vector base map: one PMTiles file the operator provides
(``HYPERVISION_MAP_PMTILES``), served to signed-in users with HTTP range requests (RFC 9110
section 14) — the browser reads the header, the directories and each tile as byte ranges.

The file is never read whole into memory: a range is read in chunks from an open file handle
in a worker thread. One range per request (what PMTiles clients send); a request for several
ranges gets the whole file, as RFC 9110 allows.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import anyio
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

CHUNK = 64 * 1024
MEDIA_TYPE = "application/vnd.pmtiles"
_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1


class Unsatisfiable(Exception):
    """A well-formed range that lies wholly beyond the end of the file (answered 416)."""


def parse_range(header: str, size: int) -> ByteRange | None:
    """The single byte range asked for, or None when the header is to be ignored (malformed,
    several ranges, another unit): the whole file is then sent. Raises Unsatisfiable when the
    range starts at or beyond the end of the file, or asks for the last zero bytes."""
    match = _RANGE.match(header)
    if match is None:
        return None
    first, last = match.group(1), match.group(2)
    if not first and not last:
        return None
    if not first:  # a suffix: the last N bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise Unsatisfiable
        return ByteRange(max(0, size - suffix), size - 1)
    start = int(first)
    if last and int(last) < start:
        return None  # invalid: ignored
    if start >= size:
        raise Unsatisfiable
    end = int(last) if last else size - 1
    return ByteRange(start, min(end, size - 1))


def etag_of(stat: os.stat_result) -> str:
    """A strong validator: changes when the operator replaces the file."""
    digest = hashlib.sha256(f"{stat.st_ino}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return f'"{digest.hexdigest()[:32]}"'


async def _chunks(path: Path, start: int, length: int) -> AsyncIterator[bytes]:
    async with await anyio.open_file(path, "rb") as handle:
        await handle.seek(start)
        left = length
        while left > 0:
            data = await handle.read(min(CHUNK, left))
            if not data:  # the file shrank while being read
                return
            left -= len(data)
            yield data


def serve(request: Request, path: Path) -> Response:
    """The file, or the byte range the request asks for (206), with ``Accept-Ranges``,
    ``ETag``, ``If-Range`` and ``If-None-Match`` honoured; 416 for a range beyond the end."""
    try:
        stat = path.stat()
    except OSError:
        return Response("Fond de carte introuvable.", status_code=404, media_type="text/plain")
    size, etag = stat.st_size, etag_of(stat)
    headers = {"accept-ranges": "bytes", "etag": etag}
    wanted = request.headers.get("range")
    if_range = request.headers.get("if-range")
    if wanted and if_range is not None and if_range.strip() != etag:
        wanted = None  # the file changed since the client's copy: send it whole
    if not wanted and etag in (request.headers.get("if-none-match") or "").split(","):
        return Response(status_code=304, headers=headers)
    part = None
    if wanted:
        try:
            part = parse_range(wanted, size)
        except Unsatisfiable:
            headers["content-range"] = f"bytes */{size}"
            return Response(status_code=416, headers=headers)
    start, length, status = (part.start, part.length, 206) if part else (0, size, 200)
    if part:
        headers["content-range"] = f"bytes {part.start}-{part.end}/{size}"
    headers["content-length"] = str(length)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=MEDIA_TYPE)
    return StreamingResponse(
        _chunks(path, start, length), status_code=status, headers=headers, media_type=MEDIA_TYPE
    )
