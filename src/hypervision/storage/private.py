"""Private files on the local disk: folders 0700, files 0600, whatever the process's umask.

The embedded store (data folder, SQLite database and its ``-wal``/``-shm``, blobs, audit
witness and key folders) holds everything the platform protects: nobody but the service's own
account may read it. Folders and files are created with these modes (``mkdir``/``open`` modes are
only ever narrowed by the umask, and an unusual umask is corrected by a ``chmod``), and
``hypervision migrate`` tightens a store left open by an older version (:func:`tighten`).
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def make_dirs(path: Path) -> list[Path]:
    """Create ``path`` and its missing parents, each 0700; the ones created, outermost first.
    Existing folders are left as they are."""
    missing: list[Path] = []
    current = Path(path)
    while not current.exists():
        missing.append(current)
        current = current.parent
    made: list[Path] = []
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # a concurrent process made it first
            folder.mkdir(mode=DIR_MODE)
            os.chmod(folder, DIR_MODE)
            made.append(folder)
    return made


def touch(path: Path) -> None:
    """Create an empty file 0600 when missing (before a library such as SQLite creates it with
    its own mode: SQLite gives the ``-wal`` and ``-shm`` files the database file's mode)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, FILE_MODE)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


def tighten(path: Path, *, recursive: bool = False) -> list[Path]:
    """Remove group and other permissions from ``path`` (and, when ``recursive``, from every
    folder and file under it; symbolic links are neither followed nor changed); the paths
    changed. A missing path, or one another account owns (a volume's mount point), is left
    alone."""
    changed: list[Path] = []
    paths = [Path(path)]
    if recursive and paths[0].is_dir() and not paths[0].is_symlink():
        for folder, dirs, files in os.walk(path):
            paths.extend(Path(folder, name) for name in (*dirs, *files))
    for item in paths:
        try:
            mode = item.lstat().st_mode
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(mode) or not mode & 0o077 or item.lstat().st_uid != os.geteuid():
            continue
        os.chmod(item, stat.S_IMODE(mode) & ~0o077)
        changed.append(item)
    return changed
