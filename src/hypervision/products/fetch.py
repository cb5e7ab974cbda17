"""Fetching a URL a person typed, on the server (docs/adr/0029): guarded against SSRF.

- only ``http`` and ``https``, no user name or password in the URL;
- the host must be one the operator allows (``product_source_hosts``: a name, ``*.domain``
  or an IP address), at the first request and at every redirect (at most ``MAX_REDIRECTS``);
- the addresses the host resolves to are checked when the connection is made, and the
  connection goes to the checked address (no second resolution an attacker's DNS could
  answer differently): an address that is not public (loopback, private, link-local such
  as the cloud metadata address, multicast, reserved) is refused unless its network is in
  ``product_source_networks`` or the host was allowed as that very IP address;
- no proxy from the environment (it would connect in our place, past the check);
- the body is streamed to a temporary file and cut at ``max_bytes``; the whole fetch has
  a deadline.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import socket
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

import httpcore
import httpx

from hypervision.config import Settings

MAX_REDIRECTS = 3
SPOOL = 8 * 1024 * 1024
USER_AGENT = "Hypervision product source"
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class FetchError(Exception):
    """Why a fetch failed, in French and English; ``http_status`` when a server answered."""

    def __init__(self, fr: str, en: str, http_status: int | None = None) -> None:
        super().__init__(en)
        self.fr, self.en, self.http_status = fr, en, http_status


@dataclass
class Fetched:
    """A response: ``file`` (None when the server said 304 Not Modified) and what identifies
    its content."""

    status: int
    file: BinaryIO | None
    size: int
    content_hash: str | None
    etag: str | None
    last_modified: str | None
    media_type: str | None


class Guard:
    """The operator's allowances: which hosts, which non-public networks."""

    def __init__(self, hosts: Iterable[str], networks: Iterable[str]) -> None:
        self.names: set[str] = set()
        self.suffixes: list[str] = []
        self.addresses: set[IPAddress] = set()
        for host in hosts:
            try:
                self.addresses.add(_plain(ipaddress.ip_address(host)))
            except ValueError:
                if host.startswith("*."):
                    self.suffixes.append(host[1:])
                else:
                    self.names.add(host)
        self.networks = [ipaddress.ip_network(n, strict=False) for n in networks]

    @classmethod
    def of(cls, settings: Settings) -> Guard:
        return cls(settings.product_source_hosts, settings.product_source_networks)

    @property
    def enabled(self) -> bool:
        return bool(self.names or self.suffixes or self.addresses)

    def check_url(self, url: str | httpx.URL) -> httpx.URL:
        """The URL parsed, or a FetchError saying why it may not be fetched."""
        try:
            parsed = httpx.URL(str(url))
        except (httpx.InvalidURL, ValueError):
            raise FetchError("Adresse (URL) invalide.", "Invalid URL.") from None
        if parsed.scheme not in ("http", "https"):
            raise FetchError(
                "Seules les adresses http:// et https:// sont acceptées.",
                "Only http:// and https:// URLs are accepted.",
            )
        if parsed.userinfo:
            raise FetchError(
                "Pas d'identifiant ni de mot de passe dans l'adresse.",
                "No user name or password in the URL.",
            )
        host = parsed.host.lower().rstrip(".")
        if not host or not self.host_allowed(host):
            raise FetchError(
                f"L'hôte « {host[:100]} » n'est pas autorisé pour les sources (réglage "
                "HYPERVISION_PRODUCT_SOURCE_HOSTS).",
                f"Host {host[:100]!r} is not allowed for sources "
                "(setting HYPERVISION_PRODUCT_SOURCE_HOSTS).",
            )
        return parsed

    def host_allowed(self, host: str) -> bool:
        try:
            return _plain(ipaddress.ip_address(host.strip("[]"))) in self.addresses
        except ValueError:
            pass
        return host in self.names or any(
            host.endswith(suffix) and len(host) > len(suffix) for suffix in self.suffixes
        )

    def address_allowed(self, address: IPAddress) -> bool:
        address = _plain(address)
        if address in self.addresses or any(address in n for n in self.networks):
            return True
        return address.is_global and not address.is_multicast


def _plain(address: IPAddress) -> IPAddress:
    """An IPv4-mapped IPv6 address as the IPv4 address it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class _CheckedBackend(httpcore.AsyncNetworkBackend):
    """Resolves the host itself, refuses when any of its addresses is not allowed, and
    connects to the checked address (TLS still verifies the host name)."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError:
            raise FetchError(
                f"Nom d'hôte introuvable : « {host[:100]} ».", f"Unknown host name {host[:100]!r}."
            ) from None
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
        refused = [a for a in addresses if not self.guard.address_allowed(a)]
        if refused or not addresses:
            raise FetchError(
                f"L'hôte « {host[:100]} » mène à une adresse non autorisée ({refused[0]}).",
                f"Host {host[:100]!r} resolves to an address that is not allowed ({refused[0]}).",
            )
        return await self.inner.connect_tcp(
            str(addresses[0]), port, timeout, local_address, socket_options
        )

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class _Transport(httpx.AsyncHTTPTransport):
    def __init__(self, guard: Guard) -> None:
        super().__init__(trust_env=False, retries=0)
        # The same pool httpx makes, over the checking backend (httpx takes no backend).
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=4,
            network_backend=_CheckedBackend(guard),
        )


def _too_big(max_bytes: int) -> FetchError:
    return FetchError(
        f"Réponse trop volumineuse (plus de {max_bytes:,} octets).".replace(",", " "),
        f"Response too large (over {max_bytes} bytes).",
    )


async def fetch(
    url: str,
    *,
    guard: Guard,
    max_bytes: int,
    seconds: float,
    etag: str | None = None,
    last_modified: str | None = None,
) -> Fetched:
    """GET ``url`` under the guard; conditional when ``etag`` or ``last_modified`` is known.
    The caller closes ``Fetched.file``. Raises FetchError."""
    headers = {"User-Agent": USER_AGENT, "Accept": "text/csv, application/json, */*;q=0.5"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    target = guard.check_url(url)
    try:
        async with (
            asyncio.timeout(seconds),
            httpx.AsyncClient(
                transport=_Transport(guard),
                follow_redirects=False,
                timeout=httpx.Timeout(seconds),
                trust_env=False,
            ) as client,
        ):
            for _hop in range(MAX_REDIRECTS + 1):
                async with client.stream("GET", target, headers=headers) as response:
                    if response.has_redirect_location:
                        location = response.headers["location"]
                        target = guard.check_url(target.join(location))
                        continue
                    return await _body(response, max_bytes)
            raise FetchError(
                f"Trop de redirections (plus de {MAX_REDIRECTS}).",
                f"Too many redirects (over {MAX_REDIRECTS}).",
            )
    except TimeoutError:
        raise FetchError(
            f"Pas de réponse complète en {seconds:g} s.",
            f"No complete answer within {seconds:g} s.",
        ) from None
    except httpx.HTTPError as error:
        cause = error.__context__ if isinstance(error.__context__, FetchError) else None
        if cause is not None:
            raise cause from None
        raise FetchError(
            f"Échec de la connexion ou de l'échange ({type(error).__name__}).",
            f"Connection or exchange failed ({type(error).__name__}).",
        ) from None


async def _body(response: httpx.Response, max_bytes: int) -> Fetched:
    etag = response.headers.get("etag")
    modified = response.headers.get("last-modified")
    media_type = response.headers.get("content-type", "").split(";")[0].strip() or None
    if response.status_code == 304:
        return Fetched(304, None, 0, None, etag, modified, media_type)
    if response.status_code != 200:
        raise FetchError(
            f"Le serveur a répondu {response.status_code} {response.reason_phrase}.",
            f"The server answered {response.status_code} {response.reason_phrase}.",
            http_status=response.status_code,
        )
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_big(max_bytes)
    file = cast(BinaryIO, tempfile.SpooledTemporaryFile(max_size=SPOOL))  # noqa: SIM115 - the caller closes it
    digest = hashlib.sha256()
    size = 0
    try:
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise _too_big(max_bytes)
            digest.update(chunk)
            file.write(chunk)
    except BaseException:
        file.close()
        raise
    file.seek(0)
    return Fetched(200, file, size, digest.hexdigest(), etag, modified, media_type)
