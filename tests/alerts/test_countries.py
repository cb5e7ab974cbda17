"""The "new country" sign-in rule (docs/adr/0046): the operator's address ranges → country
table (CIDR,CC or FIRST,LAST,CC lines, IPv4 and IPv6), and an alert when an account signs in
from a country it has not signed in from in the rule's days."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from hypervision.alerts.countries import CountryFileError, CountryTable, parse
from hypervision.config import Settings
from tests.alerts.helpers import alerts, evaluate, security_officer, set_rule
from tests.conftest import make_settings
from tests.factories import PASSWORD, officer, sign_in

TABLE = """network,country
# documentation ranges, as an operator's file would list real ones
192.0.2.0/24,FR
198.51.100.0/24,de
203.0.113.128,203.0.113.255,BE
2001:db8::/32,IT
2001:db8:ff00::/40,ES
"""


def test_the_table_reads_both_forms_and_both_versions() -> None:
    table = parse(TABLE.splitlines())
    assert len(table) == 5
    assert table.country("192.0.2.1") == "FR"
    assert table.country("198.51.100.255") == "DE"  # codes are stored upper-case
    assert table.country("203.0.113.128") == "BE" and table.country("203.0.113.127") is None
    assert table.country("2001:db8:1::5") == "IT"
    assert table.country("2001:db8:ff12::1") == "ES"  # nested: the narrowest range wins
    assert table.country("::ffff:192.0.2.9") == "FR"  # an IPv4-mapped address
    assert table.country("10.1.2.3") is None and table.country("2001:db9::1") is None
    assert table.country("not an address") is None and table.country(None) is None


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("192.0.2.1/24,FR", "host bits"),
        ("192.0.2.0/24,FRA", "country code"),
        ("192.0.2.9,192.0.2.1,FR", "must follow"),
        ("192.0.2.0,2001:db8::1,FR", "same version"),
        ("192.0.2.0/24", "expected"),
        ("nonsense,FR", "does not appear"),
    ],
)
def test_a_bad_line_is_named(line: str, why: str) -> None:
    with pytest.raises(CountryFileError) as caught:
        parse(["192.0.2.0/25,FR", line], "pays.csv")
    assert str(caught.value).startswith("pays.csv, line 2:")
    assert why in str(caught.value)


def test_the_file_is_read_again_when_it_changes_and_a_bad_one_keeps_the_last(
    tmp_path: Path,
) -> None:
    path = tmp_path / "pays.csv"
    path.write_text("192.0.2.0/24,FR\n", encoding="utf-8")
    table = CountryTable(path)
    assert table.country("192.0.2.3") == "FR"
    path.write_text("192.0.2.0/24,LU\n", encoding="utf-8")
    os.utime(path, (1, 1))  # a new modification time, whatever the clock's resolution
    assert table.country("192.0.2.3") == "LU"
    path.write_text("garbage\n", encoding="utf-8")
    os.utime(path, (2, 2))
    assert table.country("192.0.2.3") == "LU"  # the last good table stays
    assert CountryTable(None).country("192.0.2.3") is None  # no file: no country


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    table = tmp_path / "ip-pays.csv"
    table.write_text(TABLE, encoding="utf-8")
    return make_settings(tmp_path, database_url, ip_country_file=table)


async def _from(app: FastAPI, address: str, username: str) -> None:
    transport = ASGITransport(app=app, client=(address, 50000))
    async with AsyncClient(transport=transport, base_url="https://testserver") as elsewhere:
        await sign_in(elsewhere, username, PASSWORD)


async def test_sign_in_from_a_new_country(app: FastAPI, client: AsyncClient) -> None:
    secu = await security_officer(app, client)
    await set_rule(client, secu, "sign_in_new_country", days=90, severity="high")

    async def raised() -> list[dict[str, object]]:
        found = await alerts(client, secu, kind="sign_in_new_country")
        return [a for a in found if a["subject_name"] == "nomad"]

    await officer(app, client, "nomad", "PP")  # the test client's 203.0.113.7: in no range
    await _from(app, "192.0.2.10", "nomad")  # the first country known: learnt, not raised
    await _from(app, "192.0.2.77", "nomad")  # another address, the same country
    await evaluate(app)
    assert await raised() == []

    await _from(app, "198.51.100.9", "nomad")  # IPv4, a new country
    await evaluate(app)
    [alert] = await raised()
    assert alert["severity"] == "high" and alert["record_count"] == 1

    await _from(app, "192.0.2.10", "nomad")  # back home: seen within 90 days
    await _from(app, "10.0.0.8", "nomad")  # a private address: no country
    await evaluate(app)
    [same] = await raised()
    assert same["record_count"] == 1

    await _from(app, "2001:db8:42::1", "nomad")  # IPv6, a new country: joins the open alert
    await evaluate(app)
    [joined] = await raised()
    assert joined["id"] == alert["id"] and joined["record_count"] == 2
