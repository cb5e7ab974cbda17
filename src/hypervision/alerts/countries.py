"""The operator's address ranges → country table, for the "new country" sign-in rule
(docs/adr/0046). The platform has no internet access: the operator provides the table as a
CSV file named by ``HYPERVISION_IP_COUNTRY_FILE``, one range a line, either

    CIDR,CC                 e.g. ``192.0.2.0/24,FR`` or ``2001:db8::/32,DE``
    FIRST,LAST,CC           e.g. ``192.0.2.0,192.0.2.255,FR`` (a free IP-to-country
                            database's CSV, such as DB-IP's "IP to Country Lite", as is)

with IPv4 and IPv6 mixed, ``#`` comments and blank lines ignored, an optional header line
(``network,country`` or ``start,end,country``). Country codes are ISO 3166-1 alpha-2 (two
letters, stored upper-case). Where ranges overlap, the narrowest one that holds the address
wins. An address in no range (a private network, a range the file lacks) has no country:
the rule says nothing about it.
"""

from __future__ import annotations

import bisect
import csv
import ipaddress
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("hypervision.alerts")
CODE = re.compile(r"^[A-Za-z]{2}$")
HEADERS = {("network", "country"), ("cidr", "country"), ("start", "end", "country")}
LOOK_BACK = 64  # ranges checked before the address's position when ranges nest


class CountryFileError(ValueError):
    """A line of the table that is not a range and a country code."""


@dataclass
class CountryRanges:
    """Ranges sorted by first address, per IP version; ``country`` answers by bisection."""

    starts: dict[int, list[int]] = field(default_factory=lambda: {4: [], 6: []})
    ranges: dict[int, list[tuple[int, int, str]]] = field(default_factory=lambda: {4: [], 6: []})

    def __len__(self) -> int:
        return len(self.ranges[4]) + len(self.ranges[6])

    def add(self, first: int, last: int, version: int, code: str) -> None:
        self.ranges[version].append((first, last, code.upper()))

    def freeze(self) -> CountryRanges:
        for version in (4, 6):
            self.ranges[version].sort()
            self.starts[version] = [first for first, _, _ in self.ranges[version]]
        return self

    def country(self, address: str | None) -> str | None:
        """The country of ``address`` (None: not an address, or in no range)."""
        if not address:
            return None
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return None
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        value, ranges = int(ip), self.ranges[ip.version]
        at = bisect.bisect_right(self.starts[ip.version], value) - 1
        best: tuple[int, str] | None = None
        for first, last, code in reversed(ranges[max(0, at - LOOK_BACK) : at + 1]):
            if first <= value <= last and (best is None or last - first < best[0]):
                best = (last - first, code)
        return best[1] if best else None


def parse(lines: list[str], source: str = "table") -> CountryRanges:
    """The table from its CSV lines; ``CountryFileError`` names the first bad line."""
    table = CountryRanges()
    for number, row in enumerate(csv.reader(lines), start=1):
        cells = [cell.strip() for cell in row]
        if not cells or not any(cells) or cells[0].startswith("#"):
            continue
        if number == 1 and tuple(c.lower() for c in cells) in HEADERS:
            continue
        try:
            if len(cells) == 2:
                network = ipaddress.ip_network(cells[0], strict=True)
                first, last = int(network.network_address), int(network.broadcast_address)
                version = network.version
            elif len(cells) == 3:
                low, high = ipaddress.ip_address(cells[0]), ipaddress.ip_address(cells[1])
                if low.version != high.version or int(high) < int(low):
                    raise ValueError("the last address must follow the first, same version")
                first, last, version = int(low), int(high), low.version
            else:
                raise ValueError("expected CIDR,CC or FIRST,LAST,CC")
            if not CODE.match(cells[-1]):
                raise ValueError(f"not a two-letter country code: {cells[-1]!r}")
        except ValueError as exc:
            raise CountryFileError(f"{source}, line {number}: {exc}") from None
        table.add(first, last, version, cells[-1])
    return table.freeze()


def load(path: Path) -> CountryRanges:
    with path.open(encoding="utf-8", newline="") as handle:
        return parse(handle.read().splitlines(), str(path))


class CountryTable:
    """The file named by the settings, read when first needed and again when it changes
    (its modification time), so that the operator can replace it without a restart. A file
    that cannot be read or parsed is logged and leaves the last good table in place."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.stamp: float | None = None
        self.ranges = CountryRanges().freeze()

    def current(self) -> CountryRanges:
        if self.path is None:
            return self.ranges
        try:
            stamp: float | None = self.path.stat().st_mtime
        except OSError as exc:
            stamp = None
            if self.stamp is not None or not len(self.ranges):
                log.warning("country table not read: %s", exc)
        if stamp is not None and stamp != self.stamp:
            self.stamp = stamp  # a bad file is reported once, until it changes
            try:
                self.ranges = load(self.path)
            except (OSError, CountryFileError) as exc:
                log.warning("country table not read, the last one kept: %s", exc)
        return self.ranges

    def country(self, address: str | None) -> str | None:
        return self.current().country(address)
