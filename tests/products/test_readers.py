"""Every uploaded format to a typed, checked table (products/readers.py, formats.py, casts.py)."""

from __future__ import annotations

import datetime as dt
import io
import json
import struct
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hypervision.products.readers import (
    ReadError,
    ReadResult,
    escape_formula,
    infer_schema,
    preview,
    read_table,
)
from hypervision.products.schema import TableSchema
from tests.products.sheets import ods, xlsx

DATA = Path(__file__).parent / "data"
MB = 1 << 20
UTC = dt.UTC

LITS = TableSchema.from_descriptor(
    {
        "fields": [
            {"name": "hopital", "type": "string", "constraints": {"required": True}},
            {"name": "departement", "type": "string"},
            {"name": "nombre_de_lits_j", "type": "integer", "constraints": {"minimum": 0}},
            {"name": "taux_d_occupation", "type": "number"},
            {"name": "date", "type": "date"},
            {"name": "urgences_saturees", "type": "boolean"},
            {"name": "mis_a_jour", "type": "datetime"},
        ],
        "primaryKey": ["hopital"],
    }
)
SIMPLE = TableSchema.from_descriptor(
    {
        "fields": [
            {"name": "code", "type": "string"},
            {"name": "lits", "type": "integer"},
        ],
        "primaryKey": ["code"],
    }
)


def read(
    data: bytes,
    name: str = "f.csv",
    schema: TableSchema | None = None,
    *,
    max_rows: int | None = None,
    column_map: dict[str, str] | None = None,
) -> ReadResult:
    return read_table(
        io.BytesIO(data),
        filename=name,
        media_type=None,
        schema=schema,
        max_bytes=MB,
        max_rows=max_rows,
        column_map=column_map,
    )


def test_french_latin1_semicolon_csv_with_decimal_commas() -> None:
    result = read_table(
        DATA / "lits_latin1.csv",
        filename="lits.csv",
        media_type="text/csv",
        schema=LITS,
        max_bytes=MB,
    )
    assert (result.format, result.encoding, result.delimiter) == ("csv", "cp1252", ";")
    assert result.errors == [] and result.error_count == 0
    assert result.rows_read == 3
    first = result.table.to_pylist()[0]
    assert first == {
        "hopital": "Bichat – Claude-Bernard",
        "departement": "75",
        "nombre_de_lits_j": 1234,
        "taux_d_occupation": 87.5,
        "date": dt.date(2024, 7, 26),
        "urgences_saturees": True,
        "mis_a_jour": dt.datetime(2024, 7, 26, 12, 30, tzinfo=UTC),  # 14:30 in Paris
    }
    assert result.table.schema == LITS.arrow_schema()


def test_utf8_bom_and_sniffed_delimiters() -> None:
    result = read_table(
        DATA / "bom.csv", filename="bom.csv", media_type=None, schema=SIMPLE, max_bytes=MB
    )
    assert result.encoding == "utf-8-sig"
    assert result.table.column("code").to_pylist() == ["75", "2A"]
    assert result.errors[0].row == 1 and "nom" in result.errors[0].message  # extra column
    for delimiter in ("\t", "|", ",", ";"):
        data = f"code{delimiter}lits\n75{delimiter}12\n13{delimiter}4\n".encode()
        r = read(data, schema=SIMPLE)
        assert r.delimiter == delimiter and r.error_count == 0
        assert r.table.column("lits").to_pylist() == [12, 4]


def test_latin1_with_quoted_separators_and_line_breaks() -> None:
    data = 'code;lits\n"Hôtel-Dieu; Paris\nbâtiment B";3\nÉvry\n\x81x;4\n'.encode("latin-1")
    r = read(data, schema=SIMPLE)
    assert (r.encoding, r.delimiter) == ("latin-1", ";")  # \x81 is not Windows-1252
    assert r.table.column("code").to_pylist() == ["Hôtel-Dieu; Paris\nbâtiment B", "\x81x"]
    assert [e.message for e in r.errors] == ["ligne 3 : 1 cellule(s) au lieu de 2, ligne ignorée"]


def test_utf16_tab_separated_from_excel() -> None:
    data = "code\tlits\r\nÎle\t3\r\n".encode("utf-16")  # Excel's "Unicode text"
    r = read(data, schema=SIMPLE)
    assert (r.encoding, r.delimiter) == ("utf-16", "\t")
    assert r.table.to_pylist() == [{"code": "Île", "lits": 3}]


def test_ragged_rows_are_named_and_the_rest_is_read() -> None:
    data = b'code,lits\nA,1\nB\nC,3,extra\n"D\nsuite",4\n\nE,5\n'
    result = read(data, schema=SIMPLE)
    assert [(e.row, e.field) for e in result.errors] == [(3, None), (4, None)]
    assert result.errors[0].message == "ligne 3 : 1 cellule(s) au lieu de 2, ligne ignorée"
    assert result.error_counts_by_field == {"": 2}
    assert result.table.column("code").to_pylist() == ["A", "D\nsuite", "E"]
    # a blank line is skipped without shifting the numbering
    bad = read(b"code,lits\nA,1\n\nB,deux\n", schema=SIMPLE)
    assert [e.row for e in bad.errors] == [4]


def test_type_errors_name_row_and_field_in_french() -> None:
    data = "hopital;nombre_de_lits_j\nBichat;12\nPitié;douze\nCochin;-3\n".encode()
    result = read(data, schema=LITS)
    assert [e.message for e in result.errors] == [
        "ligne 3, champ « nombre_de_lits_j » : « douze » n'est pas un nombre entier",
        "ligne 4, champ « nombre_de_lits_j » : « -3 » est inférieur au minimum 0",
    ]
    assert result.error_counts_by_field == {"nombre_de_lits_j": 2}
    assert result.table.column("nombre_de_lits_j").to_pylist() == [12, None, -3]


def test_formulas_are_kept_as_text_and_escaped_for_export() -> None:
    data = b'code,lits\n"=HYPERLINK(""http://x"",""clic"")",1\n+33 1,2\n@SUM(A1),3\n-x,4\n'
    codes = read(data, schema=SIMPLE).table.column("code").to_pylist()
    assert codes == ['=HYPERLINK("http://x","clic")', "+33 1", "@SUM(A1)", "-x"]
    assert [escape_formula(c) for c in codes] == [
        '\'=HYPERLINK("http://x","clic")',
        "'+33 1",
        "'@SUM(A1)",
        "'-x",
    ]
    assert escape_formula("Bichat") == "Bichat"
    sheet = xlsx([["code", "lits"], ["=1+1", 1], ["B", ("=A2*2", 2)]])
    r = read(sheet, "f.xlsx", SIMPLE)
    assert r.table.to_pylist() == [{"code": "=1+1", "lits": 1}, {"code": "B", "lits": 2}]


def test_duplicate_keys() -> None:
    data = b"code,lits\nA,1\nB,2\nA,3\n,4\n"
    result = read(data, schema=SIMPLE)
    assert [e.message for e in result.errors] == [
        "ligne 4, champ « code » : clé primaire (code) « A » en double, déjà en ligne 2",
        "ligne 5, champ « code » : valeur obligatoire manquante",
    ]


class Endless(io.BytesIO):
    """A stream that never ends, counting what is read from it."""

    def __init__(self) -> None:
        super().__init__()
        self.served = 0

    def read(self, size: int | None = -1) -> bytes:
        size = MB if size is None or size < 0 else size
        self.served += size
        return (b"a,b\n" * (size // 4 + 1))[:size]


def test_oversize_file_refused_before_reading_it_all(tmp_path: Path) -> None:
    stream = Endless()
    with pytest.raises(ReadError) as e:
        read_table(
            stream,
            filename="big.csv",
            media_type=None,
            schema=None,
            max_bytes=3 * MB,
        )
    assert stream.served <= 4 * MB
    assert "trop volumineux" in e.value.fr and "too large" in e.value.en
    big = tmp_path / "big.csv"
    big.write_bytes(b"a\n" * MB)
    with pytest.raises(ReadError):
        read_table(big, filename="big.csv", media_type=None, schema=None, max_bytes=MB)


def test_zip_bomb_workbook_refused() -> None:
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("xl/workbook.xml", "<workbook/>")
        z.writestr("xl/worksheets/sheet1.xml", b"\0" * (64 * MB))
    data = bomb.getvalue()
    assert len(data) < MB
    with pytest.raises(ReadError) as e:
        read(data, "innocent.xlsx")
    assert "bombe zip" in e.value.fr


def test_zip_lying_about_its_sizes_refused() -> None:
    """A sheet that declares 1,000 bytes and inflates to 20 MB: refused before calamine."""
    padded = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(xlsx([["code"], ["A"]]))) as base,
        zipfile.ZipFile(padded, "w", zipfile.ZIP_DEFLATED) as z,
    ):
        for info in base.infolist():
            data = base.read(info)
            if info.filename.endswith("sheet1.xml"):
                data = data.replace(b"<sheetData>", b"<sheetData>" + b" " * (20 * MB))
            z.writestr(info.filename, data)
    raw = bytearray(padded.getvalue())
    name, i = b"xl/worksheets/sheet1.xml", 0
    while (i := raw.find(name, i + 1)) >= 0:
        if raw[i - 30 : i - 26] == b"PK\x03\x04":  # local header: uncompressed size
            struct.pack_into("<I", raw, i - 30 + 22, 1000)
        elif raw[i - 46 : i - 42] == b"PK\x01\x02":  # central directory entry
            struct.pack_into("<I", raw, i - 46 + 24, 1000)
    with pytest.raises(ReadError) as e:
        read(bytes(raw), "f.xlsx")
    assert e.value.fr == "Classeur illisible ou protégé."


def test_xlsx_and_ods() -> None:
    rows: list[list[object]] = [["Code", "Lits"], ["75", 12], ["13", "douze"], [None, None]]
    for name, data in (("f.xlsx", xlsx(rows)), ("f.ods", ods(rows))):  # type: ignore[arg-type]
        r = read(data, name, SIMPLE)
        assert r.format == name[2:]
        assert r.table.column("lits").to_pylist() == [12, None]
        assert [e.message for e in r.errors] == [
            "ligne 3, champ « lits » : « douze » n'est pas un nombre entier"
        ]
    shifted = xlsx([["code", "lits"], ["A", 1], ["B", 2, "hors"]], first_row=3)
    r = read(shifted, "f.xlsx", SIMPLE)
    assert [(e.row, e.field) for e in r.errors] == [(5, None)]
    assert r.table.column("code").to_pylist() == ["A"]


def test_missing_sheet_is_a_whole_file_error() -> None:
    with pytest.raises(ReadError) as e:
        read_table(
            io.BytesIO(xlsx([["code"], ["A"]])),
            filename="f.xlsx",
            media_type=None,
            schema=None,
            max_bytes=MB,
            sheet="Bilan",
        )
    assert e.value.fr == "Feuille « Bilan » introuvable."
    headers, rows = preview(
        io.BytesIO(ods([["code"], ["A"]])), filename="f.ods", media_type=None, sheet=0
    )
    assert (headers, rows) == (["code"], [["A"]])


def test_json_array_and_data_object() -> None:
    records = [{"code": "A", "lits": 1}, {"code": "B", "lits": "2", "note": {"x": 1}}, 7]
    for doc in (records, {"data": records}):
        r = read(json.dumps(doc).encode(), "f.json", SIMPLE)
        assert r.format == "json"
        assert r.table.to_pylist() == [{"code": "A", "lits": 1}, {"code": "B", "lits": 2}]
        assert [e.message for e in r.errors] == [
            "élément 1 : colonnes inconnues du schéma, ignorées : « note »",
            "élément 3 : n'est pas un objet JSON, ignoré",
        ]
    with pytest.raises(ReadError):
        read(b'{"rows": 1}', "f.json")


def test_geojson_properties_and_geometry() -> None:
    result = read((DATA / "sites.geojson").read_bytes(), "sites.geojson")
    assert result.format == "geojson"
    assert [
        f.type
        for f in infer_schema(DATA / "sites.geojson", filename="s.geojson", media_type=None).fields
    ] == ["string", "integer", "geometry"]
    rows = result.table.to_pylist()
    assert rows[0]["nom"] == "Stade de France" and rows[0]["capacite"] == 80000
    assert json.loads(rows[0]["geometry"]) == {"type": "Point", "coordinates": [2.3601, 48.9245]}
    assert rows[2]["geometry"] is None
    bad = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "properties": {}, "geometry": {"type": "Point"}}],
    }
    schema = TableSchema.from_descriptor({"fields": [{"name": "geometry", "type": "geojson"}]})
    errors = read(json.dumps(bad).encode(), "x.geojson", schema).errors
    assert [e.message for e in errors] == [
        'entité 1, champ « geometry » : « {"type": "Point"} » n\'est pas une géométrie GeoJSON'
    ]


def test_parquet_round_trip() -> None:
    table = pa.table(
        {
            "code": ["A", "B", None],
            "lits": pa.array([1, 2, 3], pa.int32()),
            "taux": [1.5, None, 3.0],
            "jour": [dt.date(2024, 7, 26)] * 3,
            "vu": pa.array(
                [dt.datetime(2024, 7, 26, 12, tzinfo=UTC)] * 3, pa.timestamp("ms", "UTC")
            ),
        }
    )
    out = io.BytesIO()
    pq.write_table(table, out)
    inferred = read(out.getvalue(), "f.parquet")
    assert inferred.format == "parquet"
    assert [
        f.type
        for f in TableSchema.from_descriptor(
            infer_schema(
                io.BytesIO(out.getvalue()), filename="f.parquet", media_type=None
            ).to_descriptor()
        ).fields
    ] == ["string", "integer", "number", "date", "datetime"]
    assert inferred.table.to_pylist() == table.to_pylist()
    back = io.BytesIO()
    pq.write_table(inferred.table, back)
    assert read(back.getvalue(), "g.parquet").table.equals(inferred.table)
    floats = io.BytesIO()
    pq.write_table(pa.table({"code": ["A"], "lits": [1.5]}), floats)
    errors = read(floats.getvalue(), "f.parquet", SIMPLE).errors
    assert [e.message for e in errors] == [
        "ligne 1, champ « lits » : « 1.5 » n'est pas un nombre entier"
    ]


def test_infer_schema_on_a_french_csv() -> None:
    schema = infer_schema(DATA / "lits_latin1.csv", filename="lits.csv", media_type="text/csv")
    assert [(f.name, f.type, f.title) for f in schema.fields] == [
        ("hopital", "string", "Hôpital"),
        ("departement", "integer", "Département"),
        ("nombre_de_lits_j", "integer", "Nombre de lits (J)"),
        ("taux_d_occupation", "number", "Taux d'occupation"),
        ("date", "date", "Date"),
        ("urgences_saturees", "boolean", "Urgences saturées"),
        ("mis_a_jour", "datetime", "Mis à jour"),
    ]
    assert TableSchema.from_descriptor(schema.to_descriptor()) == schema
    codes = infer_schema(
        io.BytesIO(b"insee;cp;n\n01053;01000;-1\n2A004;20000;+2\n"),
        filename="c.csv",
        media_type=None,
    )
    assert [f.type for f in codes.fields] == ["string", "string", "integer"]
    headers, rows = preview(DATA / "lits_latin1.csv", filename="lits.csv", media_type=None, rows=2)
    assert headers[2] == "Nombre de lits (J)"
    assert rows == [
        ["Bichat – Claude-Bernard", "75", "1 234", "87,5", "26/07/2024", "oui", "26/07/2024 14:30"],
        ["Pitié-Salpêtrière", "75", "1 800", "92,25", "26/07/2024", "non", "26/07/2024 15:00"],
    ]


def test_column_map_unknown_and_missing_columns() -> None:
    data = b"Code INSEE,Lits dispo,Autre\n75,3,x\n"
    r = read(
        data, schema=SIMPLE, column_map={"Code INSEE": "code", "Lits dispo": "lits", "Autre": ""}
    )
    assert r.table.to_pylist() == [{"code": "75", "lits": 3}] and r.errors == []
    r = read(data, schema=SIMPLE, column_map={"Code INSEE": "code"})
    assert r.error_count == 1
    assert r.errors[0].message == (
        "ligne 1 : colonnes inconnues du schéma, ignorées : « Lits dispo », « Autre »"
    )
    with pytest.raises(ReadError) as e:
        read(b"lits\n3\n", schema=SIMPLE)
    assert e.value.fr == "Colonnes obligatoires absentes : « code »"
    with pytest.raises(ReadError):
        read(data, schema=SIMPLE, column_map={"Code INSEE": "code", "Lits dispo": "code"})


def test_edge_shapes() -> None:
    assert read(b"code,lits").table.num_rows == 0  # a header without its line end
    assert read(b"x,,y\n1,2,3").table.column_names == ["x", "colonne", "y"]
    assert read(b"a\n1\n\n2\n").table.column("a").to_pylist() == [1, 2]
    assert read(b"[]", "e.json").table.num_columns == 0
    assert read(b"[Nom];[Lits]\nA;1\n", "x.csv").table.column_names == ["nom", "lits"]


def test_inference_checks_its_guess_over_the_whole_file() -> None:
    data = b"a;b\n" + b"".join(b"%d;%d,5\n" % (i, i) for i in range(3000)) + b"x;1\n"
    r = read(data)
    assert r.error_count == 0
    assert r.table.schema.types == [pa.string(), pa.float64()]  # "x" on the last row


def test_whole_file_refusals() -> None:
    with pytest.raises(ReadError):
        read(b"\x7fELF\x02\x01\x01\x00\x00\x00\x00", "x.csv")
    with pytest.raises(ReadError):
        read(b"")
    with pytest.raises(ReadError) as e:
        read(b"a\n1\n2\n3\n", max_rows=2)
    assert "Trop de lignes" in e.value.fr
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("evil.txt", "x")
    with pytest.raises(ReadError):
        read(archive.getvalue(), "f.xlsx")


def test_datetimes_with_zones_and_paris_time() -> None:
    schema = TableSchema.from_descriptor({"fields": [{"name": "t", "type": "datetime"}]})
    values = [
        "2024-07-26T14:30:00Z",
        "2024-07-26T14:30:00+02:00",
        "2024-01-15 09:00",
        "15/01/2024 09:00",
        "hier",
        "30/02/2024 10:00",
    ]
    data = ("t\n" + "\n".join(values) + "\n").encode()
    r = read(data, schema=schema)
    assert r.table.column("t").to_pylist() == [
        dt.datetime(2024, 7, 26, 14, 30, tzinfo=UTC),
        dt.datetime(2024, 7, 26, 12, 30, tzinfo=UTC),
        dt.datetime(2024, 1, 15, 8, 0, tzinfo=UTC),  # winter: UTC+1
        dt.datetime(2024, 1, 15, 8, 0, tzinfo=UTC),
        None,
        None,  # strptime alone would read 1 March
    ]
    assert [e.row for e in r.errors] == [6, 7]
    dates = TableSchema.from_descriptor({"fields": [{"name": "d", "type": "date"}]})
    r = read(b"d\n30/02/2024\n2024-02-30\n29/02/2024\n6/7/2024\n26/07/24\n", schema=dates)
    assert r.table.column("d").to_pylist() == [
        None,
        None,
        dt.date(2024, 2, 29),
        dt.date(2024, 7, 6),
        None,
    ]


def test_errors_are_capped_but_all_counted() -> None:
    data = b"code,lits\n" + b"".join(b"C%d,x\n" % i for i in range(5000))
    r = read(data, schema=SIMPLE)
    assert r.error_count == 5000 and len(r.errors) == 100
    assert [e.row for e in r.errors] == list(range(2, 102))
