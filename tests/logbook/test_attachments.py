"""Attachments (SECURITY.md items 4, 16, 19): type from content, metadata stripped, archives,
executables and floods refused, foreign ids answered like missing ones, every use audited."""

from __future__ import annotations

import gzip
import hashlib
import io
import struct
import tarfile
import uuid
import zipfile
import zlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import FastAPI, Request
from httpx import AsyncClient, Response
from PIL import ExifTags, Image, ImageCms, PngImagePlugin
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.audit.models import AuditRecord
from hypervision.audit.service import AuditUnavailable
from hypervision.core.deps import get_db
from hypervision.events.models import OutboxEvent
from hypervision.identity.principal import system_principal
from hypervision.logbook import attachments
from hypervision.logbook.models import Attachment
from hypervision.logbook.uploads import clean_filename
from hypervision.policy.roles import Role
from tests.factories import ENTRY, officer, tx

# --- builders -------------------------------------------------------------------------------

SECRET = b"secret-marker-0451"
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-" + b"TEST-FILE!$H+H*"


def jpeg_with_gps(size: tuple[int, int] = (64, 32), orientation: int | None = 6) -> bytes:
    image = Image.new("RGB", size, (200, 30, 30))
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SpyCam " + SECRET.decode()
    if orientation is not None:
        exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: (48.0, 53.0, 54.0),
        ExifTags.GPS.GPSLongitudeRef: "E",
        ExifTags.GPS.GPSLongitude: (2.0, 21.0, 36.0),
    }
    out = io.BytesIO()
    image.save(
        out,
        "JPEG",
        exif=exif,
        comment=SECRET,
        xmp=b"<x:xmpmeta>" + SECRET + b"</x:xmpmeta>",
        icc_profile=srgb_icc(),
    )
    return out.getvalue()


def srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def png_with_metadata() -> bytes:
    image = Image.new("RGBA", (20, 10), (10, 120, 200, 128))
    image.putpixel((3, 4), (255, 0, 0, 255))
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", SECRET.decode())
    info.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta>" + SECRET.decode() + "</x:xmpmeta>")
    exif = Image.Exif()
    exif[ExifTags.Base.Software] = SECRET.decode()
    out = io.BytesIO()
    image.save(out, "PNG", pnginfo=info, exif=exif, icc_profile=srgb_icc())
    return out.getvalue()


def webp_with_exif() -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Model] = SECRET.decode()
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (0, 200, 0)).save(out, "WEBP", exif=exif)
    return out.getvalue()


def animated_gif() -> bytes:
    frames = [Image.new("P", (12, 12), colour) for colour in (1, 2, 3)]
    for frame in frames:
        frame.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (256 * 3 - 12))
    out = io.BytesIO()
    frames[0].save(
        out,
        "GIF",
        save_all=True,
        append_images=frames[1:],
        duration=[100, 200, 300],
        loop=0,
        comment=SECRET,
    )
    return out.getvalue()


def png_flood(width: int, height: int) -> bytes:
    """A 1-bit PNG declaring ``width`` x ``height`` pixels, all black: tiny on disk."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    row = b"\x00" + bytes((width + 7) // 8)
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def pdf(*objects: bytes, trailer: bytes = b"") -> bytes:
    """A small, structurally valid PDF (header, objects, xref table, trailer, %%EOF)."""
    base = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
    ]
    bodies = list(objects) if objects else base
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(bodies, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(bodies) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(bodies) + 1} /Root 1 0 R ".encode() + trailer + b">>\n"
    out += f"startxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def pdf_with(catalog_extra: bytes, *more: bytes) -> bytes:
    return pdf(
        b"<< /Type /Catalog /Pages 2 0 R " + catalog_extra + b" >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
        *more,
    )


def pdf_js_in_object_stream() -> bytes:
    hidden = zlib.compress(b"5 0 << /S /JavaScript /JS (app.alert(1)) >>")
    objstm = (
        (
            f"<< /Type /ObjStm /N 1 /First 4 /Filter /FlateDecode /Length {len(hidden)} >>\n"
            "stream\n"
        ).encode()
        + hidden
        + b"\nendstream"
    )
    return pdf_with(b"/OpenAction 5 0 R", objstm)


def zip_bytes() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("../../evil.sh", "#!/bin/sh\necho pwned\n")
    return out.getvalue()


def tar_bytes() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        info = tarfile.TarInfo("notes.txt")
        info.size = 5
        archive.addfile(info, io.BytesIO(b"hello"))
    return out.getvalue()


ELF = b"\x7fELF\x02\x01\x01\x00" + bytes(8) + b"\x02\x00\x3e\x00" + bytes(48)
PE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + bytes(44) + b"PE\x00\x00"
SEVEN_Z = b"7z\xbc\xaf\x27\x1c\x00\x04" + bytes(24)
RAR = b"Rar!\x1a\x07\x01\x00" + bytes(24)


# --- helpers --------------------------------------------------------------------------------


async def entry_of(
    app: FastAPI, client: AsyncClient, headers: dict[str, str], label: dict[str, Any] | None
) -> str:
    body = {**ENTRY, "label": label} if label else ENTRY
    created = await client.post("/api/v1/entries", json=body, headers=headers)
    assert created.status_code == 201, created.text
    entry_id: str = created.json()["id"]
    return entry_id


async def upload(
    client: AsyncClient,
    entry_id: str,
    headers: dict[str, str],
    name: str,
    data: bytes,
    content_type: str = "application/octet-stream",
) -> Response:
    return await client.post(
        f"/api/v1/entries/{entry_id}/attachments",
        files={"file": (name, data, content_type)},
        headers=headers,
    )


def blob_files(app: FastAPI) -> list[Path]:
    root: Path = app.state.settings.blob_dir
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def stored(app: FastAPI, attachment_id: str) -> tuple[Attachment, bytes]:
    async with tx(app) as session:
        row = await session.get(Attachment, uuid.UUID(attachment_id))
    assert row is not None
    return row, await app.state.blobs.read(row.storage_key)


async def count_rows(app: FastAPI) -> int:
    async with tx(app) as session:
        return int(await session.scalar(select(func.count()).select_from(Attachment)) or 0)


async def alice_entry(app: FastAPI, client: AsyncClient) -> tuple[dict[str, str], str]:
    alice = await officer(app, client, "alice", "PP")
    return alice, await entry_of(app, client, alice, None)


# --- images ---------------------------------------------------------------------------------


async def test_jpeg_exif_and_gps_are_stripped(app: FastAPI, client: AsyncClient) -> None:
    alice, entry_id = await alice_entry(app, client)
    original = jpeg_with_gps()
    with Image.open(io.BytesIO(original)) as before:  # the test file does carry GPS
        assert before.getexif().get_ifd(ExifTags.IFD.GPSInfo)
        assert {"exif", "xmp", "comment", "icc_profile"} <= set(before.info)

    response = await upload(client, entry_id, alice, "IMG_0001.JPG", original, "image/jpeg")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["content_type"] == "image/jpeg"
    assert body["filename"] == "IMG_0001.JPG"
    assert body["uploaded_by"] == "alice"
    assert response.headers["location"] == f"/api/v1/attachments/{body['id']}"

    row, data = await stored(app, body["id"])
    assert data != original
    assert body["size"] == row.size == len(data)
    assert body["sha256"] == row.sha256 == hashlib.sha256(data).hexdigest()
    assert SECRET not in data and b"Exif" not in data and b"GPS" not in data
    with Image.open(io.BytesIO(data)) as after:
        assert after.format == "JPEG"
        assert after.size == (32, 64)  # orientation 6 applied, then dropped
        assert not after.getexif()
        assert not after.getexif().get_ifd(ExifTags.IFD.GPSInfo)
        assert not {"exif", "xmp", "comment", "icc_profile"} & set(after.info)
        red, green, blue = after.convert("RGB").getpixel((16, 32))  # type: ignore[misc]
        assert red > 150 and green < 80 and blue < 80


async def test_png_webp_gif_are_accepted_and_cleaned(app: FastAPI, client: AsyncClient) -> None:
    alice, entry_id = await alice_entry(app, client)

    response = await upload(client, entry_id, alice, "carte.png", png_with_metadata())
    assert response.status_code == 201, response.text
    assert response.json()["content_type"] == "image/png"
    _, data = await stored(app, response.json()["id"])
    assert SECRET not in data
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG" and image.mode == "RGBA" and image.size == (20, 10)
        assert not {"Author", "XML:com.adobe.xmp", "exif", "icc_profile"} & set(image.info)
        assert image.getpixel((3, 4)) == (255, 0, 0, 255)
        assert image.getpixel((0, 0)) == (10, 120, 200, 128)

    response = await upload(client, entry_id, alice, "vue.webp", webp_with_exif())
    assert response.status_code == 201, response.text
    assert response.json()["content_type"] == "image/webp"
    _, data = await stored(app, response.json()["id"])
    assert SECRET not in data
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "WEBP" and not image.getexif()

    response = await upload(client, entry_id, alice, "anim.gif", animated_gif())
    assert response.status_code == 201, response.text
    assert response.json()["content_type"] == "image/gif"
    _, data = await stored(app, response.json()["id"])
    assert SECRET not in data
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "GIF" and getattr(image, "n_frames", 1) == 3
        assert "comment" not in image.info


async def test_polyglot_jpeg_with_zip_is_cleaned(app: FastAPI, client: AsyncClient) -> None:
    """JPEG magic followed by a ZIP archive: re-encoding keeps the pixels, drops the ZIP."""
    alice, entry_id = await alice_entry(app, client)
    polyglot = jpeg_with_gps(orientation=None) + zip_bytes()
    assert zipfile.is_zipfile(io.BytesIO(polyglot))

    response = await upload(client, entry_id, alice, "photo.jpg", polyglot)
    assert response.status_code == 201, response.text
    _, data = await stored(app, response.json()["id"])
    assert not zipfile.is_zipfile(io.BytesIO(data))
    assert b"PK\x03\x04" not in data and b"evil.sh" not in data
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG" and image.size == (64, 32)


async def test_pixel_floods_are_refused(app: FastAPI, client: AsyncClient) -> None:
    alice, entry_id = await alice_entry(app, client)
    bomb = png_flood(20_000, 20_000)  # 400 megapixels
    assert len(bomb) < 200_000
    medium = png_flood(8_000, 6_000)  # 48 megapixels: under Pillow's own limit, over ours
    for name, data in (("bomb.png", bomb), ("big.png", medium)):
        response = await upload(client, entry_id, alice, name, data, "image/png")
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "attachment_image_too_large"
    assert await count_rows(app) == 0
    assert blob_files(app) == []


async def test_corrupt_image_is_refused(app: FastAPI, client: AsyncClient) -> None:
    alice, entry_id = await alice_entry(app, client)
    truncated = jpeg_with_gps()[:300]
    response = await upload(client, entry_id, alice, "cut.jpg", truncated)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "attachment_unreadable_image"


# --- PDF ------------------------------------------------------------------------------------


async def test_pdf_is_accepted_and_stored_as_sent(app: FastAPI, client: AsyncClient) -> None:
    alice, entry_id = await alice_entry(app, client)
    document = pdf()
    response = await upload(client, entry_id, alice, "compte-rendu.pdf", document, "text/html")
    assert response.status_code == 201, response.text
    assert response.json()["content_type"] == "application/pdf"
    _, data = await stored(app, response.json()["id"])
    assert data == document


async def test_pdf_with_active_content_or_hidden_parts_is_refused(
    app: FastAPI, client: AsyncClient
) -> None:
    alice, entry_id = await alice_entry(app, client)
    cases = {
        "javascript": pdf_with(b"/OpenAction << /S /JavaScript /JS (app.alert(1)) >>"),
        "escaped name": pdf_with(b"/OpenAction << /S /J#61vaScript /J#53 (app.alert(1)) >>"),
        "object stream": pdf_js_in_object_stream(),
        "launch": pdf_with(b"/OpenAction << /S /Launch /F (cmd.exe) >>"),
        "embedded file": pdf_with(b"/Names << /EmbeddedFiles 4 0 R >>", b"<< /Names [] >>"),
        "encrypted": pdf(trailer=b"/Encrypt 4 0 R "),
        "zip appended": pdf() + zip_bytes(),
        "no end": pdf().replace(b"%%EOF", b"%%EOX"),
    }
    for case, document in cases.items():
        response = await upload(client, entry_id, alice, "doc.pdf", document)
        assert response.status_code == 422, (case, response.text)
        assert response.json()["error"]["code"] == "attachment_pdf_refused", case
    assert await count_rows(app) == 0
    assert blob_files(app) == []


# --- refused types --------------------------------------------------------------------------


async def test_archives_and_executables_are_refused(app: FastAPI, client: AsyncClient) -> None:
    alice, entry_id = await alice_entry(app, client)
    cases = {
        "zip": zip_bytes(),
        "gzip": gzip.compress(b"hello world" * 100),
        "tar": tar_bytes(),
        "7z": SEVEN_Z,
        "rar": RAR,
        "elf": ELF,
        "pe": PE,
        "unknown binary": bytes(range(256)),
    }
    for case, data in cases.items():
        # the name and the declared type lie: only the content counts
        response = await upload(client, entry_id, alice, "photo.jpg", data, "image/jpeg")
        assert response.status_code == 415, (case, response.text)
        error = response.json()["error"]
        assert error["code"] == "attachment_type_refused", case
        assert "JPEG, PNG" in error["message"]
    assert await count_rows(app) == 0
    assert blob_files(app) == []


async def test_eicar_test_file_is_refused(app: FastAPI, client: AsyncClient) -> None:
    """EICAR is plain text: it is refused (422) because it carries a malware signature."""
    alice, entry_id = await alice_entry(app, client)
    for data in (EICAR, b"note\n" + EICAR + b"\n"):
        response = await upload(client, entry_id, alice, "eicar.txt", data, "text/plain")
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "attachment_malware"
        assert "EICAR" in response.json()["error"]["message"]
    assert await count_rows(app) == 0
    assert blob_files(app) == []


async def test_text_types_come_from_the_content(app: FastAPI, client: AsyncClient) -> None:
    alice, entry_id = await alice_entry(app, client)
    geojson = b'{"type": "FeatureCollection", "features": []}'
    cases = [
        ("photo.jpg", b"Rapport de situation: RAS.\n", "text/plain", "photo.jpg.txt"),
        ("notes.txt", "Équipe arrivée à 14h\r\n".encode(), "text/plain", "notes.txt"),
        ("BMW.log", b"BM starts like a bitmap", "text/plain", "BMW.log"),
        ("bilan.csv", b"heure;victimes\n14:00;3\n", "text/csv", "bilan.csv"),
        ("zone.geojson", geojson, "application/geo+json", "zone.geojson"),
        ("zone", geojson, "application/geo+json", "zone.geojson"),
        ("data.json", b'[1, 2, {"a": null}]', "application/json", "data.json"),
        ("page.html", b"<script>alert(1)</script>", "text/plain", "page.html.txt"),
        ("run.bat", b"del /q C:\\*", "text/plain", "run.bat.txt"),
    ]
    for name, data, content_type, filename in cases:
        response = await upload(client, entry_id, alice, name, data, "image/jpeg")
        assert response.status_code == 201, (name, response.text)
        body = response.json()
        assert (body["content_type"], body["filename"]) == (content_type, filename), name
        _, stored_bytes = await stored(app, body["id"])
        assert stored_bytes == data

    for name, data in (
        ("bad.json", b"{not json"),
        ("nan.json", b"[NaN]"),
        ("deep.json", b"[" * 100_000 + b"]" * 100_000),
        ("notgeo.geojson", b'{"a": 1}'),
    ):
        response = await upload(client, entry_id, alice, name, data)
        assert response.status_code == 422, (name, response.text)
        assert response.json()["error"]["code"] == "attachment_invalid_json"
    for data in (b"a\x00b", b"\x1b[31mred\x1b[0m", "café".encode("latin-1"), b""):
        response = await upload(client, entry_id, alice, "x.txt", data)
        assert response.status_code in (415, 422), (data, response.text)


# --- size -----------------------------------------------------------------------------------


async def test_oversize_is_refused_and_nothing_is_stored(app: FastAPI, client: AsyncClient) -> None:
    alice, entry_id = await alice_entry(app, client)
    app.state.settings = app.state.settings.model_copy(update={"attachment_max_bytes": 4096})

    response = await upload(client, entry_id, alice, "big.txt", b"a" * 4097)
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert error["code"] == "attachment_too_large" and error["max_bytes"] == 4096
    assert "4096" in error["message"]
    huge = await upload(client, entry_id, alice, "huge.txt", b"a" * 200_000)
    assert huge.status_code == 413
    assert await count_rows(app) == 0
    assert blob_files(app) == []

    exact = await upload(client, entry_id, alice, "ok.txt", b"a" * 4096)
    assert exact.status_code == 201, exact.text
    assert exact.json()["size"] == 4096
    assert len(blob_files(app)) == 1


# --- access ---------------------------------------------------------------------------------


async def test_foreign_ids_answer_like_missing_ones(app: FastAPI, client: AsyncClient) -> None:
    alice = await officer(app, client, "alice", "PP")
    bob = await officer(app, client, "bob", "SAMU", clearance="NP")
    secret_entry = await entry_of(app, client, alice, {"level": "DR", "audience": []})
    attachment = await upload(client, secret_entry, alice, "a.txt", b"confidential")
    assert attachment.status_code == 201
    hidden_att = attachment.json()["id"]
    files_before = blob_files(app)
    missing_entry, missing_att = str(uuid.uuid4()), str(uuid.uuid4())

    hidden = await upload(client, secret_entry, bob, "b.txt", b"intrusion")
    missing = await upload(client, missing_entry, bob, "b.txt", b"intrusion")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json()

    hidden = await client.get(f"/api/v1/entries/{secret_entry}/attachments", headers=bob)
    missing = await client.get(f"/api/v1/entries/{missing_entry}/attachments", headers=bob)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json()

    hidden = await client.get(f"/api/v1/attachments/{hidden_att}", headers=bob)
    missing = await client.get(f"/api/v1/attachments/{missing_att}", headers=bob)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json()

    assert await count_rows(app) == 1
    assert blob_files(app) == files_before
    async with tx(app) as session:
        reads = await session.scalars(
            select(AuditRecord).where(AuditRecord.action.like("attachment.%"))
        )
        assert {r.actor_name for r in reads} == {"alice"}  # nothing delivered to bob


async def test_reader_who_may_not_edit_gets_403(app: FastAPI, client: AsyncClient) -> None:
    alice = await officer(app, client, "alice", "PP")
    carol = await officer(app, client, "carol", "SAMU")
    mayor = await officer(app, client, "mayor", "PP", roles=[Role.AUTHORITY])
    shared = await entry_of(app, client, alice, {"level": "NP", "audience": ["PP", "SAMU"]})
    for headers in (carol, mayor):
        response = await upload(client, shared, headers, "b.txt", b"text")
        assert response.status_code == 403, response.text
        listed = await client.get(f"/api/v1/entries/{shared}/attachments", headers=headers)
        assert listed.status_code == 200 and listed.json() == []
    assert await count_rows(app) == 0
    assert blob_files(app) == []


async def test_upload_needs_credentials_and_a_multipart_file(
    app: FastAPI, client: AsyncClient
) -> None:
    alice, entry_id = await alice_entry(app, client)
    url = f"/api/v1/entries/{entry_id}/attachments"
    anonymous = await client.post(url, files={"file": ("a.txt", b"x", "text/plain")})
    assert anonymous.status_code == 401
    not_multipart = await client.post(url, content=b"raw", headers=alice)
    assert not_multipart.status_code == 415
    assert not_multipart.json()["error"]["code"] == "multipart_expected"
    no_file = await client.post(url, data={"other": "x"}, files={}, headers=alice)
    assert no_file.status_code in (415, 422)
    wrong_field = await client.post(
        url, files={"document": ("a.txt", b"x", "text/plain")}, headers=alice
    )
    assert wrong_field.status_code == 422
    assert wrong_field.json()["error"]["fields"][0]["field"] == "file"
    two_files = await client.post(
        url,
        files=[("file", ("a.txt", b"x", "text/plain")), ("file", ("b.txt", b"y", "text/plain"))],
        headers=alice,
    )
    assert two_files.status_code == 422
    assert await count_rows(app) == 0


# --- download and audit ---------------------------------------------------------------------


async def test_download_returns_the_stored_bytes_with_safe_headers(
    app: FastAPI, client: AsyncClient
) -> None:
    alice, entry_id = await alice_entry(app, client)
    name = "../../Été 2024 \u202egpj.exe rapport.jpg"  # RLO: shows as "…exe.jpg"
    response = await upload(client, entry_id, alice, name, jpeg_with_gps())
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["filename"] == "Été 2024 gpj.exe rapport.jpg"
    _, data = await stored(app, body["id"])

    download = await client.get(f"/api/v1/attachments/{body['id']}", headers=alice)
    assert download.status_code == 200
    assert download.content == data
    assert hashlib.sha256(download.content).hexdigest() == body["sha256"]
    assert download.headers["content-type"] == "image/jpeg"
    disposition = download.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''%C3%89t%C3%A9%202024%20gpj.exe%20rapport.jpg" in disposition
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["cache-control"] == "no-store"

    text = await upload(client, entry_id, alice, "notes", b"hello")
    download = await client.get(f"/api/v1/attachments/{text.json()['id']}", headers=alice)
    assert download.headers["content-type"] == "text/plain; charset=utf-8"
    assert download.content == b"hello"


async def test_tampered_blob_is_not_delivered(app: FastAPI, client: AsyncClient) -> None:
    alice, entry_id = await alice_entry(app, client)
    response = await upload(client, entry_id, alice, "a.txt", b"original")
    row, _ = await stored(app, response.json()["id"])
    app.state.blobs.path_of(row.storage_key).write_bytes(b"altered!")
    download = await client.get(f"/api/v1/attachments/{row.id}", headers=alice)
    assert download.status_code == 500
    assert download.json()["error"]["code"] == "attachment_unavailable"
    assert b"altered" not in download.content


async def test_every_use_is_audited_with_the_ids(app: FastAPI, client: AsyncClient) -> None:
    alice = await officer(app, client, "alice", "PP")
    entry_id = await entry_of(app, client, alice, {"level": "DR", "audience": []})
    first = (await upload(client, entry_id, alice, "a.txt", b"one")).json()["id"]
    second = (await upload(client, entry_id, alice, "b.png", png_with_metadata())).json()["id"]
    listed = await client.get(f"/api/v1/entries/{entry_id}/attachments", headers=alice)
    assert [a["id"] for a in listed.json()] == [first, second]
    assert listed.json()[1]["uploaded_by"] == "alice"
    assert (await client.get(f"/api/v1/attachments/{second}", headers=alice)).status_code == 200

    async with tx(app) as session:
        records = list(
            await session.scalars(
                select(AuditRecord)
                .where(AuditRecord.action.like("attachment.%"))
                .order_by(AuditRecord.qid)
            )
        )
        events = list(
            await session.scalars(
                select(OutboxEvent)
                .where(OutboxEvent.type == "attachment.create")
                .order_by(OutboxEvent.id)
            )
        )
    assert [(r.action, r.resource_ids, r.labels) for r in records] == [
        ("attachment.create", [first], ["DR"]),
        ("attachment.create", [second], ["DR"]),
        ("attachment.list", [first, second], ["DR"]),
        ("attachment.read", [second], ["DR"]),
    ]
    assert all(r.actor_name == "alice" and r.decision == "allowed" for r in records)
    assert records[0].detail["entry_id"] == entry_id
    assert SECRET.decode() not in str([r.detail for r in records])
    assert [e.resource_id for e in events] == [uuid.UUID(first), uuid.UUID(second)]
    assert events[0].resource_type == "attachment"
    assert events[0].label["level"] == "DR"
    assert events[0].payload == {"id": first, "entry_id": entry_id, "action": "create"}


async def test_failed_transaction_leaves_no_blob(
    app: FastAPI, client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The blob is written before the row; when the transaction fails afterwards (here the
    audit trail is unavailable), the blob is deleted again."""
    alice, entry_id = await alice_entry(app, client)

    async def no_audit(**_: Any) -> None:
        raise AuditUnavailable()

    monkeypatch.setattr(attachments, "audit", SimpleNamespace(record=no_audit))
    response = await upload(client, entry_id, alice, "a.png", png_with_metadata())
    assert response.status_code == 503, response.text
    assert await count_rows(app) == 0
    assert blob_files(app) == []


@pytest.mark.parametrize(
    ("failure", "status", "blob_kept"),
    [
        (RuntimeError("commit refused"), 500, False),  # definitely not committed
        (ConnectionResetError("database gone"), 503, True),  # outcome unknown: keep for sweep
    ],
)
async def test_commit_failure_after_the_blob_was_written(
    app: FastAPI, client: AsyncClient, failure: Exception, status: int, blob_kept: bool
) -> None:
    """The blob guard exits after the transaction: a failing commit reaches it."""
    alice, entry_id = await alice_entry(app, client)

    async def failing_commit(request: Request) -> AsyncIterator[AsyncSession]:
        async with request.app.state.sessions() as session:
            await session.begin()
            yield session
            await session.rollback()
            raise failure

    app.dependency_overrides[get_db] = failing_commit
    try:
        response = await upload(client, entry_id, alice, "a.txt", b"never committed")
    finally:
        app.dependency_overrides.clear()
    assert response.status_code == status, response.text
    assert await count_rows(app) == 0
    assert len(blob_files(app)) == (1 if blob_kept else 0)
    async with tx(app) as session:
        swept = await attachments.sweep_orphan_blobs(
            session=session,
            actor=system_principal("sweeper"),
            blobs=app.state.blobs,
            older_than=timedelta(0),
        )
    assert len(swept) == (1 if blob_kept else 0)
    assert blob_files(app) == []


async def test_sweep_removes_only_unreferenced_old_blobs(app: FastAPI, client: AsyncClient) -> None:
    alice, entry_id = await alice_entry(app, client)
    response = await upload(client, entry_id, alice, "a.txt", b"kept")
    row, _ = await stored(app, response.json()["id"])
    orphan = await app.state.blobs.put(b"left by a crash")
    async with tx(app) as session:
        removed = await attachments.sweep_orphan_blobs(
            session=session,
            actor=system_principal("sweeper"),
            blobs=app.state.blobs,
            older_than=timedelta(0),
        )
    assert removed == [orphan]
    assert [p.name for p in blob_files(app)] == [row.storage_key]


# --- file names (no database) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "content_type", "expected"),
    [
        ("rapport.pdf", "application/pdf", "rapport.pdf"),
        ("C:\\Users\\x\\Desktop\\plan.PNG", "image/png", "plan.PNG"),
        ("../../../etc/passwd", "text/plain", "passwd.txt"),
        ("..", "text/plain", "fichier.txt"),
        ("", "image/jpeg", "fichier.jpg"),
        (None, "image/gif", "fichier.gif"),
        ("a\x00b\r\nc\u202e\u200bd.txt", "text/plain", "abcd.txt"),
        ('what?<>:"|*.csv', "text/csv", "what_______.csv"),
        ("photo.jpeg", "image/jpeg", "photo.jpeg"),
        ("photo.png", "image/jpeg", "photo.png.jpg"),
        ("script.js", "text/plain", "script.js.txt"),
        ("x" * 300 + ".pdf", "application/pdf", "x" * 196 + ".pdf"),
        ("e\u0301te\u0301.txt", "text/plain", "été.txt"),
    ],
)
def test_filenames_are_sanitised(raw: str | None, content_type: str, expected: str) -> None:
    assert clean_filename(raw, content_type) == expected
    assert len(clean_filename(raw, content_type)) <= 200
