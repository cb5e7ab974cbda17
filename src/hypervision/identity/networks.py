"""Filtered upstream (docs/adr/0038): the networks an organisation's members may sign in and
work from, and the client certificate its ingress must have verified for them to sign in.

The client's address is the one the rest of the application uses (the socket's peer, or the
``X-Forwarded-For`` of a proxy listed in ``forwarded_allow_ips``: ``core.proxies``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from functools import lru_cache

from hypervision.core.errors import AppError, Forbidden, Invalid
from hypervision.identity.models import Organisation

MAX_NETWORKS = 100
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class NetworkRefused(Forbidden):
    code = "network_refused"
    fr = "Connexion refusée depuis cette adresse réseau."
    en = "Connection refused from this network address."


class CertificateRequired(Forbidden):
    code = "client_certificate_required"
    fr = "Connexion refusée : votre organisation exige un certificat client vérifié."
    en = "Connection refused: your organisation requires a verified client certificate."


def normalise(values: Sequence[str], field: str = "allowed_networks") -> list[str]:
    """Checked, normalised, de-duplicated networks (``10.0.0.0/8``, ``2001:db8::/32``; a bare
    address is its own /32 or /128). A malformed one is refused naming the field."""
    if len(values) > MAX_NETWORKS:
        raise Invalid(
            f"Au plus {MAX_NETWORKS} réseaux autorisés.",
            f"At most {MAX_NETWORKS} allowed networks.",
            extra={"fields": [{"field": field, "message": f"at most {MAX_NETWORKS}"}]},
        )
    found: set[Network] = set()
    wrong: list[str] = []
    for value in values:
        text = value.strip()
        try:
            found.add(ipaddress.ip_network(text, strict=True))
        except ValueError:
            wrong.append(text[:60])
    if wrong:
        shown = ", ".join(wrong)
        raise Invalid(
            f"Réseau invalide (notation CIDR attendue, ex. 10.0.0.0/8) : {shown}.",
            f"Invalid network (CIDR notation expected, e.g. 10.0.0.0/8): {shown}.",
            extra={"fields": [{"field": field, "message": f"not a network: {shown}"}]},
        )
    return [str(n) for n in sorted(found, key=lambda n: (n.version, n))]


@lru_cache(maxsize=1024)
def _parsed(networks: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(n, strict=False) for n in networks)


def address_allowed(networks: Sequence[str], address: str | None) -> bool:
    """Whether ``address`` lies in one of ``networks`` (none: anywhere). An unknown or
    unreadable address is outside every network."""
    if not networks:
        return True
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1
    return any(ip in network for network in _parsed(tuple(networks)))


def request_refusal(org: Organisation | None, address: str | None) -> AppError | None:
    """What an authenticated request of a member of ``org`` from ``address`` is refused for."""
    if org is not None and not address_allowed(org.allowed_networks or (), address):
        return NetworkRefused()
    return None


def sign_in_refusal(
    org: Organisation | None, address: str | None, certificate: bool
) -> AppError | None:
    """What a sign-in of a member of ``org`` is refused for: an address outside its networks,
    or no client certificate verified by the ingress when the organisation asks for one."""
    refused = request_refusal(org, address)
    if refused is None and org is not None and org.client_cert_required and not certificate:
        return CertificateRequired()
    return refused
