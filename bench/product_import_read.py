# ruff: noqa: T201 - benchmarks print their figures
"""Reading a data product import: ``products.readers.read_table`` against ``pyarrow.csv`` alone.

    python bench/product_import_read.py [--rows 1000000] [--rounds 3]

Generates (vectorised, in memory) a French-style CSV of ``--rows`` rows and 12 columns:
Windows-1252, ``;`` separated, decimal commas, dd/mm/yyyy dates, oui/non booleans, ISO
date-times. Then times, alternating in ``--rounds`` rounds, ``read_table`` with a 12-field
schema and its quality checks on (primary key, required, range, allowed values, pattern,
length) against ``pyarrow.csv.read_csv`` parsing the same bytes with its own type inference
(the floor any reader built on it can reach), after one warm-up round. Prints rows/s and
ratios for the median and the best round (on a shared machine the best is the least
disturbed). No database is involved: the engine's bulk load is measured by the import
benchmark of the product store.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import fmt, note, ratio, show

from hypervision.products.readers import read_table
from hypervision.products.schema import TableSchema

SCHEMA = {
    "fields": [
        {"name": "id", "type": "integer"},
        {
            "name": "etablissement",
            "type": "string",
            "constraints": {"required": True, "maxLength": 80},
        },
        {"name": "departement", "type": "string", "constraints": {"pattern": "[0-9][0-9AB][0-9]?"}},
        {"name": "lits", "type": "integer", "constraints": {"minimum": 0, "maximum": 5000}},
        {"name": "lits_occupes", "type": "integer", "constraints": {"minimum": 0}},
        {"name": "taux", "type": "number", "constraints": {"minimum": 0, "maximum": 100}},
        {"name": "temperature", "type": "number"},
        {"name": "jour", "type": "date", "constraints": {"required": True}},
        {"name": "mis_a_jour", "type": "datetime"},
        {"name": "urgences_saturees", "type": "boolean"},
        {
            "name": "niveau",
            "type": "string",
            "constraints": {"enum": ["vert", "jaune", "orange", "rouge"]},
        },
        {"name": "commentaire", "type": "string"},
    ],
    "primaryKey": ["id"],
}
HEADER = (
    "Id;Établissement;Département;Lits;Lits occupés;Taux;Température;Jour;"
    "Mis à jour;Urgences saturées;Niveau;Commentaire"
)


def make_csv(rows: int, seed: int = 7) -> bytes:
    rng = np.random.default_rng(seed)

    def strings(values: np.ndarray) -> pa.Array:
        return pc.cast(pa.array(values), pa.string())

    def pick(words: list[str]) -> pa.Array:
        return pc.take(pa.array(words), pa.array(rng.integers(0, len(words), rows)))

    days = rng.integers(1, 29, rows)
    months = rng.integers(6, 10, rows)
    jour = pc.binary_join_element_wise(
        pc.utf8_lpad(strings(days), 2, "0"), pc.utf8_lpad(strings(months), 2, "0"), "2024", "/"
    )
    hours = pc.utf8_lpad(strings(rng.integers(0, 24, rows)), 2, "0")
    minutes = pc.utf8_lpad(strings(rng.integers(0, 60, rows)), 2, "0")
    stamp = pc.binary_join_element_wise(
        "2024-07-", pc.utf8_lpad(strings(days), 2, "0"), "T", hours, ":", minutes, ":00", ""
    )
    taux = pc.replace_substring(strings(np.round(rng.uniform(0, 100, rows), 1)), ".", ",")
    temp = pc.replace_substring(strings(np.round(rng.normal(24, 5, rows), 2)), ".", ",")
    columns = [
        strings(np.arange(1, rows + 1)),
        pick(
            [
                f"Hôpital {n}"
                for n in (
                    "Bichat",
                    "Pitié-Salpêtrière",
                    "Lariboisière",
                    "Cochin",
                    "Necker",
                    "Avicenne",
                    "Beaujon",
                )
            ]
        ),
        pick(["75", "92", "93", "94", "2A", "2B", "971"]),
        strings(rng.integers(10, 2000, rows)),
        strings(rng.integers(0, 1500, rows)),
        taux,
        temp,
        jour,
        stamp,
        pick(["oui", "non"]),
        pick(["vert", "jaune", "orange", "rouge"]),
        pick(["", "RAS", "renfort demandé", '=HYPERLINK("x")', "lits de réa, pleins"]),
    ]
    lines = pc.binary_join_element_wise(*columns, ";")
    body = "\n".join(lines.to_pylist())
    return (HEADER + "\n" + body + "\n").encode("cp1252")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    note(f"generating {args.rows} rows")
    data = make_csv(args.rows)
    note(f"{len(data) / 1e6:.1f} MB")
    schema = TableSchema.from_descriptor(SCHEMA)
    ours: list[float] = []
    floor: list[float] = []
    errors = 0
    for i in range(args.rounds + 1):  # round 0 warms up (thread pools, allocator): not counted
        t0 = time.perf_counter()
        pcsv.read_csv(
            io.BytesIO(data),
            read_options=pcsv.ReadOptions(encoding="cp1252"),
            parse_options=pcsv.ParseOptions(delimiter=";"),
        )
        if i:
            floor.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        result = read_table(
            io.BytesIO(data),
            filename="lits.csv",
            media_type="text/csv",
            schema=schema,
            max_bytes=len(data) + 1,
        )
        if i:
            ours.append(time.perf_counter() - t0)
        errors = result.error_count
        assert result.table.num_rows == args.rows, result.errors[:3]
    a, b = statistics.median(ours), statistics.median(floor)
    best_a, best_b = min(ours), min(floor)
    show(
        f"Reading a {args.rows:,}-row, 12-column French CSV ({len(data) / 1e6:.0f} MB)",
        ["reader", "median s", "best s", "rows/s (median)", "ratio (median)", "ratio (best)"],
        [
            [
                "products.read_table (typed + checked)",
                fmt(a, 3),
                fmt(best_a, 3),
                fmt(args.rows / a),
                ratio(b, a),
                ratio(best_b, best_a),
            ],
            [
                "pyarrow.csv.read_csv (inference only)",
                fmt(b, 3),
                fmt(best_b, 3),
                fmt(args.rows / b),
                "1.00",
                "1.00",
            ],
        ],
    )
    print(f"\nerrors reported by read_table: {errors} (the generated data is clean)")


if __name__ == "__main__":
    main()
