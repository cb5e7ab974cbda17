"""Blob storage: opaque bytes under random keys, kept outside any web root (SECURITY.md item 16).

A key is 64 lowercase hex characters (256 random bits) and nothing else, so a key can never
name a path outside the store. ``LocalBlobStore`` keeps each blob in a sharded sub-folder
(``ab/cd/abcd…``), written atomically (temporary file, fsync, rename, fsync of the folder)
with mode 0600 in folders of mode 0700. An object store (S3 style) can implement the same
``BlobStore`` protocol later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import secrets
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Protocol

from hypervision.storage import private

log = logging.getLogger("hypervision.storage")

KEY_PATTERN = re.compile(r"[0-9a-f]{64}")
TEMP_PREFIX = ".tmp-"
FILE_MODE = private.FILE_MODE
DIR_MODE = private.DIR_MODE


class BlobError(Exception):
    """Base class of blob store errors."""


class InvalidBlobKey(BlobError, ValueError):
    """The key is not 64 lowercase hex characters."""


class BlobNotFound(BlobError, LookupError):
    """No blob under this key."""


def check_key(key: str) -> str:
    """The key itself when well-formed; :class:`InvalidBlobKey` otherwise (never a path)."""
    if not isinstance(key, str) or KEY_PATTERN.fullmatch(key) is None:
        raise InvalidBlobKey("blob key must be 64 lowercase hex characters")
    return key


def new_key() -> str:
    return secrets.token_hex(32)


class BlobStore(Protocol):
    """Where attachment bytes live. Keys are chosen by the store, never by a client."""

    async def put(self, data: bytes) -> str:
        """Store ``data`` durably under a new random key and return the key."""
        ...

    async def read(self, key: str) -> bytes:
        """The bytes under ``key``; :class:`BlobNotFound` when there are none."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the blob; a missing blob is not an error."""
        ...

    def list_keys(self, *, older_than: timedelta = timedelta(0)) -> AsyncIterator[str]:
        """Every key whose blob was written at least ``older_than`` ago (for sweeping)."""
        ...


class LocalBlobStore:
    """Blobs as files under ``root`` (``settings.blob_dir``, outside any web root)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()

    def path_of(self, key: str) -> Path:
        check_key(key)
        return self.root / key[:2] / key[2:4] / key

    # --- protocol ----------------------------------------------------------------------------

    async def put(self, data: bytes) -> str:
        return await asyncio.to_thread(self._put, bytes(data))

    async def read(self, key: str) -> bytes:
        return await asyncio.to_thread(self._read, key)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._delete, key)

    async def list_keys(self, *, older_than: timedelta = timedelta(0)) -> AsyncIterator[str]:
        for shard in await asyncio.to_thread(self._shards):
            for key in await asyncio.to_thread(self._keys_in, shard, older_than):
                yield key

    # --- blocking implementation (run in a worker thread) -----------------------------------

    def _ensure_dir(self, path: Path) -> None:
        """Create ``path`` and its missing parents with mode 0700."""
        private.make_dirs(path)

    def _put(self, data: bytes) -> str:
        key = new_key()
        final = self.path_of(key)
        folder = final.parent
        self._ensure_dir(folder)
        temp = folder / f"{TEMP_PREFIX}{secrets.token_hex(8)}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(temp, flags, FILE_MODE)
        try:
            try:
                os.fchmod(fd, FILE_MODE)
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                temp.unlink()
            raise
        self._fsync_dir(folder)
        return key

    @staticmethod
    def _fsync_dir(folder: Path) -> None:
        """Make the rename itself durable (not supported everywhere: best effort)."""
        try:
            fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            log.debug("fsync of a blob folder is not supported here")
        finally:
            os.close(fd)

    def _read(self, key: str) -> bytes:
        path = self.path_of(key)
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            raise BlobNotFound(key) from None
        with os.fdopen(fd, "rb") as handle:
            return handle.read()

    def _delete(self, key: str) -> None:
        self.path_of(key).unlink(missing_ok=True)

    def _shards(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        shards: list[Path] = []
        for first in sorted(self.root.iterdir()):
            if first.is_dir() and re.fullmatch(r"[0-9a-f]{2}", first.name):
                shards.extend(
                    second
                    for second in sorted(first.iterdir())
                    if second.is_dir() and re.fullmatch(r"[0-9a-f]{2}", second.name)
                )
        return shards

    @staticmethod
    def _keys_in(shard: Path, older_than: timedelta) -> list[str]:
        limit = time.time() - older_than.total_seconds()
        found: list[str] = []
        for path in sorted(shard.iterdir()):
            if KEY_PATTERN.fullmatch(path.name) and path.name.startswith(
                shard.parent.name + shard.name
            ):
                try:
                    if path.stat().st_mtime <= limit:
                        found.append(path.name)
                except FileNotFoundError:
                    continue
        return found

    def purge_temporary(self, *, older_than: timedelta = timedelta(hours=1)) -> int:
        """Remove temporary files left by a crash in the middle of a write."""
        limit = time.time() - older_than.total_seconds()
        removed = 0
        for shard in self._shards():
            for path in shard.glob(f"{TEMP_PREFIX}*"):
                with contextlib.suppress(FileNotFoundError):
                    if path.stat().st_mtime <= limit:
                        path.unlink()
                        removed += 1
        return removed


class TrackedBlobs:
    """A store wrapper for one request: remembers the keys it wrote so they can be removed
    when the request's transaction does not commit (no orphan blob is left reachable)."""

    def __init__(self, store: BlobStore) -> None:
        self.store = store
        self.written: list[str] = []

    async def put(self, data: bytes) -> str:
        key = await self.store.put(data)
        self.written.append(key)
        return key

    async def read(self, key: str) -> bytes:
        return await self.store.read(key)

    async def delete(self, key: str) -> None:
        await self.store.delete(key)

    def list_keys(self, *, older_than: timedelta = timedelta(0)) -> AsyncIterator[str]:
        return self.store.list_keys(older_than=older_than)

    async def discard(self) -> None:
        """Delete every blob written through this wrapper (best effort, never raises)."""
        while self.written:
            key = self.written.pop()
            try:
                await self.store.delete(key)
            except Exception:  # noqa: BLE001 - cleanup must not hide the original error
                log.warning("could not delete orphan blob %s", key)
