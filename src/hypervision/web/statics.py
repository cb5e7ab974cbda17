"""The static files: fingerprinted URLs, long-lived caching and precompressed bodies.

Pages link every static file through ``static_url("vendor/htmx/htmx.min.js")``, which puts the
file's content hash in the URL: ``/static/<hash>/vendor/htmx/htmx.min.js``. A request whose hash
is the file's current one is answered ``Cache-Control: public, max-age=31536000, immutable``:
a browser never asks again, and a new version of the file gets a new URL. A folder has a hash
too (over its files), for scripts that build file names under it (the map's boundaries). Any
other request (no hash, or a stale one from a page of a previous version) gets the current file
with ``no-cache``: revalidated by its ETag.

Stylesheets are served with their ``url(...)`` references rewritten to fingerprinted URLs, so
that fonts, icons and images are immutable too. Text files (CSS, JavaScript, JSON, GeoJSON, SVG)
are compressed once per process (brotli at its best quality, and gzip) and kept in memory.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread
import brotli
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from hypervision.core.assets import STATIC
from hypervision.core.compression import pick_encoding

PREFIX = "/static/"
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "public, no-cache"
HASH_LENGTH = 12
_HASH = re.compile(rf"^[0-9a-f]{{{HASH_LENGTH}}}$")
_CSS_URL = re.compile(r"""url\(\s*(['"]?)([^'")]+)\1\s*\)""")
TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".geojson": "application/geo+json",
    ".svg": "image/svg+xml",
    ".html": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".woff2": "font/woff2",
    ".woff": "font/woff",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".ico": "image/x-icon",
    ".webmanifest": "application/manifest+json",
}
COMPRESSIBLE = {".css", ".js", ".mjs", ".json", ".geojson", ".svg", ".html", ".txt", ".webmanifest"}


@dataclass(frozen=True)
class Body:
    """One text file as served: its bytes, the same compressed, and their fingerprint."""

    plain: bytes
    digest: str
    br: bytes | None = None
    gz: bytes | None = None


class StaticFiles:
    """Fingerprints, rewritten stylesheets and compressed bodies of the files under ``root``,
    recomputed when a file changes (size or modification time)."""

    def __init__(self, root: Path, folders: tuple[str, ...] = ()) -> None:
        self.root = root.resolve()
        self._lock = threading.Lock()
        self._digests: dict[Path, tuple[tuple[int, int], str]] = {}
        self._bodies: dict[Path, tuple[tuple[int, int], Body]] = {}
        # The folders pages link to (a request's hash may be theirs), not every ancestor: a
        # folder's hash reads its whole tree.
        self._folders: set[Path] = {self.root.joinpath(*f.split("/")) for f in folders}

    # --- lookup ----------------------------------------------------------------------------
    def locate(self, relative: str) -> Path | None:
        """The file or folder at ``relative`` under the root; None for anything outside it,
        hidden, or absent."""
        parts = [part for part in relative.split("/") if part]
        if any(part.startswith(".") or "\\" in part or "\x00" in part for part in parts):
            return None
        path = self.root.joinpath(*parts).resolve() if parts else self.root
        if path != self.root and not path.is_relative_to(self.root):
            return None
        return path if path.exists() else None

    @staticmethod
    def _stamp(path: Path) -> tuple[int, int]:
        stat = path.stat()
        return stat.st_mtime_ns, stat.st_size

    # --- fingerprints ----------------------------------------------------------------------
    def digest(self, path: Path) -> str:
        """A file's fingerprint (of what is served: a stylesheet after its rewriting), or a
        folder's (over its files' names and fingerprints)."""
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
            sha = hashlib.sha256()
            for file in files:
                sha.update(f"{file.relative_to(path).as_posix()}\0{self.digest(file)}\n".encode())
            return sha.hexdigest()[:HASH_LENGTH]
        stamp = self._stamp(path)
        with self._lock:
            known = self._digests.get(path)
        if known and known[0] == stamp:
            return known[1]
        digest = hashlib.sha256(self._content(path)).hexdigest()[:HASH_LENGTH]
        with self._lock:
            self._digests[path] = (stamp, digest)
        return digest

    def url(self, relative: str) -> str:
        """The fingerprinted URL of a file or folder (a folder's ends with ``/``); the plain
        URL when the file is absent (a missing asset then shows as a 404, not an error)."""
        path = self.locate(relative)
        clean = relative.strip("/")
        if path is None:
            return PREFIX + clean
        suffix = ""
        if path.is_dir():
            suffix = "/"
            with self._lock:
                self._folders.add(path)
        return f"{PREFIX}{self.digest(path)}/{clean}{suffix}"

    # --- contents --------------------------------------------------------------------------
    def _content(self, path: Path) -> bytes:
        data = path.read_bytes()
        if path.suffix != ".css":
            return data
        return self._rewrite_css(path, data.decode("utf-8")).encode("utf-8")

    def _rewrite_css(self, path: Path, css: str) -> str:
        """``url(fonts/x.woff2)`` → ``url(/static/<hash>/vendor/dsfr/fonts/x.woff2)``."""

        def fingerprinted(match: re.Match[str]) -> str:
            quote, target = match.group(1), match.group(2).strip()
            if target.startswith(("data:", "#", "/", "http:", "https:")):
                return match.group(0)
            cut = min((i for i in (target.find("?"), target.find("#")) if i >= 0), default=None)
            name, rest = (target[:cut], target[cut:]) if cut is not None else (target, "")
            file = (path.parent / name).resolve()
            if not file.is_file() or not file.is_relative_to(self.root):
                return match.group(0)
            relative = file.relative_to(self.root).as_posix()
            return f"url({quote}{PREFIX}{self.digest(file)}/{relative}{rest}{quote})"

        return _CSS_URL.sub(fingerprinted, css)

    def body(self, path: Path) -> Body:
        """A text file as served, compressed (once per change of the file)."""
        stamp = self._stamp(path)
        with self._lock:
            known = self._bodies.get(path)
        if known and known[0] == stamp:
            return known[1]
        plain = self._content(path)
        body = Body(
            plain=plain,
            digest=hashlib.sha256(plain).hexdigest()[:HASH_LENGTH],
            br=bytes(brotli.compress(plain, quality=11)),
            gz=gzip.compress(plain, compresslevel=9, mtime=0),
        )
        with self._lock:
            self._bodies[path] = (stamp, body)
            self._digests[path] = (stamp, body.digest)
        return body

    # --- the endpoint ----------------------------------------------------------------------
    async def serve(self, request: Request) -> Response:
        relative: str = request.path_params["path"]
        first, _, rest = relative.partition("/")
        wanted = first if _HASH.match(first) else None
        if wanted is not None:
            relative = rest
        path = self.locate(relative)
        if path is None or not path.is_file():
            return Response("Fichier introuvable.", status_code=404, media_type="text/plain")
        if wanted is not None and self._fingerprint_matches(path, wanted):
            cache = IMMUTABLE
        else:
            cache = REVALIDATE
        media_type = TYPES.get(path.suffix.lower(), "application/octet-stream")
        if path.suffix.lower() not in COMPRESSIBLE:
            return FileResponse(path, media_type=media_type, headers={"Cache-Control": cache})
        body = await anyio.to_thread.run_sync(self.body, path)
        encoding = pick_encoding(request.headers.get("accept-encoding", ""))
        content, tag = body.plain, body.digest
        if encoding == "br" and body.br is not None:
            content, tag = body.br, f"{body.digest}-br"
        elif encoding == "gzip" and body.gz is not None:
            content, tag = body.gz, f"{body.digest}-gzip"
        else:
            encoding = None
        headers = {"Cache-Control": cache, "ETag": f'"{tag}"', "Vary": "Accept-Encoding"}
        sent = {t.strip() for t in request.headers.get("if-none-match", "").split(",")}
        if f'"{tag}"' in sent:
            return Response(status_code=304, headers=headers)
        if encoding is not None:
            headers["Content-Encoding"] = encoding
        return Response(content, media_type=media_type, headers=headers)

    def _fingerprint_matches(self, path: Path, wanted: str) -> bool:
        """The URL's hash is the file's, or that of one of its folders that pages link to."""
        if self.digest(path) == wanted:
            return True
        with self._lock:
            folders = [f for f in self._folders if path.is_relative_to(f)]
        return any(self.digest(folder) == wanted for folder in folders)


# The map's script builds the boundary files' names under their folder's URL.
FILES = StaticFiles(STATIC, folders=("vendor/boundaries",))
PURGED = "vendor/dsfr/dsfr.purged.css"  # the DSFR and its icons, reduced at install
FULL = ("vendor/dsfr/dsfr.min.css", "vendor/dsfr/utility/icons/icons.min.css")


def static_url(relative: str) -> str:
    """The fingerprinted URL of a static file (templates: ``{{ static('app.js') }}``)."""
    return FILES.url(relative)


def dsfr_stylesheets() -> list[str]:
    """The DSFR's stylesheet(s): the reduced one, or the full ones when it was not built."""
    if FILES.locate(PURGED) is not None:
        return [static_url(PURGED)]
    return [static_url(name) for name in FULL]
