"""Uploaded files to raw cell columns, one function per format, before any schema applies.

The format is told by the content, never by the name alone (SECURITY.md 16): a zip holding
``xl/workbook.xml`` is XLSX, one whose ``mimetype`` says so is ODS, ``PAR1`` is Parquet, a
text starting with ``{`` or ``[`` is JSON (GeoJSON when it is a FeatureCollection), other
text is CSV. Archives are inspected before they are opened: declared sizes, compression
ratio, and the real decompressed size (a zip may lie about its sizes).

A raw table keeps, for every row, the number a person sees in the file: for CSV and sheets
the header is row 1; for JSON, GeoJSON and Parquet the first record is 1.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import json
import zipfile
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from hypervision.products.checks import ErrorSink, show

DELIMITERS = (",", ";", "\t", "|")
MAX_ZIP_RATIO = 200  # uncompressed / compressed; XLSX and ODS stay far below
MAX_UNCOMPRESSED = 1 << 30  # 1 GiB of XML behind one workbook
MAX_CELLS = 50_000_000
MAX_ZIP_MEMBERS = 10_000
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ODS_MIMETYPE = b"application/vnd.oasis.opendocument.spreadsheet"


class ReadError(Exception):
    """The whole file cannot be read (unreadable, too big, zip bomb, unknown format)."""

    def __init__(self, fr: str, en: str) -> None:
        self.fr = fr
        self.en = en
        super().__init__(f"{fr} / {en}")


@dataclass
class RawTable:
    headers: list[str]
    columns: list[pa.Array]  # text, or typed for Parquet
    rows: pa.Array  # int64: each kept row's number in the file
    format: str
    sink: ErrorSink
    rows_read: int
    encoding: str | None = None
    delimiter: str | None = None
    french: bool = False  # decimal commas and dd/mm/yyyy dates accepted
    geometry_column: str | None = None


def detect_format(data: bytes, filename: str, media_type: str | None) -> str:
    head = data[:8]
    if head[:4] == b"PAR1":
        return "parquet"
    if head[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                names = set(z.namelist())
                if "mimetype" in names and z.read("mimetype").strip() == ODS_MIMETYPE:
                    return "ods"
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise ReadError("Archive illisible.", "Unreadable archive.") from e
        if "xl/workbook.xml" in names:
            return "xlsx"
        raise ReadError(
            "Archive non reconnue : seuls XLSX et ODS sont acceptés.",
            "Unrecognised archive: only XLSX and ODS are accepted.",
        )
    if head == OLE_MAGIC:
        return "xls"
    text = data[3:] if data.startswith(codecs.BOM_UTF8) else data
    start = text[:64].lstrip()
    if start[:1] in (b"{", b"["):
        return "json"
    if b"\x00" in data[:4096] and not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ReadError(
            f"Format de fichier non reconnu ({show(filename)}).",
            "Unknown file format: expected CSV, XLSX, ODS, JSON, GeoJSON or Parquet.",
        )
    return "csv"


# --- CSV -----------------------------------------------------------------------------------


def _utf8_ok(data: bytes) -> bool:
    """Whether ``data`` is valid UTF-8, checked by Arrow over the bytes in place (no copy)."""
    offsets = pa.py_buffer(np.array([0, len(data)], dtype=np.int64))
    one = pa.Array.from_buffers(pa.large_binary(), 1, [None, offsets, pa.py_buffer(data)])
    try:
        one.cast(pa.large_string())
    except pa.ArrowInvalid:
        return False
    return True


def decode(data: bytes) -> tuple[str, bytes]:
    """(encoding found, the text without BOM: UTF-8, or the single-byte original).

    Windows-1252 and Latin-1 text is left as it is (the CSV reader transcodes it, block by
    block, while it parses): quotes, separators and line ends are the same bytes.
    """
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8-sig", data[3:]
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return "utf-16", data.decode("utf-16").encode()
        except UnicodeDecodeError as e:
            raise ReadError("Texte UTF-16 illisible.", "Unreadable UTF-16 text.") from e
    if _utf8_ok(data):
        return "utf-8", data
    # cp1252 leaves five bytes undefined; a file holding one is Latin-1
    return (
        "latin-1"
        if any(b in data for b in (b"\x81", b"\x8d", b"\x8f", b"\x90", b"\x9d"))
        else "cp1252"
    ), data


def sniff_delimiter(sample: str) -> str:
    lines = sample.splitlines()[:50]
    if len(lines) > 1 and not sample.endswith(("\n", "\r")):
        lines = lines[:-1]  # the last line of a sample may be cut
    best: tuple[tuple[bool, float, int], str] = ((False, 0.0, 0), ",")
    for d in DELIMITERS:
        counts = [len(r) for r in csv.reader(lines, delimiter=d) if r]
        if not counts:
            continue
        mode, seen = Counter(counts).most_common(1)[0]
        if mode < 2:
            continue
        score = (counts[0] == mode, seen / len(counts), mode)
        if score > best[0]:
            best = (score, d)
    return best[1]


def _quoted_fields(text: bytes, delimiter: str) -> bool:
    """Whether a field may start with a quote (and so hold a line break)."""
    return text.startswith(b'"') or b'\n"' in text or (delimiter + '"').encode() in text


def _parse_csv(
    text: bytes,
    encoding: str,
    delimiter: str,
    n: int,
    threads: bool,
    bad: list[tuple[int | None, str]],
) -> pa.Table:
    def invalid(row: Any) -> str:
        bad.append((row.number, row.text))
        return "skip"

    return pcsv.read_csv(
        io.BytesIO(text),
        read_options=pcsv.ReadOptions(
            autogenerate_column_names=True,
            use_threads=threads,
            encoding="utf8" if encoding.startswith("utf") else encoding,
        ),
        parse_options=pcsv.ParseOptions(
            delimiter=delimiter,
            newlines_in_values=_quoted_fields(text, delimiter),
            ignore_empty_lines=False,
            invalid_row_handler=invalid,
        ),
        convert_options=pcsv.ConvertOptions(
            column_types={f"f{i}": pa.string() for i in range(n)},
            strings_can_be_null=True,  # an empty cell is missing, as in Table Schema
        ),
    )


def read_csv(data: bytes, *, limit: int | None = None) -> RawTable:
    encoding, text = decode(data)
    if limit is not None:  # a sample: cut after limit + 1 lines
        cut = -1
        for _ in range(limit + 1):
            cut = text.find(b"\n", cut + 1)
            if cut < 0:
                break
        if cut >= 0:
            text = text[: cut + 1]
    if not text.endswith((b"\n", b"\r")):
        text += b"\n"  # Arrow cannot read a lone header line without its line end
    single_byte = not encoding.startswith("utf")
    sample = text[:65536].decode("cp1252" if single_byte else "utf-8", errors="replace")
    delimiter = sniff_delimiter(sample)
    header_row = next(csv.reader(io.StringIO(sample), delimiter=delimiter), [])
    if not header_row:
        raise ReadError("Le fichier est vide.", "The file is empty.")
    bad: list[tuple[int | None, str]] = []
    try:
        table = _parse_csv(text, encoding, delimiter, len(header_row), True, bad)
        if bad and bad[0][0] is None:  # row numbers are only known single-threaded
            bad.clear()
            table = _parse_csv(text, encoding, delimiter, len(header_row), False, bad)
    except pa.ArrowInvalid as e:
        raise ReadError("CSV illisible.", f"Unreadable CSV: {show(e, 200)}") from e
    sink = ErrorSink()
    width = table.num_columns
    for number, row_text in bad[:]:
        cells = len(next(csv.reader([row_text], delimiter=delimiter), []))
        sink.add(number or 0, None, f"{cells} cellule(s) au lieu de {width}, ligne ignorée")
    first = table.slice(0, 1).to_pylist()
    headers = ["" if v is None else str(v) for v in first[0].values()] if first else []
    body = table.slice(1)
    total = body.num_rows + len(bad)
    numbers = np.arange(2, total + 2, dtype=np.int64)
    if bad:
        numbers = np.setdiff1d(numbers, np.array([b[0] or 0 for b in bad], np.int64))
    columns = [c.combine_chunks().cast(pa.string()) for c in body.columns]
    raw = RawTable(
        headers,
        columns,
        pa.array(numbers),
        "csv",
        sink,
        total,
        encoding=encoding,
        delimiter=delimiter,
        french=True,
    )
    return drop_blank_rows(raw)


def drop_blank_rows(raw: RawTable) -> RawTable:
    """Rows whose every cell is empty are left out (their numbers are kept by the others)."""
    if not raw.columns or any(c.null_count == 0 for c in raw.columns):
        return raw  # empty cells are null here: a column without one has no blank row
    blank = None
    for c in raw.columns:
        empty = pc.is_null(c)
        blank = empty if blank is None else pc.and_(blank, empty)
    keep = pc.invert(blank)
    if pc.all(keep).as_py() is not False:
        return raw
    raw.columns = [c.filter(keep) for c in raw.columns]
    raw.rows = raw.rows.filter(keep)
    return raw


# --- spreadsheets ----------------------------------------------------------------------------


def check_zip(data: bytes) -> None:
    """Refuse a zip bomb: declared sizes and ratio first, then the real decompressed size."""
    refused = ReadError(
        "Classeur refusé : son contenu décompressé est anormalement grand (bombe zip).",
        "Workbook refused: its decompressed content is abnormally large (zip bomb).",
    )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            infos = z.infolist()
            declared = sum(i.file_size for i in infos)
            if (
                len(infos) > MAX_ZIP_MEMBERS
                or declared > MAX_UNCOMPRESSED
                or declared > MAX_ZIP_RATIO * max(len(data), 1)
            ):
                raise refused
            real = 0
            for info in infos:
                with z.open(info) as member:
                    while chunk := member.read(1 << 20):
                        real += len(chunk)
                        if real > MAX_UNCOMPRESSED or real > MAX_ZIP_RATIO * len(data):
                            raise refused
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as e:
        # RuntimeError: an encrypted member (a workbook protected by a password)
        raise ReadError(
            "Classeur illisible ou protégé.", "Unreadable or protected workbook."
        ) from e


def cell_text(v: Any) -> str | None:
    """A cell or JSON value as text, as a person would type it."""
    if v is None or v == "":
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    if isinstance(v, dt.datetime | dt.date | dt.time):
        return v.isoformat()
    if isinstance(v, dict | list):
        return json.dumps(v, ensure_ascii=False)
    return str(v)


def read_sheet(
    data: bytes, fmt: str, *, sheet: str | int | None = None, limit: int | None = None
) -> RawTable:
    import python_calamine as cal

    if fmt != "xls":
        check_zip(data)
    try:
        wb = cal.CalamineWorkbook.from_filelike(io.BytesIO(data))
        try:
            ws = (
                wb.get_sheet_by_name(sheet)
                if isinstance(sheet, str)
                else wb.get_sheet_by_index(sheet or 0)
            )
        except (cal.WorksheetNotFound, IndexError) as e:
            raise ReadError(
                f"Feuille « {show(sheet)} » introuvable.", f"Sheet {sheet!r} not found."
            ) from e
        if ws.height * max(ws.width, 1) > MAX_CELLS:
            raise ReadError("Feuille trop grande.", "Sheet too large.")
        cells = ws.to_python(skip_empty_area=False, nrows=None if limit is None else limit + 50)
    except cal.CalamineError as e:
        raise ReadError("Classeur illisible.", f"Unreadable workbook: {show(e, 200)}") from e
    top = next((i for i, r in enumerate(cells) if any(c not in (None, "") for c in r)), None)
    if top is None:
        raise ReadError("La feuille est vide.", "The sheet is empty.")
    header = [cell_text(c) or "" for c in cells[top]]
    width = len(header)
    while width and not header[width - 1]:
        width -= 1
    body = cells[top + 1 :] if limit is None else cells[top + 1 : top + 1 + limit]
    sink = ErrorSink()
    keep: list[int] = []
    for i, r in enumerate(body):
        if any(c not in (None, "") for c in r[width:]):
            sink.add(top + i + 2, None, "cellule(s) hors des colonnes d'en-tête, ligne ignorée")
        else:
            keep.append(i)
    rows = [body[i] for i in keep]
    columns = [
        pa.array([cell_text(r[j]) if j < len(r) else None for r in rows], pa.string())
        for j in range(width)
    ]
    numbers = pa.array([top + i + 2 for i in keep], pa.int64())
    raw = RawTable(header[:width], columns, numbers, fmt, sink, len(body), french=True)
    return drop_blank_rows(raw)


# --- JSON, GeoJSON, Parquet --------------------------------------------------------------------


def _records_table(
    records: list[Any], fmt: str, unit: str, extra: dict[str, list[str | None]] | None = None
) -> RawTable:
    sink = ErrorSink(unit=unit)
    headers: dict[str, None] = {}
    kept: list[int] = []
    for i, rec in enumerate(records):
        if isinstance(rec, dict):
            headers.update(dict.fromkeys(rec))
            kept.append(i)
        else:
            sink.add(i + 1, None, "n'est pas un objet JSON, ignoré")
    objs = [records[i] for i in kept]
    names = list(headers)
    columns = [pa.array([cell_text(o.get(h)) for o in objs], pa.string()) for h in names]
    for name, values in (extra or {}).items():
        names.append(name)
        columns.append(pa.array([values[i] for i in kept], pa.string()))
    numbers = pa.array([i + 1 for i in kept], pa.int64())
    return RawTable(names, columns, numbers, fmt, sink, len(records), encoding="utf-8")


def read_json(data: bytes, *, limit: int | None = None) -> RawTable:
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ReadError("JSON invalide.", f"Invalid JSON: {show(e, 200)}") from e
    if isinstance(doc, dict) and doc.get("type") == "FeatureCollection":
        features = doc.get("features")
        if not isinstance(features, list):
            raise ReadError("GeoJSON sans liste « features ».", "GeoJSON without features.")
        features = features[:limit] if limit is not None else features
        props = [f.get("properties") or {} if isinstance(f, dict) else None for f in features]
        geoms = [
            json.dumps(f["geometry"], ensure_ascii=False)
            if isinstance(f, dict) and isinstance(f.get("geometry"), dict)
            else None
            for f in features
        ]
        raw = _records_table(props, "geojson", "entité", {"geometry": geoms})
        raw.geometry_column = "geometry"
        return raw
    records = doc.get("data") if isinstance(doc, dict) else doc
    if not isinstance(records, list):
        raise ReadError(
            "JSON attendu : un tableau d'objets, ou un objet avec « data ».",
            'Expected JSON: an array of objects, or an object with "data".',
        )
    return _records_table(records[:limit] if limit is not None else records, "json", "élément")


def read_parquet(data: bytes, *, max_rows: int | None, limit: int | None = None) -> RawTable:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(io.BytesIO(data))
        meta = pf.metadata
        if meta.num_rows * max(meta.num_columns, 1) > MAX_CELLS or (
            max_rows is not None and meta.num_rows > max_rows
        ):
            raise ReadError("Fichier Parquet trop grand.", "Parquet file too large.")
        table = pf.read() if limit is None else pf.read_row_group(0).slice(0, limit)
    except (pa.ArrowInvalid, OSError) as e:
        raise ReadError("Fichier Parquet illisible.", f"Unreadable Parquet: {show(e, 200)}") from e
    columns = []
    for c in table.columns:
        col = c.combine_chunks()
        if pa.types.is_nested(col.type):
            col = pa.array([cell_text(v) for v in col.to_pylist()], pa.string())
        columns.append(col)
    numbers = pa.array(np.arange(1, table.num_rows + 1, dtype=np.int64))
    return RawTable(
        list(table.column_names), columns, numbers, "parquet", ErrorSink(), table.num_rows
    )
