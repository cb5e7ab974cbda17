"""The gazetteer: named venues of the operation that officers pick instead of typing
coordinates (Paris 2024 sites for the reference case)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Venue:
    name: str
    lon: float
    lat: float


VENUES = [
    Venue("Stade de France", 2.3601, 48.9245),
    Venue("Champ-de-Mars", 2.2983, 48.8556),
    Venue("place de la Concorde", 2.3212, 48.8656),
    Venue("stade nautique de Vaires-sur-Marne", 2.6336, 48.8694),
    Venue("pont d'Iéna", 2.2926, 48.8599),
    Venue("pont Alexandre-III", 2.3137, 48.8637),
    Venue("Trocadéro", 2.2885, 48.8620),
    Venue("Grand Palais", 2.3125, 48.8661),
    Venue("esplanade des Invalides", 2.3125, 48.8566),
    Venue("Parc des Princes", 2.2530, 48.8414),
    Venue("Bercy Arena", 2.3786, 48.8386),
    Venue("Roland-Garros", 2.2480, 48.8470),
    Venue("Paris La Défense Arena", 2.2287, 48.8958),
    Venue("Centre aquatique olympique", 2.3570, 48.9210),
    Venue("Village olympique", 2.3320, 48.9120),
    Venue("château de Versailles", 2.1204, 48.8049),
    Venue("gare du Nord", 2.3553, 48.8809),
    Venue("Hôtel de Ville", 2.3522, 48.8566),
    Venue("Porte de la Chapelle Arena", 2.3600, 48.8990),
    Venue("vélodrome de Saint-Quentin-en-Yvelines", 2.0406, 48.7877),
]


def find_venue(name: str) -> Venue | None:
    """The venue with this name, ignoring case and surrounding spaces."""
    wanted = name.strip().casefold()
    return next((v for v in VENUES if v.name.casefold() == wanted), None)
