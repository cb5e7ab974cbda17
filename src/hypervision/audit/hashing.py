"""Checking audit records' hashes from raw driver rows, in worker processes (``audit verify``).

``audit.chain.canonical`` hashes ORM values; here the same bytes are built from the rows a
single query returns (``audit.parallel`` writes it for each engine), without SQLAlchemy's row
processing, so that batches can be checked by a process pool. A row is a tuple (``Layout``):
``prev_hash``, ``row_hash`` and the hashed fields in canonical (sorted) key order, JSON
columns as their stored text.

The bytes must equal ``canonical`` exactly (``tests/audit/test_hashing.py`` proves it over
tricky values). Each shortcut below is exact for the inputs it accepts and falls back to
``json.loads`` + the canonical encoder otherwise; a value this module does not know how to
read (a type SQLAlchemy would turn into something else) raises :class:`Undecodable`, and the
caller checks that record the ORM way. This module imports no SQLAlchemy: workers start fast.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import Any

# What ``canonical`` does to the whole record, applied to one JSON value: json.dumps's
# encoder, and the C function its ``encode`` builds on every call (built once here).
ENCODE = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
_ITERENCODE = c_make_encoder(None, None, encode_basestring, None, ":", ",", True, False, True)
_HEX32 = re.compile(r"[0-9a-f]{32}")

PLAIN, UUID, SQLITE_UUID, SQLITE_TIME = "plain", "uuid", "sqlite_uuid", "sqlite_time"
Row = tuple[Any, ...]  # prev_hash, row_hash, the hashed fields in Layout order


class Undecodable(Exception):
    """A value the fast path does not read exactly as the ORM would: check it the ORM way."""


@dataclass(frozen=True)
class Layout:
    """How one engine's raw rows map to the canonical record (built by ``audit.parallel``).

    A row is one JSON array: ``prev_hash``, ``row_hash``, then every hashed field in canonical
    (sorted) order, JSON columns as their stored text. ``kinds`` gives each field's kind:
    ``json``, ``PLAIN`` (used as it is) or ``SQLITE_*`` (converted as SQLAlchemy's SQLite types
    do)."""

    names: tuple[str, ...]
    kinds: tuple[str, ...]
    keys: tuple[str, ...]  # '"name":' for each field
    json: frozenset[int]  # fields holding a JSON column's text
    convert: tuple[int, ...]  # fields to convert (SQLITE_*)
    seq: int  # index of ``seq`` among the fields

    @classmethod
    def build(cls, fields: list[tuple[str, str]]) -> Layout:
        """``fields``: (name, kind) of every hashed field."""
        ordered = sorted(fields)
        names = tuple(name for name, _ in ordered)
        kinds = tuple(kind for _, kind in ordered)
        return cls(
            names=names,
            kinds=kinds,
            keys=tuple(f"{encode_basestring(name)}:" for name in names),
            json=frozenset(i for i, kind in enumerate(kinds) if kind == "json"),
            convert=tuple(i for i, kind in enumerate(kinds) if kind.startswith("sqlite_")),
            seq=names.index("seq"),
        )

    def canonical(self, fields: Any) -> str:
        """The canonical JSON of one record's fields (a sequence in ``names`` order), as text
        (``canonical`` encodes it)."""
        if len(fields) != len(self.names) or fields[self.seq].__class__ is not int:
            raise Undecodable("unexpected columns")
        if self.convert:
            fields = list(fields)
            for i in self.convert:
                fields[i] = _convert(fields[i], self.kinds[i])
        json_fields, pieces = self.json, []
        for i, key in enumerate(self.keys):
            value = fields[i]
            if i in json_fields:
                pieces.append(key + _json_piece(value))
            elif value.__class__ is str:
                pieces.append(key + encode_basestring(value))
            else:
                pieces.append(key + _value(value))
        return "{" + ",".join(pieces) + "}"


def _value(value: Any) -> str:
    return "null" if value is None else "".join(_ITERENCODE(value, 0))


def _convert(value: Any, kind: str) -> str | None:
    """A SQLite value as SQLAlchemy reads it, then as ``canonical`` writes it."""
    if value is None:
        return None
    if value.__class__ is not str:
        raise Undecodable(f"unexpected {type(value).__name__}")
    if kind == SQLITE_UUID:  # sqlalchemy.Uuid on SQLite: uuid.UUID(stored hex)
        if _HEX32.fullmatch(value):  # what str(uuid.UUID(value)) gives, without parsing it
            return f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"
        return str(uuid.UUID(value))
    if kind == SQLITE_TIME:  # sqlite.DATETIME: datetime.fromisoformat; then db.UTCDateTime
        moment = datetime.fromisoformat(value)
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        return moment.isoformat(timespec="microseconds")
    raise Undecodable(f"unknown kind {kind}")


def _json_piece(text: Any) -> str:
    """A JSON column's stored text -> its canonical JSON (``json.loads`` then ``ENCODE``)."""
    if text is None:
        return "null"
    if text.__class__ is not str:
        raise Undecodable(f"unexpected {type(text).__name__}")
    if text == "{}" or text == "[]":
        return text
    if _plain_list(text):
        return text.replace('", "', '","')
    return "".join(_ITERENCODE(json.loads(text), 0))


def _plain_list(text: str) -> bool:
    """A JSON list of strings as json.dumps writes it by default (``["a", "b"]``), none
    needing an escape: its canonical form only loses the space after each comma. Printable
    ASCII without a backslash, and every quote inside the brackets part of a ``", "``
    separator (non-overlapping), so no string holds a quote: a few scans in C, where a regular
    expression over a list of 50 UUIDs cost more than the rest of the record."""
    if len(text) < 4 or not (text.startswith('["') and text.endswith('"]')):
        return False
    if not (text.isascii() and text.isprintable()) or "\\" in text:
        return False
    inner = text[2:-2]
    return inner.count('"') == 2 * inner.count('", "')


# (prev_hashes, row_hashes, clean, altered, undecoded); see check_batch.
Checked = tuple[list[Any], list[Any], bool, int | None, list[int]]


def check_batch(layout: Layout, rows: list[Row], full: bool = False) -> Checked:
    """Check a batch of rows. ``altered``: the index of the first row whose ``row_hash`` is
    not SHA-256(its own ``prev_hash`` || canonical) (None if every row matches; the caller
    checks first that ``prev_hash`` is its predecessor's hash); ``undecoded``: the rows
    before it that could not be read here (to check the ORM way).

    ``clean``: every hash matches, every row read, ``seq`` contiguous and each ``prev_hash``
    its predecessor's ``row_hash``; then, unless ``full``, only the first ``prev_hash`` and
    the last ``row_hash`` come back (little to send between processes). Otherwise every
    row's, up to ``altered``."""
    prevs: list[Any] = []
    hashes: list[Any] = []
    undecoded: list[int] = []
    altered: int | None = None
    linked, seq_index, expected = True, layout.seq + 2, None
    sha256 = hashlib.sha256
    for i, values in enumerate(rows):
        prev, row_hash = values[0], values[1]
        seq = values[seq_index] if len(values) > seq_index else None
        if i and (prev != hashes[-1] or seq != expected):
            linked = False
        expected = seq + 1 if seq.__class__ is int else None
        prevs.append(prev)
        hashes.append(row_hash)
        try:
            body = layout.canonical(values[2:])
            digest = sha256((prev + body).encode()).hexdigest()
        except Exception:  # noqa: BLE001 - any value read differently: the ORM decides
            undecoded.append(i)
            continue
        if digest != row_hash:
            altered = i  # what follows does not matter
            break
    clean = linked and altered is None and not undecoded
    if clean and not full and prevs:
        return prevs[:1], hashes[-1:], True, None, []
    return prevs, hashes, clean, altered, undecoded


def warm() -> int:
    """A no-op task: makes a worker process start and import this module."""
    return 0
