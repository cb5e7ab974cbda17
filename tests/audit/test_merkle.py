"""The streaming Merkle tree against RFC 9162's definition and published test vectors."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from hypervision.audit.merkle import EMPTY_ROOT, MerkleBuilder, merkle_root


def reference_root(leaves: list[bytes]) -> bytes:
    """RFC 9162 section 2.1.1, written as the recursion it is."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(
        b"\x01" + reference_root(leaves[:k]) + reference_root(leaves[k:])
    ).digest()


# The leaves and roots of the Certificate Transparency test vectors (RFC 6962 / 9162 trees).
CT_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def test_known_roots() -> None:
    assert merkle_root([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()
    for size, expected in enumerate(CT_ROOTS, start=1):
        assert merkle_root(CT_LEAVES[:size]).hex() == expected, size
        assert reference_root(CT_LEAVES[:size]).hex() == expected, size


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(min_size=32, max_size=32), max_size=300))
def test_streaming_root_is_the_rfc_root(leaves: list[bytes]) -> None:
    assert merkle_root(leaves) == reference_root(leaves)


@given(st.lists(st.binary(max_size=8), min_size=1, max_size=70))
def test_root_at_every_prefix(leaves: list[bytes]) -> None:
    builder = MerkleBuilder()
    for size, leaf in enumerate(leaves, start=1):
        builder.add(leaf)
        assert builder.count == size
        assert builder.root() == reference_root(leaves[:size])


def test_a_leaf_is_not_a_node() -> None:
    """Domain separation: two leaves' hashes given as one leaf do not give their root."""
    a, b = hashlib.sha256(b"\x00a").digest(), hashlib.sha256(b"\x00b").digest()
    assert merkle_root([b"a", b"b"]) != merkle_root([a + b])
