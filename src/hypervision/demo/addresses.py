"""The demo's address file: the streets around the operation's venues, in the national address
base's CSV format, so that ``hypervision demo load`` exercises the real import.

Street names are real; numbers and coordinates are generated (house numbers spread evenly
along an approximate segment of the street), not surveyed. Regenerate the shipped file with

    python -m hypervision.demo.addresses
"""

from __future__ import annotations

import csv
import io
import sys
from dataclasses import dataclass
from pathlib import Path

from hypervision.geo.addresses import BAN_HEADER

DEMO_FILE = Path(__file__).parent / "data" / "adresses-demo.csv"


@dataclass(frozen=True)
class Street:
    name: str
    postcode: str
    citycode: str
    city: str
    start: tuple[float, float]  # lon, lat
    end: tuple[float, float]
    numbers: int


SAINT_DENIS = ("93200", "93066", "Saint-Denis")
STREETS = [
    Street("Rue Jules Rimet", *SAINT_DENIS, (2.3588, 48.9231), (2.3626, 48.9256), 24),
    Street("Avenue du Président Wilson", *SAINT_DENIS, (2.3530, 48.9160), (2.3598, 48.9262), 40),
    Street("Rue du Landy", *SAINT_DENIS, (2.3582, 48.9146), (2.3700, 48.9170), 30),
    Street("Rue Francis de Pressensé", *SAINT_DENIS, (2.3561, 48.9211), (2.3640, 48.9236), 24),
    Street("Rue du Cornillon", *SAINT_DENIS, (2.3650, 48.9212), (2.3690, 48.9240), 16),
    Street("Boulevard Anatole France", *SAINT_DENIS, (2.3480, 48.9281), (2.3560, 48.9330), 30),
    Street("Rue de la République", *SAINT_DENIS, (2.3561, 48.9355), (2.3590, 48.9371), 20),
    Street(
        "Avenue Anatole France", "75007", "75107", "Paris", (2.2950, 48.8571), (2.2985, 48.8590), 12
    ),
    Street("Quai Branly", "75007", "75107", "Paris", (2.2930, 48.8581), (2.3000, 48.8620), 30),
    Street(
        "Avenue de la Bourdonnais",
        "75007",
        "75107",
        "Paris",
        (2.2980, 48.8600),
        (2.3030, 48.8531),
        30,
    ),
    Street(
        "Avenue de Suffren", "75007", "75107", "Paris", (2.2920, 48.8570), (2.2990, 48.8490), 30
    ),
    Street("Rue Royale", "75008", "75108", "Paris", (2.3225, 48.8680), (2.3240, 48.8700), 14),
    Street(
        "Avenue Winston Churchill",
        "75008",
        "75108",
        "Paris",
        (2.3130, 48.8640),
        (2.3135, 48.8670),
        6,
    ),
    Street("Cours la Reine", "75008", "75108", "Paris", (2.3200, 48.8640), (2.3120, 48.8625), 16),
    Street(
        "Avenue de New York", "75016", "75116", "Paris", (2.2960, 48.8620), (2.3020, 48.8640), 20
    ),
    Street(
        "Rue du Commandant Guilbaud",
        "75016",
        "75116",
        "Paris",
        (2.2520, 48.8420),
        (2.2540, 48.8400),
        10,
    ),
    Street(
        "Boulevard d'Auteuil", "75016", "75116", "Paris", (2.2510, 48.8470), (2.2490, 48.8440), 14
    ),
    Street(
        "Boulevard de Bercy", "75012", "75112", "Paris", (2.3790, 48.8390), (2.3850, 48.8350), 30
    ),
    Street("Rue de Dunkerque", "75010", "75110", "Paris", (2.3500, 48.8800), (2.3570, 48.8815), 30),
    Street("Rue de Rivoli", "75004", "75104", "Paris", (2.3540, 48.8565), (2.3500, 48.8580), 20),
]


def rows() -> list[list[str]]:
    """The file's rows after the header, in the base's column order."""
    out = []
    for index, street in enumerate(STREETS):
        fantoir = f"{index + 1:04d}"
        for n in range(1, street.numbers + 1):
            t = (n - 1) / max(street.numbers - 1, 1)
            lon = street.start[0] + t * (street.end[0] - street.start[0])
            lat = street.start[1] + t * (street.end[1] - street.start[1])
            # ``id;id_fantoir;numero;rep;nom_voie;code_postal;code_insee;nom_commune;…``
            values = dict.fromkeys(BAN_HEADER, "")
            values.update(
                id=f"{street.citycode}_{fantoir}_{n:05d}",
                id_fantoir=f"{street.citycode}_{fantoir}",
                numero=str(n),
                nom_voie=street.name,
                code_postal=street.postcode,
                code_insee=street.citycode,
                nom_commune=street.city,
                lon=f"{lon:.6f}",
                lat=f"{lat:.6f}",
                type_position="entrée",
                libelle_acheminement=street.city.upper(),
                source_position="commune",
                source_nom_voie="commune",
                certification_commune="0",
            )
            out.append([values[name] for name in BAN_HEADER])
    return out


def render() -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\n")
    writer.writerow(BAN_HEADER)
    writer.writerows(rows())
    return buffer.getvalue()


if __name__ == "__main__":
    DEMO_FILE.write_text(render(), encoding="utf-8")
    sys.stdout.write(f"{DEMO_FILE}: {len(rows())} addresses\n")
