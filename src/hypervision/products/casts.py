"""Cells to typed columns, vectorised: a whole column is parsed at once with ``pyarrow.compute``.

Each cast returns the typed array and a mask of the cells that were not empty but could not be
read as the type (they become null, and the caller reports them). Empty cells ("" or only
spaces, for every type but text) are null, not errors. With ``french=True`` (CSV and sheets),
numbers may use a decimal comma and spaces or dots between thousands ("1 234,5", "1.234,5"),
dates may be written 26/07/2024, and date-times 26/07/2024 14:30. A date-time without a zone
is Paris time (the platform's zone), converted to UTC; ISO zones ("Z", "+02:00") are honoured.
Numbers must be finite: NaN and infinities are refused (neither engine stores them alike).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hypervision.products.schema import ARROW_TYPES, FieldType

LOCAL_ZONE = "Europe/Paris"
TRUE_WORDS = ("true", "vrai", "oui", "o", "yes", "y", "t", "1", "x")
FALSE_WORDS = ("false", "faux", "non", "n", "no", "f", "0")
INVALID_FR: dict[str, str] = {
    "integer": "n'est pas un nombre entier",
    "number": "n'est pas un nombre",
    "boolean": "n'est pas un booléen (oui/non, vrai/faux, 1/0)",
    "date": "n'est pas une date (AAAA-MM-JJ ou JJ/MM/AAAA)",
    "datetime": "n'est pas une date et heure (AAAA-MM-JJTHH:MM:SS, zone facultative)",
    "geometry": "n'est pas une géométrie GeoJSON",
    "string": "n'est pas un texte",
}
_INT = r"^[+-]?\d{1,18}$"
_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d{1,3})?$"
_SPACES = "[ \u00a0\u202f\u2009]"
_FR_DATE = (r"^(\d{1,2})/(\d{1,2})/(\d{4})", r"\3-\2-\1")
_DATE = r"^(?P<d>\d{4}-\d{1,2}-(?P<day>\d{1,2}))(?:[T ]00:00(?::00(?:\.0+)?)?)?$"
_DATETIME = (
    r"^(?P<d>\d{4}-\d{1,2}-(?P<day>\d{1,2}))(?:[T ](?P<h>\d{1,2})(?P<m>:\d{2})?(?P<s>:\d{2})?"
    r"(?P<f>\.\d{1,9})?(?P<z>Z|[+-]\d{2}(?::?\d{2})?)?)?$"
)


def _where(mask: pa.Array, values: pa.Array, kind: pa.DataType) -> pa.Array:
    """``values`` where ``mask`` is true, null elsewhere."""
    return pc.if_else(pc.fill_null(mask, False), values, pa.scalar(None, kind))


def _blank_to_null(s: pa.Array) -> pa.Array:
    trimmed = pc.utf8_trim_whitespace(s)
    return _where(pc.not_equal(trimmed, ""), trimmed, pa.string())


def _fast(s: pa.Array, kind: pa.DataType) -> pa.Array | None:
    """Arrow's own parser over the whole column, or None when a cell does not parse."""
    try:
        return pc.cast(s, kind)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _french_iso(s: pa.Array) -> pa.Array | None:
    """Cells all starting DD/MM/YYYY rewritten to start YYYY-MM-DD, or None."""
    if not pc.all(
        pc.and_(
            pc.equal(pc.utf8_slice_codeunits(s, 2, 3), "/"),
            pc.equal(pc.utf8_slice_codeunits(s, 5, 6), "/"),
        )
    ).as_py():
        return None
    return pc.replace_substring_regex(s, r"^(\d\d)/(\d\d)/(\d{4})", r"\3-\2-\1")


def _fast_integer(s: pa.Array, french: bool) -> pa.Array | None:
    hex_like = pc.or_(pc.match_substring(s, "x"), pc.match_substring(s, "X"))
    if pc.any(hex_like).as_py():  # Arrow's parser reads 0x1F
        return None
    return _fast(s, pa.int64())


def _finite(x: pa.Array) -> pa.Array:
    """Finite numbers only, and -0.0 as 0.0 (equal values must hash alike for uniqueness)."""
    return _where(pc.is_finite(x), pc.add(x, 0.0), pa.float64())


def _fast_number(s: pa.Array, french: bool) -> pa.Array | None:
    fast = _fast(pc.replace_substring(s, ",", ".") if french else s, pa.float64())
    return None if fast is None else _finite(fast)


def _slashed(s: pa.Array, french: bool) -> bool:
    """Whether to try dd/mm/yyyy first (a failed Arrow cast costs a full pass)."""
    return french and bool(pc.any(pc.match_substring(s, "/")).as_py())


def _fast_french_date(s: pa.Array) -> pa.Array | None:
    """A column of DD/MM/YYYY dates, all valid, or None."""
    shaped = pc.and_(
        pc.equal(pc.utf8_length(s), 10),
        pc.and_(
            pc.equal(pc.utf8_slice_codeunits(s, 2, 3), "/"),
            pc.equal(pc.utf8_slice_codeunits(s, 5, 6), "/"),
        ),
    )
    if not pc.all(shaped).as_py():
        return None
    ts = pc.strptime(s, format="%d/%m/%Y", unit="s", error_is_null=True)
    day = pc.cast(pc.utf8_slice_codeunits(s, 0, 2), pa.int64())
    # strptime moves 30/02 to 1 March: the day read must be the day written
    if ts.null_count != s.null_count or not pc.all(pc.equal(pc.day(ts), day)).as_py():
        return None
    return pc.cast(ts, pa.date32())


def _fast_date(s: pa.Array, french: bool) -> pa.Array | None:
    if _slashed(s, french):
        return _fast_french_date(s)
    return _fast(s, pa.date32())  # Arrow's ISO parser refuses 30 February


def _fast_datetime(s: pa.Array, french: bool) -> pa.Array | None:
    text = _french_iso(s) if _slashed(s, french) else s
    if text is not None:
        naive = _fast(text, pa.timestamp("us"))
        if naive is not None:
            local = pc.assume_timezone(
                naive, LOCAL_ZONE, ambiguous="earliest", nonexistent="latest"
            )
            return local.cast(ARROW_TYPES["datetime"])
        aware = _fast(text, ARROW_TYPES["datetime"])
        if aware is not None:
            return aware
    return None


def _integer(s: pa.Array, french: bool) -> pa.Array:
    if french:
        s = pc.replace_substring_regex(s, _SPACES, "")
    ok = pc.match_substring_regex(s, _INT)
    unsigned = pc.replace_substring_regex(s, r"^\+", "")  # Arrow's parser refuses "+2"
    return pc.cast(_where(ok, unsigned, pa.string()), pa.int64())


def _number(s: pa.Array, french: bool) -> pa.Array:
    if french:
        s = pc.replace_substring_regex(s, _SPACES, "")
        dots = pc.match_substring_regex(s, r"^[+-]?\d{1,3}(\.\d{3})+,\d*$")
        s = pc.if_else(dots, pc.replace_substring(s, ".", ""), s)
        commas = pc.match_substring_regex(s, r"^[+-]?\d{1,3}(,\d{3})+\.\d*$")
        s = pc.if_else(commas, pc.replace_substring(s, ",", ""), s)
        s = pc.replace_substring(s, ",", ".")
    ok = pc.match_substring_regex(s, _NUMBER)
    return _finite(pc.cast(_where(ok, s, pa.string()), pa.float64()))


def _boolean(s: pa.Array, french: bool) -> pa.Array:
    low = pc.utf8_lower(s)
    yes = pc.is_in(low, value_set=pa.array(TRUE_WORDS))
    no = pc.is_in(low, value_set=pa.array(FALSE_WORDS))
    return _where(pc.or_(yes, no), yes, pa.bool_())


def _dates(s: pa.Array, french: bool) -> pa.Array:
    if french:
        s = pc.replace_substring_regex(s, _FR_DATE[0], _FR_DATE[1])
    return s


def _real_day(ts: pa.Array, parts: pa.Array) -> pa.Array:
    """Null where strptime moved an impossible day (30 February) to the next month."""
    day = pc.cast(pc.struct_field(parts, "day"), pa.int64())
    return _where(pc.equal(pc.day(ts), day), ts, ts.type)


def _date(s: pa.Array, french: bool) -> pa.Array:
    parts = pc.extract_regex(_dates(s, french), _DATE)
    d = pc.struct_field(parts, "d")
    ts = _real_day(pc.strptime(d, format="%Y-%m-%d", unit="s", error_is_null=True), parts)
    return pc.cast(ts, pa.date32())


def _datetime(s: pa.Array, french: bool) -> pa.Array:
    target = ARROW_TYPES["datetime"]
    parts = pc.extract_regex(_dates(s, french), _DATETIME)

    def part(name: str) -> pa.Array:
        return pc.struct_field(parts, name)

    def given(name: str, default: str) -> pa.Array:
        p = part(name)
        return pc.coalesce(_where(pc.not_equal(p, ""), p, pa.string()), default)

    base = pc.binary_join_element_wise(
        part("d"), "T", given("h", "00"), given("m", ":00"), given("s", ":00"), ""
    )
    ts = _real_day(
        pc.strptime(base, format="%Y-%m-%dT%H:%M:%S", unit="us", error_is_null=True), parts
    )
    fraction = pc.utf8_rpad(pc.utf8_slice_codeunits(part("f"), 1, 7), width=6, padding="0")
    micros = pc.cast(_where(pc.not_equal(part("f"), ""), fraction, pa.string()), pa.int64())
    ts = pc.add(ts, pc.cast(pc.fill_null(micros, 0), pa.duration("us")))
    zone = pc.fill_null(part("z"), "")
    aware = pc.not_equal(zone, "")
    numeric = pc.and_(aware, pc.not_equal(zone, "Z"))
    digits = pc.replace_substring(pc.utf8_slice_codeunits(zone, 1), ":", "")
    hh, mm = pc.utf8_slice_codeunits(digits, 0, 2), pc.utf8_slice_codeunits(digits, 2, 4)
    hours = pc.cast(_where(numeric, hh, pa.string()), pa.int64())
    mins = pc.cast(_where(pc.and_(numeric, pc.not_equal(mm, "")), mm, pa.string()), pa.int64())
    sign = pc.if_else(pc.starts_with(zone, "-"), -1, 1)
    minutes = pc.add(pc.multiply(pc.fill_null(hours, 0), 60), pc.fill_null(mins, 0))
    offset = pc.multiply(sign, minutes)
    utc = pc.subtract(ts, pc.cast(pc.multiply(offset, 60_000_000), pa.duration("us")))
    utc = pc.assume_timezone(utc, "UTC")
    local = pc.assume_timezone(ts, LOCAL_ZONE, ambiguous="earliest", nonexistent="latest")
    return pc.if_else(aware, utc.cast(target), local.cast(target))


def _geometry(s: pa.Array, french: bool) -> pa.Array:
    import shapely  # only products with a geometry column need it

    texts = s.to_numpy(zero_copy_only=False)
    geoms = shapely.from_geojson(texts, on_invalid="ignore")
    return _where(pa.array(~shapely.is_missing(geoms)), s, pa.string())


_FAST: dict[str, Callable[[pa.Array, bool], pa.Array | None]] = {
    "integer": _fast_integer,
    "number": _fast_number,
    "date": _fast_date,
    "datetime": _fast_datetime,
}
_PARSERS: dict[str, Callable[[pa.Array, bool], pa.Array]] = {
    "integer": _integer,
    "number": _number,
    "boolean": _boolean,
    "date": _date,
    "datetime": _datetime,
    "geometry": _geometry,
}


def _from_typed(values: pa.Array, kind: FieldType) -> pa.Array | None:
    """A column already typed (Parquet, JSON numbers) cast without text, or None to go by text."""
    t = values.type
    try:
        if kind == "integer" and pa.types.is_integer(t):
            return pc.cast(values, pa.int64())
        if kind == "number" and (
            pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)
        ):
            return _finite(pc.cast(values, pa.float64()))
        if kind == "boolean" and pa.types.is_boolean(t):
            return values
        if kind == "date" and pa.types.is_date(t):
            return pc.cast(values, pa.date32())
        if kind == "datetime" and pa.types.is_timestamp(t):
            if t.tz is None:
                values = pc.assume_timezone(
                    values, LOCAL_ZONE, ambiguous="earliest", nonexistent="latest"
                )
            return pc.cast(values, ARROW_TYPES["datetime"])
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return None


def cast_values(
    values: pa.Array, kind: FieldType, *, french: bool = False
) -> tuple[pa.Array, pa.Array]:
    """``values`` as ``kind``: (typed array, mask of the non-empty cells that did not parse)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    typed = _from_typed(values, kind)
    if typed is not None:
        bad = pc.and_(pc.is_valid(values), pc.is_null(typed))
        return typed, bad
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        values = pc.cast(values, pa.string())
    if kind == "string":
        out = _where(pc.not_equal(values, ""), values, pa.string())
        return out, pa.array(np.zeros(len(values), bool))
    fast = _FAST[kind](values, french) if kind in _FAST else None
    if fast is not None:  # every cell parsed by Arrow as it is (empty cells are null)
        return fast, pc.and_(pc.is_valid(values), pc.is_null(fast))
    text = _blank_to_null(values)
    out = _PARSERS[kind](text, french)
    return out, pc.and_(pc.is_valid(text), pc.is_null(out))


def invalid_message(kind: FieldType) -> str:
    return INVALID_FR[kind]
