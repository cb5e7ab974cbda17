"""What an uploaded file may be, decided from its bytes (SECURITY.md item 16).

JPEG, PNG, WebP and GIF images are re-encoded, so every metadata block (EXIF, GPS, XMP,
comments, ICC profile, text chunks) and anything appended after the image data is dropped;
PDF is checked (a real document structure, no active content, no embedded file or archive, no
HTML or script markup, no data after the end, not encrypted); UTF-8 text (plain, CSV, JSON,
GeoJSON) is accepted — an HTML or SVG page included: it is stored and served as text/plain, as
a download, with a ``.txt`` name. Everything else is refused with 415, archives and executables
included. Never the file name or the client's Content-Type.
"""

from __future__ import annotations

import io
import json
import logging
import re
import threading
import unicodedata
import zlib
from dataclasses import dataclass
from typing import Any

import filetype  # type: ignore[import-untyped]
from PIL import Image, ImageCms, ImageOps, ImageSequence, UnidentifiedImageError

from hypervision.core.errors import AppError, Invalid

log = logging.getLogger("hypervision.attachments")

FILENAME_MAX = 200
DEFAULT_FILENAME = "fichier"
MAX_IMAGE_PIXELS = 40_000_000  # one frame: 40 megapixels
MAX_ANIMATION_PIXELS = 25_000_000  # all frames of an animation together
MAX_FRAMES = 500
JPEG_QUALITY = 90
WEBP_QUALITY = 90
PDF_INFLATE_LIMIT = 64 * 1024 * 1024  # bytes inflated from object streams, in total
IMAGE_WORKERS = threading.BoundedSemaphore(2)  # bounds the memory used by re-encoding

ALLOWED_DESCRIPTION = "JPEG, PNG, WebP, GIF, PDF, texte UTF-8, CSV, JSON, GeoJSON"
ALLOWED_DESCRIPTION_EN = "JPEG, PNG, WebP, GIF, PDF, UTF-8 text, CSV, JSON, GeoJSON"

# Detected type -> Pillow format.
IMAGE_FORMATS = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/apng": "PNG",
    "image/webp": "WEBP",
    "image/gif": "GIF",
}
STORED_IMAGE_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
}

# Stored type -> extensions a file name may keep (the first one is appended otherwise).
EXTENSIONS: dict[str, tuple[str, ...]] = {
    "image/jpeg": (".jpg", ".jpeg"),
    "image/png": (".png",),
    "image/webp": (".webp",),
    "image/gif": (".gif",),
    "application/pdf": (".pdf",),
    "text/plain": (".txt", ".text", ".log", ".md"),
    "text/csv": (".csv",),
    "application/json": (".json",),
    "application/geo+json": (".geojson", ".json"),
}

GEOJSON_TYPES = frozenset(
    {
        "FeatureCollection",
        "Feature",
        "Point",
        "MultiPoint",
        "LineString",
        "MultiLineString",
        "Polygon",
        "MultiPolygon",
        "GeometryCollection",
    }
)

# The EICAR test signature, split so that the source file itself is not flagged.
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-" + b"TEST-FILE!$H+H*"

# PDF names that carry active content, actions that run or open things, or embedded files.
PDF_ACTIVE_NAMES = frozenset(
    {
        "JavaScript",
        "JS",
        "Launch",
        "EmbeddedFile",
        "EmbeddedFiles",
        "RichMedia",
        "XFA",
        "SubmitForm",
        "ImportData",
        "GoToE",
    }
)
_PDF_NAME = re.compile(rb"/([^\s/<>\[\]()%{}]*)")
_PDF_HEX_ESCAPE = re.compile(rb"#([0-9A-Fa-f]{2})")
_PDF_STREAM = re.compile(rb"stream\r?\n")
_PDF_TRAILING_OK = frozenset(b" \t\r\n\f\x00")
_TEXT_CONTROLS = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f]")
# Markup in a PDF's structure (outside stream bodies): HTML smuggled into a "PDF".
_PDF_MARKUP = re.compile(
    rb"<\s*(?:!doctype|html|head|body|script|svg|iframe|object|embed|meta|img)\b", re.IGNORECASE
)
_PDF_OBJECT = re.compile(rb"\d+\s+\d+\s+obj\b")
_WINDOWS_RESERVED = re.compile(r'[<>:"|?*]')
TRANSPARENT_MODES = frozenset({"1", "L", "P", "RGB", "I", "I;16"})


# --- errors ---------------------------------------------------------------------------------


class AttachmentTooLarge(AppError):
    status, code = 413, "attachment_too_large"
    fr = "Fichier trop volumineux."
    en = "File too large."

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"Fichier trop volumineux : {limit} octets au plus ({_human(limit)}).",
            f"File too large: at most {limit} bytes ({_human(limit)}).",
            extra={"max_bytes": limit},
        )


class UnsupportedAttachment(AppError):
    status, code = 415, "attachment_type_refused"
    fr = f"Type de fichier refusé. Types acceptés : {ALLOWED_DESCRIPTION}."
    en = f"File type refused. Accepted types: {ALLOWED_DESCRIPTION_EN}."

    def __init__(self, detected: str | None) -> None:
        what_fr = f"contenu détecté : {detected}" if detected else "contenu binaire non reconnu"
        what_en = f"detected content: {detected}" if detected else "unrecognised binary content"
        super().__init__(
            f"Type de fichier refusé ({what_fr}). Types acceptés : {ALLOWED_DESCRIPTION} "
            "(les archives et les exécutables sont refusés).",
            f"File type refused ({what_en}). Accepted types: {ALLOWED_DESCRIPTION_EN} "
            "(archives and executables are refused).",
            extra={"detected": detected},
        )


class AttachmentUnavailable(AppError):
    status, code = 500, "attachment_unavailable"
    fr = "Le fichier est indisponible ou altéré dans le stockage ; l'incident est journalisé."
    en = "The file is missing or altered in storage; the incident is logged."


def _refused(code: str, fr: str, en: str) -> Invalid:
    return Invalid(fr, en, code=code)


def _human(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} Mio" if size >= 1024 * 1024 else f"{size / 1024:.0f} Kio"


# --- content inspection (pure, CPU-bound: run in a worker thread) ---------------------------


@dataclass(frozen=True)
class Cleaned:
    """What will be stored: the detected type and the (re-encoded) bytes."""

    content_type: str
    data: bytes


def scan_for_malware(data: bytes) -> str | None:
    """Name of a known malware signature found in ``data``. Only the EICAR test signature
    here; an antivirus daemon (e.g. clamd) can be plugged in at this point."""
    if EICAR in data:
        return "EICAR-Test-File"
    return None


def inspect_content(data: bytes, filename: str) -> Cleaned:
    """Decide from the content what ``data`` is, and clean it; refuse what is not allowed."""
    if not data:
        raise _refused("attachment_empty", "Le fichier est vide.", "The file is empty.")
    signature = scan_for_malware(data)
    if signature:
        raise _refused(
            "attachment_malware",
            f"Fichier refusé : signature malveillante détectée ({signature}).",
            f"File refused: malware signature detected ({signature}).",
        )
    kind = filetype.guess(data)
    detected: str | None = kind.mime if kind is not None else None
    if detected in IMAGE_FORMATS:
        return clean_image(data, IMAGE_FORMATS[detected])
    if detected == "application/pdf":
        check_pdf(data)
        return Cleaned("application/pdf", data)
    text = _as_text(data)
    if text is not None:
        # A short printable text can start like a binary signature (e.g. "BM" for BMP):
        # text is what it is, and no binary format is valid UTF-8 without control bytes.
        return Cleaned(_text_type(text, filename), data)
    raise UnsupportedAttachment(detected)


def _as_text(data: bytes) -> str | None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if _TEXT_CONTROLS.search(text):
        return None
    return text


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text.removeprefix("\ufeff"), parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        raise _refused(
            "attachment_invalid_json",
            "Le fichier JSON/GeoJSON est mal formé.",
            "The JSON/GeoJSON file is malformed.",
        ) from None


def _is_geojson(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") in GEOJSON_TYPES


def _text_type(text: str, filename: str) -> str:
    """The content is safe UTF-8 text; the name only chooses among the text types, and
    a name claiming JSON or GeoJSON must be backed by content that parses as such."""
    suffix = _suffix(filename.replace("\\", "/").strip())
    if suffix in (".json", ".geojson"):
        value = _parse_json(text)
        if _is_geojson(value):
            return "application/geo+json"
        if suffix == ".geojson":
            raise _refused(
                "attachment_invalid_json",
                "Le fichier n'est pas du GeoJSON (membre « type » attendu).",
                "The file is not GeoJSON (a 'type' member is expected).",
            )
        return "application/json"
    if suffix == ".csv":
        return "text/csv"
    if suffix in EXTENSIONS["text/plain"]:
        return "text/plain"
    if text.lstrip("\ufeff \t\r\n")[:1] in ("{", "["):
        try:
            value = _parse_json(text)
        except Invalid:
            return "text/plain"
        return "application/geo+json" if _is_geojson(value) else "application/json"
    return "text/plain"


def _suffix(filename: str) -> str:
    base = filename.rsplit("/", 1)[-1]
    return "." + base.rsplit(".", 1)[-1].lower() if "." in base.strip(".") else ""


# --- images ---------------------------------------------------------------------------------

_SRGB = ImageCms.createProfile("sRGB")


def clean_image(data: bytes, fmt: str) -> Cleaned:
    """Decode and re-encode the image: pixels survive (orientation applied), metadata and
    trailing data do not. Pixel floods are refused before any pixel is decoded."""
    with IMAGE_WORKERS:
        try:
            with Image.open(io.BytesIO(data), formats=[fmt]) as image:
                width, height = image.size
                _check_pixels(width * height, MAX_IMAGE_PIXELS)
                frames = int(getattr(image, "n_frames", 1)) if fmt != "JPEG" else 1
                if frames > 1:
                    if frames > MAX_FRAMES:
                        raise _too_many_pixels()
                    _check_pixels(frames * width * height, MAX_ANIMATION_PIXELS)
                    out = _reencode_animation(image, fmt)
                else:
                    image.load()
                    out = _reencode_still(image, fmt)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _too_many_pixels() from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
            raise _refused(
                "attachment_unreadable_image",
                "Image illisible ou corrompue.",
                "Unreadable or corrupt image.",
            ) from None
    return Cleaned(STORED_IMAGE_TYPES[fmt], out)


def _too_many_pixels() -> Invalid:
    still, animation = MAX_IMAGE_PIXELS // 1_000_000, MAX_ANIMATION_PIXELS // 1_000_000
    return _refused(
        "attachment_image_too_large",
        f"Image refusée : dimensions trop grandes (au plus {still} mégapixels par image, "
        f"{animation} pour toutes les images d'une animation, {MAX_FRAMES} images).",
        f"Image refused: dimensions too large (at most {still} megapixels per image, "
        f"{animation} for all the frames of an animation, {MAX_FRAMES} frames).",
    )


def _check_pixels(pixels: int, limit: int) -> None:
    if pixels > limit:
        raise _too_many_pixels()


def _to_srgb(image: Image.Image) -> Image.Image:
    """Convert colours to sRGB when an ICC profile is embedded, so dropping it keeps colours."""
    icc = image.info.get("icc_profile")
    if not icc or image.mode not in ("RGB", "RGBA", "CMYK"):
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        mode = "RGBA" if image.mode == "RGBA" else "RGB"
        converted = ImageCms.profileToProfile(image, source, _SRGB, outputMode=mode)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return image
    return converted if converted is not None else image


def _reencode_still(image: Image.Image, fmt: str) -> bytes:
    transparency = image.info.get("transparency")
    ImageOps.exif_transpose(image, in_place=True)
    result = _to_srgb(image)
    if fmt == "JPEG" and result.mode not in ("L", "RGB"):
        result = result.convert("RGB")
    elif fmt == "WEBP" and result.mode not in ("RGB", "RGBA"):
        alpha = "A" in result.mode or transparency is not None
        result = result.convert("RGBA" if alpha else "RGB")
    result.info = {}  # the encoders read comments and profiles from here
    options: dict[str, Any] = {}
    if fmt == "JPEG":
        options = {"quality": JPEG_QUALITY}
    elif fmt == "WEBP":
        options = {"quality": WEBP_QUALITY}
    if fmt in ("PNG", "GIF") and transparency is not None and result.mode in TRANSPARENT_MODES:
        options["transparency"] = transparency
    out = io.BytesIO()
    result.save(out, format=fmt, **options)
    return out.getvalue()


def _reencode_animation(image: Image.Image, fmt: str) -> bytes:
    frames: list[Image.Image] = []
    durations: list[int] = []
    for frame in ImageSequence.Iterator(image):
        durations.append(max(0, int(frame.info.get("duration", 100) or 0)))
        clean = frame.convert("RGBA")
        clean.info = {}
        frames.append(clean)
    loop = int(image.info.get("loop", 0) or 0)
    options: dict[str, Any] = {"save_all": True, "append_images": frames[1:], "loop": loop}
    options["duration"] = durations
    if fmt == "WEBP":
        options["quality"] = WEBP_QUALITY
    out = io.BytesIO()
    frames[0].save(out, format=fmt, **options)
    return out.getvalue()


# --- PDF ------------------------------------------------------------------------------------


def _pdf_names(chunk: bytes) -> set[str]:
    names: set[str] = set()
    for match in _PDF_NAME.finditer(chunk):
        raw = _PDF_HEX_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), match.group(1))
        names.add(raw.decode("latin-1"))
    return names


def _pdf_refused(fr: str, en: str) -> Invalid:
    return _refused("attachment_pdf_refused", f"PDF refusé : {fr}.", f"PDF refused: {en}.")


def check_pdf(data: bytes) -> None:
    """Refuse PDFs that carry active content, embedded files or archives, data after their
    end, or encryption (which would hide their content from this check). Best effort: names
    are decoded (``#xx``) and object streams inflated (bounded) before looking."""
    if not re.match(rb"%PDF-[12]\.\d", data):
        raise _pdf_refused("en-tête %PDF- absent ou invalide", "missing or invalid %PDF- header")
    end = data.rfind(b"%%EOF")
    if end < 0:
        raise _pdf_refused("marqueur de fin %%EOF absent", "missing %%EOF end marker")
    if any(byte not in _PDF_TRAILING_OK for byte in data[end + 5 :]):
        raise _pdf_refused("données après la fin du document", "data after the end of the file")
    if b"startxref" not in data or not _PDF_OBJECT.search(data):
        raise _pdf_refused(
            "structure absente (aucun objet ou table de références)",
            "no document structure (no object or cross-reference table)",
        )
    if b"PK\x03\x04" in data and b"PK\x05\x06" in data:
        raise _pdf_refused("archive ZIP incluse", "embedded ZIP archive")
    structure, object_streams = _pdf_split(data)
    if _PDF_MARKUP.search(structure):
        raise _pdf_refused(
            "balisage HTML ou script incorporé", "HTML or script markup inside the document"
        )
    names = _pdf_names(structure)
    if "Encrypt" in names:
        raise _pdf_refused(
            "document chiffré (contenu non vérifiable)", "encrypted document (cannot be checked)"
        )
    names |= _object_stream_names(object_streams)
    active = sorted(names & PDF_ACTIVE_NAMES)
    if active:
        listed = ", ".join(f"/{name}" for name in active)
        raise _pdf_refused(
            f"contenu actif ou fichier incorporé ({listed})",
            f"active content or embedded file ({listed})",
        )


def _pdf_split(data: bytes) -> tuple[bytes, list[bytes]]:
    """The document without its stream bodies (binary data would give false matches), and
    the bodies of its object streams (``/Type /ObjStm``), where dictionaries can hide."""
    parts: list[bytes] = []
    object_streams: list[bytes] = []
    position = 0
    for match in _PDF_STREAM.finditer(data):
        if match.start() < position:
            continue  # inside the previous stream's body
        end = data.find(b"endstream", match.end())
        end = len(data) if end < 0 else end
        parts.append(data[position : match.start()])
        header_start = data.rfind(b"obj", max(0, match.start() - 4096), match.start())
        header = data[max(header_start, position) : match.start()]
        if "ObjStm" in _pdf_names(header):
            object_streams.append(data[match.end() : end])
        position = end + len(b"endstream")
    parts.append(data[position:])
    return b" ".join(parts), object_streams


def _object_stream_names(bodies: list[bytes]) -> set[str]:
    """Names in the inflated object streams, within a bounded inflation budget."""
    names: set[str] = set()
    budget = PDF_INFLATE_LIMIT
    for body in bodies:
        inflater = zlib.decompressobj()
        try:
            inflated = inflater.decompress(body, budget + 1)
        except zlib.error:
            raise _pdf_refused(
                "flux d'objets illisible (non vérifiable)", "unreadable object stream"
            ) from None
        if len(inflated) > budget:
            raise _pdf_refused(
                "flux d'objets trop volumineux pour être vérifiés",
                "object streams too large to be checked",
            )
        budget -= len(inflated)
        names |= _pdf_names(inflated)
    return names


# --- file names -----------------------------------------------------------------------------


def clean_filename(raw: str | None, content_type: str) -> str:
    """Base name only, no control or format characters, at most 200 characters, and an
    extension that matches the stored type (appended when the name claims another one)."""
    name = unicodedata.normalize("NFC", raw or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if not unicodedata.category(ch).startswith("C"))
    name = _WINDOWS_RESERVED.sub("_", name).strip().strip(".").strip()
    name = name or DEFAULT_FILENAME
    allowed = EXTENSIONS[content_type]
    suffix = _suffix(name)
    if suffix in allowed:  # keep the name's own spelling (.JPG stays .JPG)
        stem, extension = name[: -len(suffix)], name[-len(suffix) :]
    else:
        stem, extension = name, allowed[0]
    stem = stem[: FILENAME_MAX - len(extension)].rstrip(". ") or DEFAULT_FILENAME
    return stem + extension
