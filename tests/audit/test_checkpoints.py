"""Signed Merkle checkpoints: every kind of tampering with the trail or the witness is named.

The tampering goes through the owner's connection (``owner_database_url``), as an attacker
with full rights on the database would, recomputing the hash chain where that helps them.
``TAMPER_CASES`` lists the attacks; each must be detected with the exact first bad record.
"""

from __future__ import annotations

import base64
import dataclasses
import itertools
import json
import os
import stat
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import delete, select, update

from hypervision.audit import service as audit
from hypervision.audit.checkpoints import (
    Checkpoint,
    CheckpointError,
    Witness,
    generate_key,
    key_id,
    load_private_key,
    load_public_key,
    write_checkpoints,
)
from hypervision.audit.merkle import merkle_root
from hypervision.audit.models import AuditHead
from tests.audit.tamper import RECORDS, owner, recompute_chain, renumber
from tests.factories import ENTRY, officer, sequenced, tx


@dataclass
class Trail:
    app: FastAPI
    owner_url: str
    witness_dir: Path
    key: Ed25519PrivateKey
    checkpoints: list[Checkpoint]
    head: int

    @property
    def middle(self) -> Checkpoint:
        return self.checkpoints[1]


async def _activity(client: AsyncClient, headers: dict[str, str], n: int, tag: str) -> None:
    for i in range(n):
        response = await client.post(
            "/api/v1/entries", json={**ENTRY, "title": f"{tag} {i}"}, headers=headers
        )
        assert response.status_code == 201, response.text
        assert (await client.get(response.headers["location"], headers=headers)).status_code == 200


async def _checkpoint(app: FastAPI, witness_dir: Path, key: Ed25519PrivateKey) -> list[Checkpoint]:
    async with tx(app) as session:
        return await write_checkpoints(session=session, witness_dir=witness_dir, private_key=key)


async def _verify(
    trail: Trail, public_key_of: Ed25519PrivateKey | None = None
) -> audit.VerifyResult:
    public = (public_key_of or trail.key).public_key()
    async with tx(trail.app) as session:
        return await audit.verify(
            session=session, witness=Witness(trail.witness_dir, public), batch=4
        )


async def _head(app: FastAPI) -> int:
    await sequenced(app)
    async with tx(app) as session:
        head = await session.get(AuditHead, 1)
        assert head is not None
        return head.seq


@pytest.fixture
def signing_key(tmp_path: Path) -> Ed25519PrivateKey:
    generate_key(tmp_path / "keys" / "audit.pem", tmp_path / "keys" / "audit.pub")
    return load_private_key(tmp_path / "keys" / "audit.pem")


@pytest.fixture
async def trail(
    app: FastAPI,
    client: AsyncClient,
    owner_database_url: str,
    tmp_path: Path,
    signing_key: Ed25519PrivateKey,
) -> Trail:
    """Real activity, three checkpoints of at least three records each, then two entries
    (created and read) that no checkpoint covers yet."""
    headers = await officer(app, client, "alice", "PP")
    witness_dir = tmp_path / "witness"
    made: list[Checkpoint] = []
    for round_ in range(3):
        await _activity(client, headers, 2, f"round {round_}")
        made += await _checkpoint(app, witness_dir, signing_key)
    await _activity(client, headers, 2, "after")
    assert len(made) == 3 and all(c.count >= 3 for c in made), made
    return Trail(app, owner_database_url, witness_dir, signing_key, made, await _head(app))


# --- the attacks ---------------------------------------------------------------------------

Expected = tuple[int, str, str | None]  # first bad seq, words of the message, checkpoint file
TAMPER_CASES: dict[str, Callable[[Trail], Awaitable[Expected]]] = {}


def tamper_case(
    fn: Callable[[Trail], Awaitable[Expected]],
) -> Callable[[Trail], Awaitable[Expected]]:
    TAMPER_CASES[fn.__name__] = fn
    return fn


@tamper_case
async def altered_and_chain_recomputed(trail: Trail) -> Expected:
    seq = trail.middle.first_seq + 1
    async with owner(trail.owner_url) as conn:
        await conn.execute(update(RECORDS).where(RECORDS.c.seq == seq).values(actor_name="x"))
        await recompute_chain(conn)
    return seq, "differs from signed checkpoint", trail.middle.file_name


@tamper_case
async def altered(trail: Trail) -> Expected:
    seq = trail.middle.first_seq + 1
    async with owner(trail.owner_url) as conn:
        await conn.execute(update(RECORDS).where(RECORDS.c.seq == seq).values(decision="denied"))
    return seq, f"record {seq} was altered", None


@tamper_case
async def one_record_deleted(trail: Trail) -> Expected:
    seq = trail.middle.first_seq + 1
    async with owner(trail.owner_url) as conn:
        await conn.execute(delete(RECORDS).where(RECORDS.c.seq == seq))
    return seq, f"record {seq} is missing", None


@tamper_case
async def deleted_renumbered_and_chain_recomputed(trail: Trail) -> Expected:
    seq = trail.middle.first_seq + 1
    async with owner(trail.owner_url) as conn:
        await conn.execute(delete(RECORDS).where(RECORDS.c.seq == seq))
        for later in range(seq + 1, trail.head + 1):
            await renumber(conn, later, later - 1)
        await recompute_chain(conn)
    return seq, "differs from signed checkpoint", trail.middle.file_name


@tamper_case
async def two_records_swapped_and_chain_recomputed(trail: Trail) -> Expected:
    seq = trail.middle.first_seq + 1
    async with owner(trail.owner_url) as conn:
        await renumber(conn, seq, -seq)
        await renumber(conn, seq + 1, seq)
        await renumber(conn, -seq, seq + 1)
        await recompute_chain(conn)
    return seq, "differs from signed checkpoint", trail.middle.file_name


@tamper_case
async def tail_truncated_after_checkpoint(trail: Trail) -> Expected:
    last = trail.checkpoints[-1]
    keep = last.first_seq  # cut inside the last checkpoint, and everything after it
    async with owner(trail.owner_url) as conn:
        await conn.execute(delete(RECORDS).where(RECORDS.c.seq > keep))
        await recompute_chain(conn)  # the head now agrees with the shortened trail
    return keep + 1, "tail truncated", last.file_name


@tamper_case
async def checkpoint_forged(trail: Trail) -> Expected:
    """Alter a record, recompute the chain, and re-sign its checkpoint with another key
    (claiming the real key's id): the signature does not hold."""
    cp = trail.middle
    async with owner(trail.owner_url) as conn:
        await conn.execute(
            update(RECORDS).where(RECORDS.c.seq == cp.first_seq).values(actor_name="x")
        )
        await recompute_chain(conn)
        hashes = (
            await conn.scalars(
                select(RECORDS.c.row_hash)
                .where(RECORDS.c.seq.between(cp.first_seq, cp.last_seq))
                .order_by(RECORDS.c.seq)
            )
        ).all()
    raw = [bytes.fromhex(h) for h in hashes]
    forged = dataclasses.replace(
        cp,
        merkle_root=merkle_root(raw).hex(),
        last_row_hash=hashes[-1],
        fingerprints=base64.b64encode(b"".join(r[:8] for r in raw)).decode(),
    )
    attacker = Ed25519PrivateKey.generate()
    path = trail.witness_dir / cp.file_name
    path.unlink()
    Witness(trail.witness_dir, attacker.public_key()).append(forged, attacker.sign(forged.body()))
    return cp.first_seq, "invalid signature", cp.file_name


@tamper_case
async def witness_file_edited(trail: Trail) -> Expected:
    cp = trail.middle
    path = trail.witness_dir / cp.file_name
    data = json.loads(path.read_text())
    data["checkpoint"]["count"] += 1
    data["checkpoint"]["last_seq"] += 1
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    path.write_text(json.dumps(data))
    return cp.first_seq, "invalid signature", cp.file_name


@tamper_case
async def witness_file_deleted_in_the_middle(trail: Trail) -> Expected:
    cp = trail.middle
    (trail.witness_dir / cp.file_name).unlink()
    return cp.first_seq, "is missing", trail.checkpoints[2].file_name


@tamper_case
async def wrong_public_key(trail: Trail) -> Expected:
    trail.key = Ed25519PrivateKey.generate()  # the verifier is given another key
    return 1, "not with the configured public key", trail.checkpoints[0].file_name


def test_tamper_cases_are_counted() -> None:
    assert len(TAMPER_CASES) == 10, sorted(TAMPER_CASES)


@pytest.mark.parametrize("case", sorted(TAMPER_CASES))
async def test_tampering_is_named(trail: Trail, case: str) -> None:
    seq, words, checkpoint = await TAMPER_CASES[case](trail)
    result = await _verify(trail)
    assert not result.ok, case
    assert result.seq == seq, result
    assert words in (result.problem or ""), result.problem
    if checkpoint is not None:
        assert result.checkpoint == checkpoint, result


# --- the clean trail and the writer --------------------------------------------------------


async def test_clean_trail_with_several_checkpoints_verifies(trail: Trail) -> None:
    result = await _verify(trail)
    assert result.ok, result.problem
    assert result.checked == trail.head > trail.checkpoints[-1].last_seq
    assert (result.checkpoints, result.checkpointed) == (3, trail.checkpoints[-1].last_seq)
    chain = [(c.first_seq, c.last_seq) for c in trail.checkpoints]
    assert chain[0][0] == 1
    assert all(b[0] == a[1] + 1 for a, b in itertools.pairwise(chain))
    assert trail.checkpoints[1].previous == trail.checkpoints[0].digest()


async def test_records_after_the_last_checkpoint_are_chain_checked(trail: Trail) -> None:
    seq = trail.checkpoints[-1].last_seq + 1
    async with owner(trail.owner_url) as conn:
        await conn.execute(update(RECORDS).where(RECORDS.c.seq == seq).values(action="x"))
    result = await _verify(trail)
    assert not result.ok and result.seq == seq and "was altered" in (result.problem or "")


async def test_checkpoint_writes_nothing_without_new_records(trail: Trail) -> None:
    names = Witness(trail.witness_dir, trail.key.public_key()).names()
    assert len(await _checkpoint(trail.app, trail.witness_dir, trail.key)) == 1  # the tail
    assert await _checkpoint(trail.app, trail.witness_dir, trail.key) == []
    after = Witness(trail.witness_dir, trail.key.public_key()).names()
    assert after[: len(names)] == names and len(after) == len(names) + 1
    assert (await _verify(trail)).checkpointed == trail.head


async def test_a_broken_chain_is_never_signed(trail: Trail) -> None:
    seq = trail.head  # not covered yet
    async with owner(trail.owner_url) as conn:
        await conn.execute(update(RECORDS).where(RECORDS.c.seq == seq).values(action="x"))
    with pytest.raises(CheckpointError, match=f"record {seq} was altered"):
        await _checkpoint(trail.app, trail.witness_dir, trail.key)


async def test_segments_are_capped(
    app: FastAPI, client: AsyncClient, tmp_path: Path, signing_key: Ed25519PrivateKey
) -> None:
    headers = await officer(app, client, "bob", "PP")
    await _activity(client, headers, 3, "capped")
    head = await _head(app)
    async with tx(app) as session:
        made = await write_checkpoints(
            session=session, witness_dir=tmp_path / "w", private_key=signing_key, max_segment=2
        )
    assert [c.count for c in made] == [2] * (head // 2) + ([1] if head % 2 else [])
    async with tx(app) as session:
        witness = Witness(tmp_path / "w", signing_key.public_key())
        result = await audit.verify(session=session, witness=witness, batch=3)
    assert result.ok and result.checkpoints == len(made), result.problem


def test_keygen_makes_a_private_file_and_never_overwrites(tmp_path: Path) -> None:
    private, public = tmp_path / "k" / "a.pem", tmp_path / "k" / "a.pub"
    kid = generate_key(private, public)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert key_id(load_public_key(public)) == kid == key_id(load_private_key(private).public_key())
    before = private.read_bytes()
    with pytest.raises(CheckpointError, match="refusing to overwrite"):
        generate_key(private, public)
    assert private.read_bytes() == before
    os.chmod(private, 0o644)
    with pytest.raises(CheckpointError, match="readable by others"):
        load_private_key(private)


async def test_command_line_keygen_checkpoint_verify(
    app: FastAPI, client: AsyncClient, database_url: str, owner_database_url: str, tmp_path: Path
) -> None:
    from tests.conftest import once_across_engines
    from tests.test_cli import _cli

    once_across_engines(database_url)

    def run(*args: str, code: int = 0) -> tuple[str, str]:
        result = _cli(database_url, tmp_path, "audit", *args)
        assert result.returncode == code, result.stderr
        return result.stdout, result.stderr

    headers = await officer(app, client, "carol", "PP")
    assert "chain only" in run("verify")[1]
    assert "key id" in run("keygen")[0]
    key = tmp_path / "keys" / "audit-ed25519.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and key.with_suffix(".pub").is_file()
    await _activity(client, headers, 2, "cli")
    assert "records 1.." in run("checkpoint")[0]
    await _activity(client, headers, 1, "cli later")
    out = run("verify")[0]
    assert "audit trail intact" in out and "1 signed checkpoints" in out
    async with owner(owner_database_url) as conn:
        await conn.execute(update(RECORDS).where(RECORDS.c.seq == 2).values(actor_name="x"))
        await recompute_chain(conn)
    err = run("verify", code=1)[1]
    assert "AUDIT TRAIL BROKEN: record 2 differs from signed checkpoint" in err
