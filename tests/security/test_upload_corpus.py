"""A hostile upload corpus (SECURITY.md item 16), sent through both upload surfaces: the API
(``POST /api/v1/entries/{id}/attachments``) and the web new-entry form (``POST
/main-courante/nouvelle``), on both engines.

Each case is either refused with a clear 4xx and a French message, with NOTHING stored (no
attachment row, no entry row for the form, no new blob file), or — where that is the design —
accepted and cleaned (an image re-encoded: the stored bytes lose what was appended or hidden).

The corpus is built in code: the zip bomb is a real one (1 GiB of zeros once inflated) made
compactly from one deflate block repeated, never committed as a file.
"""

from __future__ import annotations

import functools
import io
import struct
import uuid
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from PIL import Image
from sqlalchemy import func, select

from hypervision.logbook.models import Attachment, Entry
from tests.conftest import once_across_engines
from tests.factories import ENTRY, make_org, make_user, sign_in, tx
from tests.web.pages import browse_as

# --- builders -------------------------------------------------------------------------------

GIB = 1024**3
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-" + b"TEST-FILE!$H+H*"
ELF = b"\x7fELF\x02\x01\x01\x00" + bytes(8) + b"\x02\x00\x3e\x00" + bytes(48) + b"\x90" * 64
PE = (
    b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00"
    + bytes(44)
    + struct.pack("<I", 64)
    + b"PE\x00\x00\x4c\x01"
    + bytes(64)
)


def _zip_entry(
    name: str, data: bytes, *, raw: bytes | None = None, size: int = 0, crc: int = 0
) -> tuple[bytes, Callable[[int], bytes]]:
    """(local header + data, central directory record maker) for one member. ``raw`` is an
    already deflated body (then ``size`` and ``crc`` describe the inflated data)."""
    method = 8 if raw is not None else 0
    body = raw if raw is not None else data
    size = size if raw is not None else len(data)
    crc = crc if raw is not None else zlib.crc32(data) & 0xFFFFFFFF
    encoded = name.encode()
    local = (
        struct.pack(
            "<IHHHHHIIIHH",
            0x04034B50,
            20,
            0,
            method,
            0,
            0x21,
            crc,
            len(body),
            size,
            len(encoded),
            0,
        )
        + encoded
        + body
    )

    def central(offset: int) -> bytes:
        return (
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                0x02014B50,
                20,
                20,
                0,
                method,
                0,
                0x21,
                crc,
                len(body),
                size,
                len(encoded),
                0,
                0,
                0,
                0,
                0,
                offset,
            )
            + encoded
        )

    return local, central


def build_zip(members: list[tuple[str, bytes]], *, bomb: bool = False) -> bytes:
    """A ZIP archive written by hand: ``zipfile`` cannot take an already deflated body."""
    out = bytearray()
    centrals = []
    if bomb:
        raw, size, crc = _gigabyte_of_zeros()
        local, central = _zip_entry("zeros.bin", b"", raw=raw, size=size, crc=crc)
        centrals.append(central(len(out)))
        out += local
    for name, data in members:
        local, central = _zip_entry(name, data)
        centrals.append(central(len(out)))
        out += local
    directory = b"".join(centrals)
    start = len(out)
    out += directory
    out += struct.pack(
        "<IHHHHIIH", 0x06054B50, 0, 0, len(centrals), len(centrals), len(directory), start, 0
    )
    return bytes(out)


@functools.cache
def _gigabyte_of_zeros() -> tuple[bytes, int, int]:
    """Raw deflate of 1 GiB of zeros: one 1 MiB block compressed after a full flush (so it
    depends on nothing before it) repeated 1024 times, then the final empty block."""
    mib = bytes(1024 * 1024)
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = packer.compress(mib) + packer.flush(zlib.Z_FULL_FLUSH)
    again = packer.compress(mib) + packer.flush(zlib.Z_FULL_FLUSH)
    assert block == again  # the block is position independent
    raw = block * 1024 + packer.flush(zlib.Z_FINISH)
    crc = 0
    for _ in range(1024):
        crc = zlib.crc32(mib, crc)
    return raw, GIB, crc & 0xFFFFFFFF


def zip_bomb() -> bytes:
    return build_zip([], bomb=True)


def zip_slip(kind: str = "zip") -> bytes:
    members = [("../../../../etc/cron.d/evil", b"* * * * * root sh -c 'id'\n")]
    if kind == "docx":
        members = [
            ("[Content_Types].xml", b'<?xml version="1.0"?><Types/>'),
            ("word/document.xml", b"<w:document/>"),
            *members,
        ]
    if kind == "odt":
        members = [("mimetype", b"application/vnd.oasis.opendocument.text"), *members]
    return build_zip(members)


def eicar_in_zip() -> bytes:
    return build_zip([("readme.txt", EICAR)])  # stored, not deflated: the signature is visible


def jpeg(size: tuple[int, int] = (40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 90, 200)).save(out, "JPEG")
    return out.getvalue()


def png(size: tuple[int, int] = (40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 90, 10)).save(out, "PNG")
    return out.getvalue()


def jpeg_zip_polyglot() -> bytes:
    return jpeg() + build_zip([("payload.sh", b"#!/bin/sh\necho pwned\n")])


GIF_JS = b"=alert(document.domain);//"


def gif_js_polyglot() -> bytes:
    """A valid GIF that is also JavaScript: the width bytes open a comment (``/*``), the
    comment closes after the GIF trailer, and ``=alert(...)`` follows."""
    palette = bytes([0, 0, 0, 255, 255, 255])
    image = (
        b"\x2c"
        + struct.pack("<HHHHB", 0, 0, 1, 1, 0)
        + b"\x02\x02\x44\x01\x00"  # LZW min code size 2, one sub-block, terminator
    )
    body = (
        b"GIF89a"
        + b"/*"  # logical screen width 0x2a2f: opens a JavaScript comment
        + struct.pack("<H", 1)
        + b"\x80\x00\x00"
        + palette
        + image
        + b"\x3b"
    )
    return body + b"*/" + GIF_JS


def _pdf(catalog_extra: bytes = b"", *more: bytes, after: bytes = b"") -> bytes:
    bodies = [
        b"<< /Type /Catalog /Pages 2 0 R " + catalog_extra + b" >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
        *more,
    ]
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(bodies, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(bodies) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(bodies) + 1} /Root 1 0 R >>\n".encode()
    out += f"startxref\n{xref}\n%%EOF\n".encode() + after
    return bytes(out)


HTML_PAYLOAD = b"<html><body><script>alert(document.cookie)</script></body></html>"


def pdf_with_js() -> bytes:
    return _pdf(b"/OpenAction 4 0 R", b"<< /S /JavaScript /JS (app.alert(1)) >>")


def pdf_with_html_after_end() -> bytes:
    return _pdf(after=HTML_PAYLOAD)


def pdf_with_html_inside() -> bytes:
    """HTML in a comment of the document structure: a PDF reader skips it, a browser sniffing
    the bytes would run it."""
    return _pdf(b"", b"<< /Type /Metadata >>\n%" + HTML_PAYLOAD)


def html_with_pdf_header() -> bytes:
    return b"%PDF-1.4\n" + HTML_PAYLOAD + b"\n%%EOF\n"


def png_header_flood(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` pixels and holds almost no data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(bytes(1024))
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def gif_header_flood(width: int = 65535, height: int = 65535) -> bytes:
    palette = bytes([0, 0, 0, 255, 255, 255])
    image = b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00"
    return (
        b"GIF89a" + struct.pack("<HH", width, height) + b"\x80\x00\x00" + palette + image + b"\x3b"
    )


SVG_SCRIPT = (
    b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b"<script>alert(document.domain)</script><rect width='10' height='10'/></svg>"
)
HTML_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>x</title></head><body>" + HTML_PAYLOAD + b"</body>"
)


# --- the corpus -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    filename: str
    build: Callable[[], bytes]
    status: int | None  # the refusal's status; None: accepted and cleaned
    french: str = ""  # a fragment of the French message (refusals)
    stored_type: str = ""  # accepted: the stored content type
    absent: tuple[bytes, ...] = ()  # accepted: bytes that must not be in what is stored
    stored_name: str = ""  # accepted: the stored file name, when it is not the one sent


TYPE_REFUSED = "Type de fichier refusé"
CORPUS = [
    Case("zip-bomb.zip", "bombe.zip", zip_bomb, 415, TYPE_REFUSED),
    Case("zip-bomb-as-jpg", "photo.jpg", zip_bomb, 415, TYPE_REFUSED),
    Case("zip-bomb-as-pdf", "rapport.pdf", zip_bomb, 415, TYPE_REFUSED),
    Case("zip-slip.zip", "archive.zip", zip_slip, 415, TYPE_REFUSED),
    Case("zip-slip-as-docx", "note.docx", lambda: zip_slip("docx"), 415, TYPE_REFUSED),
    Case("zip-slip-as-odt", "note.odt", lambda: zip_slip("odt"), 415, TYPE_REFUSED),
    Case(
        "polyglot-jpeg-zip",
        "photo.jpg",
        jpeg_zip_polyglot,
        None,
        stored_type="image/jpeg",
        absent=(b"PK\x03\x04", b"PK\x05\x06", b"pwned"),
    ),
    Case(
        "polyglot-gif-js",
        "anim.gif",
        gif_js_polyglot,
        None,
        stored_type="image/gif",
        absent=(b"alert(", b"*/"),
    ),
    Case("pdf-javascript", "rapport.pdf", pdf_with_js, 422, "PDF refusé"),
    Case("pdf-html-after-end", "rapport.pdf", pdf_with_html_after_end, 422, "PDF refusé"),
    Case("pdf-html-inside", "rapport.pdf", pdf_with_html_inside, 422, "PDF refusé"),
    Case("html-with-pdf-header", "rapport.pdf", html_with_pdf_header, 422, "PDF refusé"),
    Case(
        "pixel-flood-png",
        "carte.png",
        lambda: png_header_flood(100_000, 100_000),
        422,
        "dimensions trop grandes",
    ),
    Case(
        "pixel-flood-png-wide",
        "carte.png",
        lambda: png_header_flood(2**31 - 1, 1),
        422,
        "dimensions trop grandes",
    ),
    Case("pixel-flood-gif", "anim.gif", gif_header_flood, 422, "dimensions trop grandes"),
    Case("eicar.txt", "eicar.txt", lambda: EICAR, 422, "signature malveillante"),
    Case("eicar-as-pdf", "eicar.pdf", lambda: EICAR, 422, "signature malveillante"),
    Case("eicar-in-zip", "eicar.zip", eicar_in_zip, 422, "signature malveillante"),
    Case("elf-as-jpg", "photo.jpg", lambda: ELF, 415, TYPE_REFUSED),
    Case("pe-as-jpg", "photo.jpg", lambda: PE, 415, TYPE_REFUSED),
    # Text is text (the design): an HTML or SVG page is stored as text/plain under a .txt name
    # and only ever served as a download, never rendered (see test below).
    Case(
        "html-as-png",
        "image.png",
        lambda: HTML_PAGE,
        None,
        stored_type="text/plain",
        stored_name="image.png.txt",
    ),
    Case(
        "svg-script-as-png",
        "logo.png",
        lambda: SVG_SCRIPT,
        None,
        stored_type="text/plain",
        stored_name="logo.png.txt",
    ),
    Case(
        "png-named-jpg",
        "photo.jpg",
        png,
        None,
        stored_type="image/png",
        stored_name="photo.jpg.png",
    ),
]


# --- helpers --------------------------------------------------------------------------------


def blob_files(app: FastAPI) -> set[Path]:
    root: Path = app.state.settings.blob_dir
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


async def rows(app: FastAPI, model: type[Entry] | type[Attachment]) -> int:
    async with tx(app) as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def stored_attachment(app: FastAPI) -> tuple[Attachment, bytes]:
    async with tx(app) as session:
        row = (await session.execute(select(Attachment))).scalar_one()
    return row, await app.state.blobs.read(row.storage_key)


def check_cleaned(case: Case, sent: bytes, row: Attachment, data: bytes) -> None:
    assert row.content_type == case.stored_type, case.name
    assert row.filename == (case.stored_name or case.filename), case.name
    for marker in case.absent:
        assert marker not in data, (case.name, marker)
    if case.stored_type.startswith("image/"):
        with Image.open(io.BytesIO(data)) as image:  # a plain image of the detected type
            assert Image.MIME[str(image.format)] == case.stored_type
            image.load()
    else:
        assert data == sent


@pytest.fixture
async def people(app: FastAPI) -> None:
    await make_org(app, "PREF")
    await make_user(app, "alice", "PREF", clearance="DR")


IDS = [case.name for case in CORPUS]


# --- the API --------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CORPUS, ids=IDS)
async def test_api_upload(app: FastAPI, client: AsyncClient, people: None, case: Case) -> None:
    headers = await sign_in(client, "alice")
    created = await client.post("/api/v1/entries", json=ENTRY, headers=headers)
    assert created.status_code == 201, created.text
    entry_id = created.json()["id"]
    before = blob_files(app)
    data = case.build()

    response = await client.post(
        f"/api/v1/entries/{entry_id}/attachments",
        files={"file": (case.filename, data, "image/jpeg")},  # the client's type is a lie too
        headers=headers,
    )

    if case.status is not None:
        assert response.status_code == case.status, response.text
        error = response.json()["error"]
        assert case.french in error["message"], error
        assert error["code"].startswith("attachment_"), error
        assert await rows(app, Attachment) == 0
        assert blob_files(app) == before
        return
    assert response.status_code == 201, response.text
    assert len(blob_files(app) - before) == 1
    row, stored = await stored_attachment(app)
    check_cleaned(case, data, row, stored)
    download = await client.get(f"/api/v1/attachments/{row.id}", headers=headers)
    assert download.status_code == 200
    assert download.content == stored
    assert download.headers["content-disposition"].startswith("attachment;")
    assert download.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in download.headers["content-security-policy"]
    assert download.headers["content-type"].split(";")[0] == case.stored_type


# --- the web new-entry form -----------------------------------------------------------------


@pytest.mark.parametrize("case", CORPUS, ids=IDS)
async def test_web_form_upload(app: FastAPI, client: AsyncClient, people: None, case: Case) -> None:
    once_across_engines(app.state.settings.database_url)  # the API corpus runs on both
    csrf = await browse_as(client, "alice")
    before = blob_files(app)
    data = case.build()

    response = await client.post(
        "/main-courante/nouvelle",
        data={
            "csrf_token": csrf,
            "idempotency_key": uuid.uuid4().hex,
            "title": "Pièce jointe à vérifier",
            "category": "security",
            "severity": "info",
        },
        files={"files": (case.filename, data, "image/jpeg")},
    )

    if case.status is not None:
        assert response.status_code == 422, response.text[:500]
        assert 'id="err-files"' in response.text
        assert case.french in response.text, case.name
        assert await rows(app, Entry) == 0
        assert await rows(app, Attachment) == 0
        assert blob_files(app) == before
        return
    assert response.status_code == 303, response.text[:500]
    assert await rows(app, Entry) == 1
    assert len(blob_files(app) - before) == 1
    row, stored = await stored_attachment(app)
    check_cleaned(case, data, row, stored)


def test_the_zip_bomb_is_a_real_one() -> None:
    """The corpus's bomb does inflate to 1 GiB (checked from its directory, not inflated)."""
    with zipfile.ZipFile(io.BytesIO(zip_bomb())) as archive:
        (info,) = archive.infolist()
    assert info.file_size == GIB
    assert info.compress_size < 2 * 1024 * 1024
    head = zlib.decompressobj(-15).decompress(_gigabyte_of_zeros()[0][:4096], 1024 * 1024)
    assert head == bytes(len(head)) and len(head) > 100_000
