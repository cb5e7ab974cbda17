"""Merkle tree hashes in the style of RFC 9162 (Certificate Transparency v2), section 2.1.1.

``MTH({}) = SHA-256()``, ``MTH({d}) = SHA-256(0x00 || d)`` and, for n > 1 leaves with k the
largest power of two below n, ``MTH(D[n]) = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))``.

``MerkleBuilder`` computes that root over a stream of leaves in O(log n) memory: it keeps the
roots of the perfect subtrees seen so far (a "compact range"), merging equal sizes as leaves
arrive; at the end they are folded right to left, which is exactly the RFC's split.
"""

from __future__ import annotations

import hashlib

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


class MerkleBuilder:
    """Append leaves one by one; ``root()`` at any time is the RFC 9162 root of those leaves."""

    __slots__ = ("_stack", "count")

    def __init__(self) -> None:
        self._stack: list[
            tuple[int, bytes]
        ] = []  # (leaves in the subtree, its hash), sizes decreasing
        self.count = 0

    def add(self, data: bytes) -> None:
        size, digest = 1, leaf_hash(data)
        stack = self._stack
        while stack and stack[-1][0] == size:
            _, left = stack.pop()
            size, digest = size * 2, node_hash(left, digest)
        stack.append((size, digest))
        self.count += 1

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        digest = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            digest = node_hash(left, digest)
        return digest


def merkle_root(leaves: list[bytes]) -> bytes:
    builder = MerkleBuilder()
    for data in leaves:
        builder.add(data)
    return builder.root()
