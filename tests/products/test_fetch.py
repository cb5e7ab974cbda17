"""The guard of server-side fetching (SSRF, docs/adr/0029): hosts the operator allows, the
addresses they resolve to checked when connecting, IPv4-mapped and metadata addresses."""

from __future__ import annotations

import ipaddress

import pytest

from hypervision.products.fetch import FetchError, Guard, fetch
from tests.products.http_source import Page, Site, site

__all__ = ["site"]


def test_hosts_and_addresses() -> None:
    guard = Guard(["data.example.gouv.fr", "*.meteo.example", "192.0.2.10"], ["10.1.0.0/16"])
    assert guard.host_allowed("data.example.gouv.fr")
    assert guard.host_allowed("flux.meteo.example")
    assert not guard.host_allowed("meteo.example")  # *.domain names its sub-domains
    assert not guard.host_allowed("evilmeteo.example")
    assert not guard.host_allowed("example.gouv.fr")
    assert guard.host_allowed("192.0.2.10") and not guard.host_allowed("192.0.2.11")

    def allowed(text: str) -> bool:
        return guard.address_allowed(ipaddress.ip_address(text))

    assert allowed("8.8.8.8") and allowed("2001:4860:4860::8888")
    unspecified = "0.0.0.0"  # noqa: S104 - an address checked, nothing bound
    for refused in (
        "127.0.0.1", "::1", "10.0.0.1", "192.168.1.1", "169.254.169.254", "fd00:ec2::254",
        "fe80::1", unspecified, "::ffff:127.0.0.1", "::ffff:169.254.169.254", "224.0.0.1",
        "100.64.0.1",
    ):  # fmt: skip
        assert not allowed(refused), refused
    assert allowed("10.1.2.3") and allowed("::ffff:10.1.2.3")  # an allowed network
    assert allowed("192.0.2.10")  # a host allowed as an address: that address


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("gopher://data.example.gouv.fr/", "http:// et https://"),
        ("http://u:p@data.example.gouv.fr/", "mot de passe"),
        ("http://data.example.gouv.fr.evil.example/", "n'est pas autorisé"),
        ("http://[::1]/", "n'est pas autorisé"),
        ("http:///nohost", "n'est pas autorisé"),
    ],
)
def test_urls_refused(url: str, words: str) -> None:
    with pytest.raises(FetchError) as caught:
        Guard(["data.example.gouv.fr"], []).check_url(url)
    assert words in caught.value.fr


async def test_a_name_that_resolves_to_a_private_address_is_refused_when_connecting(
    site: Site,
) -> None:
    site.pages["/a.csv"] = Page(b"a;b\n1;2\n")
    url = site.url("/a.csv", host="localhost")
    with pytest.raises(FetchError) as caught:
        await fetch(url, guard=Guard(["localhost"], []), max_bytes=1000, seconds=2)
    assert "mène à une adresse non autorisée" in caught.value.fr
    assert site.hits == {}  # refused before any byte was sent
    got = await fetch(url, guard=Guard(["localhost"], ["127.0.0.0/8", "::1/128"]),
                      max_bytes=1000, seconds=2)  # fmt: skip
    assert got.status == 200 and got.file is not None
    assert got.file.read() == b"a;b\n1;2\n"
    got.file.close()
    with pytest.raises(FetchError) as caught:
        await fetch(url, guard=Guard(["localhost"], ["127.0.0.0/8", "::1/128"]),
                    max_bytes=5, seconds=2)  # fmt: skip
    assert "trop volumineuse" in caught.value.fr
