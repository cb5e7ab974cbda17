"""A small catalogue for the DCAT tests: heat alerts (geometry, period) and transit incidents."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

from hypervision.dcat.model import (
    LICENCE_OUVERTE_2,
    ODBL,
    Catalogue,
    Dataset,
    Field,
    Release,
)

BASE = "https://donnees.hypervision.example"
SHA_A = "a" * 64
SHA_B = "0123456789abcdef" * 4
SHA_C = "fedcba9876543210" * 4
SHA_GEO = "5" * 64

# Accents, quotes, angle brackets and an ampersand: all must survive every serialisation.
TRICKY = 'Incidents « quotidiens » de l\'été : "lignes" <b>RER</b> & métro'


def _downloads(slug: str, number: int, formats: tuple[str, ...]) -> dict[str, str]:
    return {f: f"{BASE}/datasets/{slug}/releases/{number}/data.{f}" for f in formats}


def heat_alerts() -> Dataset:
    slug = "alertes-canicule-departements"
    return Dataset(
        slug=slug,
        title="Alertes canicule par département",
        description="Niveaux de vigilance canicule, par département et par jour.",
        keywords=["canicule", "vigilance", "santé"],
        themes=["HEAL", "ENVI"],
        publisher_name="Ministère de la Santé",
        licence_uri=LICENCE_OUVERTE_2,
        issued=datetime(2024, 6, 1, 8, 0, tzinfo=UTC),
        modified=datetime(2024, 8, 15, 6, 30, tzinfo=UTC),
        temporal_start=date(2024, 6, 1),
        temporal_end=date(2024, 9, 30),
        bbox=(-5.2, 41.3, 9.6, 51.1),
        fields=[
            Field("departement", "string", "Département", "Code INSEE du département"),
            Field("jour", "date", "Jour"),
            Field("niveau", "integer", "Niveau de vigilance", "De 1 (vert) à 4 (rouge)"),
            Field("temperature_max", "number", "Température maximale", unit="°C"),
            Field("contour", "geojson", "Contour du département"),
        ],
        releases=[
            Release(
                number=1,
                created=datetime(2024, 6, 1, 8, 0, tzinfo=UTC),
                row_count=96,
                checksum_sha256=SHA_A,
                downloads=_downloads(slug, 1, ("csv", "json", "geojson", "parquet")),
            ),
            Release(
                number=2,
                created=datetime(2024, 8, 15, 6, 30, tzinfo=UTC),
                row_count=7_104,
                checksum_sha256=SHA_B,
                downloads=_downloads(slug, 2, ("csv", "json", "geojson", "parquet")),
                checksums={"geojson": SHA_GEO},
                byte_sizes={"csv": 412_345},
            ),
        ],
        landing_page=f"{BASE}/datasets/{slug}",
        schema_url=f"{BASE}/datasets/{slug}/schema.json",
    )


def transit_incidents() -> Dataset:
    slug = "incidents-transport-quotidiens"
    return Dataset(
        slug=slug,
        title=TRICKY,
        description=f"Agrégé par ligne, comptes < 11 supprimés. {TRICKY}",
        keywords=["transport", "incidents", "l'été « chaud »"],
        themes=["TRAN"],
        publisher_name='Préfecture de police <Paris> & "DRIEAT"',
        licence_uri=ODBL,
        issued=datetime(2024, 7, 1, tzinfo=UTC),
        modified=datetime(2024, 7, 2, tzinfo=UTC),
        temporal_start=None,
        temporal_end=None,
        bbox=None,
        fields=[
            Field("ligne", "string", "Ligne"),
            Field("jour", "date", "Jour"),
            Field("incidents", "integer", "Nombre d'incidents", "Supprimé sous 11"),
        ],
        releases=[
            Release(
                number=1,
                created=datetime(2024, 7, 2, tzinfo=UTC),
                row_count=1_234,
                checksum_sha256=SHA_C,
                downloads=_downloads(slug, 1, ("csv", "json", "parquet")),
            )
        ],
        landing_page=f"{BASE}/datasets/{slug}",
        schema_url=f"{BASE}/datasets/{slug}/schema.json",
    )


def catalogue(*datasets: Dataset) -> Catalogue:
    return Catalogue(
        base_url=BASE,
        title="Données ouvertes d'Hypervision",
        description="Les jeux de données publiés par les administrations.",
        publisher_name="Ministère de l'Intérieur",
        homepage=f"{BASE}/",
        modified=datetime(2024, 8, 15, 6, 30, tzinfo=UTC),
        datasets=list(datasets) if datasets else [heat_alerts(), transit_incidents()],
    )


__all__ = ["catalogue", "heat_alerts", "replace", "transit_incidents"]
