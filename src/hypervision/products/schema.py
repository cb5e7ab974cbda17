"""The Table Schema of a data product: typed fields, constraints, primary and foreign keys.

Descriptors are Frictionless Table Schema JSON (the format of schema.data.gouv.fr), checked
by ``frictionless`` and then by the stricter rules the product store needs: a field name is
used as an SQL column name, so it must match ``^[a-z_][a-z0-9_]{0,62}$``; only the types the
store can hold are accepted (``geojson`` is stored as ``geometry``: the GeoJSON geometry as
text); a ``pattern`` must compile in RE2, the engine the vectorised checks run on.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

import pyarrow as pa
import pyarrow.compute as pc

FieldType = Literal["string", "integer", "number", "boolean", "date", "datetime", "geometry"]
FIELD_TYPES: tuple[FieldType, ...] = get_args(FieldType)
FIELD_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
NUMERIC_TYPES = frozenset({"integer", "number"})
MAX_INDEXED = 8  # each index costs every import

# Frictionless type name -> ours (only geojson differs).
_TYPE_IN: dict[str, FieldType] = {t: t for t in FIELD_TYPES if t != "geometry"}
_TYPE_IN["geojson"] = "geometry"
_TYPE_IN["geometry"] = "geometry"
_TYPE_OUT: dict[str, str] = {"geometry": "geojson"}

TYPE_LABELS_FR: dict[str, str] = {
    "string": "texte",
    "integer": "nombre entier",
    "number": "nombre",
    "boolean": "booléen",
    "date": "date",
    "datetime": "date et heure",
    "geometry": "géométrie",
}


class SchemaError(ValueError):
    """A schema that cannot be used, with every problem found (French first, then English)."""

    def __init__(self, fr: str, en: str, problems: Iterable[str] = ()) -> None:
        self.fr = fr
        self.en = en
        self.problems = list(problems)
        detail = "; ".join(self.problems)
        super().__init__(f"{fr} / {en}" + (f" : {detail}" if detail else ""))


@dataclass(frozen=True)
class Field:
    name: str
    type: FieldType
    title: str = ""
    description: str = ""
    required: bool = False
    unique: bool = False
    minimum: float | int | None = None
    maximum: float | int | None = None
    enum: tuple[Any, ...] | None = None
    pattern: str | None = None
    max_length: int | None = None
    indexed: bool = False  # "index": true — rows sorted and filtered on it fast, imports slower

    def arrow_type(self) -> pa.DataType:
        return ARROW_TYPES[self.type]


ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "integer": pa.int64(),
    "number": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "datetime": pa.timestamp("us", tz="UTC"),
    "geometry": pa.string(),
}


@dataclass(frozen=True)
class ForeignKey:
    fields: tuple[str, ...]
    product: str  # the target product's slug
    reference_fields: tuple[str, ...]


def slugify_field(header: str) -> str:
    """A header as a field name: "Nombre de lits (J)" -> "nombre_de_lits_j"."""
    text = unicodedata.normalize("NFKD", header)
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = text.replace("œ", "oe").replace("Œ", "OE").replace("æ", "ae").replace("Æ", "AE")
    text = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    if not text:
        text = "colonne"
    if text[0].isdigit():
        text = "c_" + text
    return text[:63].rstrip("_") or "colonne"


def slugify_headers(headers: Iterable[str]) -> list[str]:
    """Field names for a row of headers, deduplicated ("code", "code_2", "code_3", ...)."""
    names: list[str] = []
    seen: set[str] = set()
    for header in headers:
        base = slugify_field(header)
        name, n = base, 1
        while name in seen:
            n += 1
            suffix = f"_{n}"
            name = base[: 63 - len(suffix)] + suffix
        seen.add(name)
        names.append(name)
    return names


def _as_tuple(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value)
    return ()


def _re2_ok(pattern: str) -> bool:
    try:
        pc.match_substring_regex(pa.array([""], pa.string()), f"^(?:{pattern})$")
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    return True


def _field_from(d: Mapping[str, Any], problems: list[str]) -> Field | None:
    name = d.get("name")
    if not isinstance(name, str) or not FIELD_NAME.match(name):
        problems.append(
            f"nom de champ invalide « {name} » (minuscules, chiffres et _, 63 caractères au plus) "
            f"/ invalid field name {name!r}"
        )
        return None
    kind = _TYPE_IN.get(str(d.get("type", "string")))
    if kind is None:
        problems.append(
            f"champ « {name} » : type « {d.get('type')} » non pris en charge "
            f"/ field {name!r}: unsupported type"
        )
        return None
    c = d.get("constraints") or {}
    bounds: dict[str, float | int | None] = {}
    for key in ("minimum", "maximum"):
        value = c.get(key)
        if value is not None and (
            kind not in NUMERIC_TYPES
            or isinstance(value, bool)
            or not isinstance(value, int | float)
        ):
            problems.append(
                f"champ « {name} » : {key} doit être un nombre sur un champ numérique "
                f"/ field {name!r}: {key} must be a number on a numeric field"
            )
            value = None
        bounds[key] = value
    pattern = c.get("pattern")
    if pattern is not None and (not isinstance(pattern, str) or not _re2_ok(pattern)):
        problems.append(
            f"champ « {name} » : motif invalide / field {name!r}: invalid pattern {pattern!r}"
        )
        pattern = None
    max_length = c.get("maxLength")
    if max_length is not None and (kind != "string" or not isinstance(max_length, int)):
        problems.append(
            f"champ « {name} » : maxLength ne s'applique qu'au texte "
            f"/ field {name!r}: maxLength applies to strings only"
        )
        max_length = None
    enum = c.get("enum")
    indexed = d.get("index", False)
    if not isinstance(indexed, bool) or (indexed and kind == "geometry"):
        problems.append(
            f"champ « {name} » : index vaut true ou false, et une géométrie ne s'indexe pas "
            f"/ field {name!r}: index is true or false, and a geometry is not indexed"
        )
        indexed = False
    return Field(
        name=name,
        type=kind,
        title=str(d.get("title") or ""),
        description=str(d.get("description") or ""),
        required=bool(c.get("required", False)),
        unique=bool(c.get("unique", False)),
        minimum=bounds["minimum"],
        maximum=bounds["maximum"],
        enum=tuple(enum) if isinstance(enum, list) else None,
        pattern=pattern,
        max_length=max_length,
        indexed=indexed,
    )


def _field_descriptor(f: Field) -> dict[str, Any]:
    d: dict[str, Any] = {"name": f.name, "type": _TYPE_OUT.get(f.type, f.type)}
    if f.title:
        d["title"] = f.title
    if f.description:
        d["description"] = f.description
    c: dict[str, Any] = {}
    for key, flag in (("required", f.required), ("unique", f.unique)):
        if flag:
            c[key] = True
    for key, value in (
        ("minimum", f.minimum),
        ("maximum", f.maximum),
        ("pattern", f.pattern),
        ("maxLength", f.max_length),
    ):
        if value is not None:
            c[key] = value
    if f.enum is not None:
        c["enum"] = list(f.enum)
    if c:
        d["constraints"] = c
    if f.indexed:
        d["index"] = True
    return d


@dataclass(frozen=True)
class TableSchema:
    fields: tuple[Field, ...]
    primary_key: tuple[str, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()

    @classmethod
    def from_descriptor(cls, d: Mapping[str, Any]) -> TableSchema:
        """Read and check a Frictionless Table Schema descriptor (SchemaError lists problems)."""
        from frictionless import Schema  # slow import: only when reading one

        if not isinstance(d, Mapping):
            raise SchemaError(
                "Le schéma doit être un objet JSON.", "The schema must be a JSON object."
            )
        report = Schema.validate_descriptor(dict(d))
        problems = [str(e.message) for e in report.errors]
        raw_fields = d.get("fields")
        if problems or not isinstance(raw_fields, list) or not raw_fields:
            raise SchemaError(
                "Le schéma n'est pas un Table Schema valide.",
                "The schema is not a valid Table Schema.",
                problems or ["aucun champ / no field"],
            )
        fields = [_field_from(f, problems) if isinstance(f, Mapping) else None for f in raw_fields]
        kept = tuple(f for f in fields if f is not None)
        names = [f.name for f in kept]
        if sum(f.indexed for f in kept) > MAX_INDEXED:
            problems.append(
                f"au plus {MAX_INDEXED} champs indexés / at most {MAX_INDEXED} indexed fields"
            )
        for name in sorted({n for n in names if names.count(n) > 1}):
            problems.append(f"champ « {name} » en double / duplicate field {name!r}")
        primary_key = _as_tuple(d.get("primaryKey"))
        for name in primary_key:
            if name not in names:
                problems.append(f"clé primaire : champ « {name} » inconnu / unknown key field")
        foreign_keys: list[ForeignKey] = []
        for fk in d.get("foreignKeys") or []:
            ref = fk.get("reference") or {}
            fk_fields, ref_fields = _as_tuple(fk.get("fields")), _as_tuple(ref.get("fields"))
            product = str(ref.get("resource") or "")
            for name in fk_fields:
                if name not in names:
                    problems.append(f"clé étrangère : champ « {name} » inconnu / unknown field")
            if not product or len(fk_fields) != len(ref_fields) or not fk_fields:
                problems.append(
                    "clé étrangère : produit ou champs de référence invalides "
                    "/ foreign key: invalid reference"
                )
            foreign_keys.append(ForeignKey(fk_fields, product, ref_fields))
        if problems:
            raise SchemaError(
                "Le schéma ne peut pas être utilisé.", "The schema cannot be used.", problems
            )
        return cls(kept, primary_key, tuple(foreign_keys))

    def to_descriptor(self) -> dict[str, Any]:
        d: dict[str, Any] = {"fields": [_field_descriptor(f) for f in self.fields]}
        if self.primary_key:
            d["primaryKey"] = list(self.primary_key)
        if self.foreign_keys:
            d["foreignKeys"] = [
                {
                    "fields": list(fk.fields),
                    "reference": {"resource": fk.product, "fields": list(fk.reference_fields)},
                }
                for fk in self.foreign_keys
            ]
        return d

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def indexed(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.indexed)

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise SchemaError(
            f"Le champ « {name} » n'existe pas dans le schéma.",
            f"The field {name!r} is not in the schema.",
        )

    def arrow_schema(self) -> pa.Schema:
        return pa.schema(
            [pa.field(f.name, f.arrow_type(), nullable=not f.required) for f in self.fields]
        )

    def changes(self, other: TableSchema) -> list[str]:
        """What changes from this schema to ``other``, one French sentence per change."""
        mine = {f.name: f for f in self.fields}
        theirs = {f.name: f for f in other.fields}
        out: list[str] = []
        for name, f in theirs.items():
            if name not in mine:
                out.append(f"champ ajouté : « {name} » ({TYPE_LABELS_FR[f.type]})")
        for name, f in mine.items():
            if name not in theirs:
                out.append(f"champ supprimé : « {name} »")
                continue
            g = theirs[name]
            if f.type != g.type:
                out.append(
                    f"champ « {name} » : type {TYPE_LABELS_FR[f.type]} → {TYPE_LABELS_FR[g.type]}"
                )
            for attr in (
                "required",
                "unique",
                "minimum",
                "maximum",
                "enum",
                "pattern",
                "max_length",
            ):
                before, after = getattr(f, attr), getattr(g, attr)
                if before != after:
                    out.append(f"champ « {name} » : contrainte {attr} {before!r} → {after!r}")
            if f.indexed != g.indexed:
                out.append(f"champ « {name} » : index {'ajouté' if g.indexed else 'retiré'}")
        if [n for n in self.field_names if n in theirs] != [
            n for n in other.field_names if n in mine
        ]:
            out.append("ordre des champs modifié")
        if self.primary_key != other.primary_key:
            out.append(
                f"clé primaire : {', '.join(self.primary_key) or '(aucune)'} → "
                f"{', '.join(other.primary_key) or '(aucune)'}"
            )
        if self.foreign_keys != other.foreign_keys:
            out.append("clés étrangères modifiées")
        return out


def field_type(name: str) -> FieldType:
    """A type name (ours or Frictionless's) as a FieldType."""
    kind = _TYPE_IN.get(name)
    if kind is None:
        raise SchemaError(f"Type « {name} » non pris en charge.", f"Unsupported type {name!r}.")
    return kind
