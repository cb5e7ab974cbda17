"""The local blob store: random keys, sharded folders, atomic private files, no traversal."""

from __future__ import annotations

import os
import stat
import time
from datetime import timedelta
from pathlib import Path

import pytest

from hypervision.storage import blobs
from hypervision.storage.blobs import (
    BlobNotFound,
    BlobStore,
    InvalidBlobKey,
    LocalBlobStore,
    TrackedBlobs,
)


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


async def test_put_read_delete_round_trip(tmp_path: Path) -> None:
    store: BlobStore = LocalBlobStore(tmp_path / "blobs")
    key = await store.put(b"hello \x00 world")
    assert blobs.KEY_PATTERN.fullmatch(key)
    assert await store.read(key) == b"hello \x00 world"
    other = await store.put(b"hello \x00 world")
    assert other != key  # same content, new random key: names reveal nothing
    await store.delete(key)
    await store.delete(key)  # idempotent
    with pytest.raises(BlobNotFound):
        await store.read(key)
    assert await store.read(other) == b"hello \x00 world"


async def test_layout_modes_and_no_temporary_file_left(tmp_path: Path) -> None:
    root = tmp_path / "blobs"
    store = LocalBlobStore(root)
    key = await store.put(b"data")
    path = root / key[:2] / key[2:4] / key
    assert files_under(root) == [path]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for folder in (root, path.parent, path.parent.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert store.path_of(key) == path


@pytest.mark.parametrize(
    "key",
    [
        "",
        "../../etc/passwd",
        "a" * 63,
        "a" * 65,
        "A" * 64,
        "g" * 64,
        "a" * 62 + "/x",
        "a" * 63 + "\n",
        "/" + "a" * 63,
        "..%2f" + "a" * 59,
    ],
)
async def test_malformed_keys_are_refused(tmp_path: Path, key: str) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    with pytest.raises(InvalidBlobKey):
        await store.read(key)
    with pytest.raises(InvalidBlobKey):
        await store.delete(key)
    with pytest.raises(InvalidBlobKey):
        store.path_of(key)


async def test_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "blobs"
    store = LocalBlobStore(root)

    def broken_fsync(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        await store.put(b"data")
    assert files_under(root) == []


async def test_symlink_is_not_followed(tmp_path: Path) -> None:
    root = tmp_path / "blobs"
    store = LocalBlobStore(root)
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"outside")
    key = "ab" * 32
    path = store.path_of(key)
    path.parent.mkdir(parents=True)
    path.symlink_to(secret)
    with pytest.raises(OSError):  # noqa: PT011 - ELOOP, whatever its subclass
        await store.read(key)


async def test_keys_respect_age_and_ignore_stray_files(tmp_path: Path) -> None:
    root = tmp_path / "blobs"
    store = LocalBlobStore(root)
    old = await store.put(b"old")
    new = await store.put(b"new")
    past = time.time() - 7200
    os.utime(store.path_of(old), (past, past))
    (root / "README").write_text("not a blob")
    stray = store.path_of(new).parent / "not-a-key"
    stray.write_text("x")
    assert sorted([k async for k in store.list_keys()]) == sorted([old, new])
    assert [k async for k in store.list_keys(older_than=timedelta(hours=1))] == [old]
    temp = store.path_of(new).parent / f"{blobs.TEMP_PREFIX}crash"
    temp.write_bytes(b"partial")
    os.utime(temp, (past, past))
    assert store.purge_temporary(older_than=timedelta(hours=1)) == 1
    assert not temp.exists()
    assert [k async for k in LocalBlobStore(tmp_path / "missing").list_keys()] == []


async def test_tracked_blobs_discard_what_they_wrote(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    kept = await store.put(b"kept")
    tracked = TrackedBlobs(store)
    first = await tracked.put(b"one")
    second = await tracked.put(b"two")
    assert tracked.written == [first, second]
    assert await tracked.read(first) == b"one"
    await tracked.discard()
    assert tracked.written == []
    assert [k async for k in store.list_keys()] == [kept]
