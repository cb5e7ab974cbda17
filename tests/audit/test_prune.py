"""Retention (SECURITY.md 23): ``audit prune`` removes whole verified segments only, and the
pruned trail still verifies, while any other removal is still detected (docs/adr/0010).

The trail: three checkpointed segments, the first two back-dated (their ``at`` rewritten and
the chain recomputed through the owner's connection, before checkpointing) beyond the default
retention of three years, then records no checkpoint covers yet.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import delete, func, select, update

from hypervision.audit import service as audit
from hypervision.audit.chain import chain_hash
from hypervision.audit.checkpoints import (
    Checkpoint,
    Witness,
    generate_key,
    load_private_key,
    marker_name,
)
from hypervision.audit.models import AuditHead, AuditResource
from hypervision.audit.prune import PruneError, PruneReport, cutoff, prune, run_prune
from hypervision.config import Settings
from hypervision.db import create_engine, transaction
from hypervision.identity.principal import system_principal
from hypervision.policy.rls import system_sessions
from tests.audit.tamper import RECORDS, owner, recompute_chain
from tests.audit.test_checkpoints import _activity, _checkpoint, _head
from tests.conftest import engine_name
from tests.factories import officer, sequenced, tx


class Trail:
    def __init__(
        self, app: FastAPI, owner_url: str, witness_dir: Path, key: Ed25519PrivateKey
    ) -> None:
        self.app, self.owner_url, self.witness_dir, self.key = app, owner_url, witness_dir, key
        self.checkpoints: list[Checkpoint] = []
        self.head = 0

    @property
    def settings(self) -> Settings:
        current: Settings = self.app.state.settings
        return current.model_copy(
            update={"database_owner_url": self.owner_url, "audit_witness_dir": self.witness_dir}
        )


async def _backdate(owner_url: str, after: int, days: int) -> None:
    """Move the records after ``after`` ``days`` into the past and recompute the chain."""
    async with owner(owner_url) as conn:
        rows = (await conn.execute(select(RECORDS.c.seq, RECORDS.c.at))).all()
        for seq, at in rows:
            if seq > after:
                await conn.execute(
                    update(RECORDS).where(RECORDS.c.seq == seq).values(at=at - timedelta(days=days))
                )
        await recompute_chain(conn)


@pytest.fixture
async def trail(
    app: FastAPI, client: AsyncClient, owner_database_url: str, tmp_path: Path
) -> Trail:
    generate_key(tmp_path / "keys" / "audit.pem", tmp_path / "keys" / "audit.pub")
    key = load_private_key(tmp_path / "keys" / "audit.pem")
    result = Trail(app, owner_database_url, tmp_path / "witness", key)
    headers = await officer(app, client, "alice", "PP")
    for round_, days in enumerate((1200, 1100, 0)):
        await _activity(client, headers, 2, f"round {round_}")
        await sequenced(app)
        if days:
            after = result.checkpoints[-1].last_seq if result.checkpoints else 0
            await _backdate(owner_database_url, after, days)
        result.checkpoints += await _checkpoint(app, result.witness_dir, key)
    await _activity(client, headers, 2, "after")
    assert len(result.checkpoints) == 3
    result.head = await _head(app)
    return result


async def _prune(
    trail: Trail, before: datetime | None = None, dry_run: bool = False
) -> PruneReport:
    return await run_prune(
        trail.settings,
        public_key=trail.key.public_key(),
        private_key=None if dry_run else trail.key,
        before=before or cutoff(trail.settings, None),
        actor=system_principal("test"),
        dry_run=dry_run,
    )


async def _verify(trail: Trail) -> audit.VerifyResult:
    async with tx(trail.app) as session:
        witness = Witness(trail.witness_dir, trail.key.public_key())
        return await audit.verify(session=session, witness=witness, batch=4)


async def _seqs(trail: Trail) -> list[int]:
    await sequenced(trail.app)
    async with owner(trail.owner_url) as conn:
        return list((await conn.scalars(select(RECORDS.c.seq).order_by(RECORDS.c.seq))).all())


def _markers(trail: Trail) -> list[str]:
    return Witness(trail.witness_dir, trail.key.public_key()).marker_names()


TOMORROW = datetime.now(UTC) + timedelta(days=1)


async def test_prune_removes_exactly_the_whole_old_segments(trail: Trail) -> None:
    first, second, third = trail.checkpoints
    report = await _prune(trail)  # default retention: 1095 days
    assert report.segments == [first, second]
    assert report.removed == second.last_seq and report.marker == marker_name(second.last_seq)
    # what is left: the third segment, the records no checkpoint covers, and the prune record
    assert await _seqs(trail) == list(range(third.first_seq, trail.head + 2))
    result = await _verify(trail)
    assert result.ok, result.problem
    assert result.checked == trail.head + 1 - second.last_seq
    assert (result.checkpoints, result.checkpointed) == (3, third.last_seq)
    assert (await _prune(trail)).segments == []  # nothing more is old enough
    async with tx(trail.app) as session:  # the prune is itself recorded
        row = (await session.execute(select(RECORDS).where(RECORDS.c.seq == trail.head + 1))).one()
    assert row.action == "audit.prune"
    assert row.detail["first_seq"] == 1 and row.detail["last_seq"] == second.last_seq
    async with owner(trail.owner_url) as conn:  # the index by record went with its records
        indexed = set((await conn.scalars(select(AuditResource.seq))).all())
    assert indexed and min(indexed) >= third.first_seq


async def test_records_no_checkpoint_covers_are_never_pruned(trail: Trail) -> None:
    report = await _prune(trail, before=TOMORROW)
    assert report.segments == trail.checkpoints  # all three, not the tail
    assert await _seqs(trail) == list(range(trail.checkpoints[-1].last_seq + 1, trail.head + 2))
    assert (await _prune(trail, before=TOMORROW)).segments == []
    assert (await _verify(trail)).ok
    # once checkpointed, the rest can go too: everything pruned still verifies
    made = await _checkpoint(trail.app, trail.witness_dir, trail.key)
    assert (await _prune(trail, before=TOMORROW + timedelta(days=1))).segments == made
    assert len(_markers(trail)) == 2
    assert await _seqs(trail) == [trail.head + 2]  # only the second prune's own record
    result = await _verify(trail)
    assert result.ok and result.checked == 1 and result.checkpoints == 4, result.problem


async def test_dry_run_removes_nothing(trail: Trail) -> None:
    report = await _prune(trail, dry_run=True)
    assert report.segments == trail.checkpoints[:2] and report.dry_run
    assert await _seqs(trail) == list(range(1, trail.head + 1))
    assert _markers(trail) == []
    assert (await _verify(trail)).ok


Attack = Callable[["Trail", int], Awaitable[None]]


async def _alter_and_recompute(trail: Trail, seq: int) -> None:
    async with owner(trail.owner_url) as conn:
        await conn.execute(update(RECORDS).where(RECORDS.c.seq == seq).values(actor_name="x"))
        await recompute_chain(conn)


async def _alter(trail: Trail, seq: int) -> None:
    async with owner(trail.owner_url) as conn:
        await conn.execute(update(RECORDS).where(RECORDS.c.seq == seq).values(action="x"))


async def _remove(trail: Trail, seq: int) -> None:
    async with owner(trail.owner_url) as conn:
        await conn.execute(delete(RECORDS).where(RECORDS.c.seq == seq))


@pytest.mark.parametrize(
    ("attack", "words"),
    [
        (_alter_and_recompute, "differs from signed checkpoint"),
        (_alter, "was altered"),
        (_remove, "is missing"),
    ],
)
async def test_a_tampered_segment_is_not_pruned(trail: Trail, attack: Attack, words: str) -> None:
    """The second old segment is tampered with: the first one (intact) is not pruned either."""
    seq = trail.checkpoints[1].first_seq + 1
    await attack(trail, seq)
    before = await _seqs(trail)
    with pytest.raises(PruneError, match=words) as caught:
        await _prune(trail, before=TOMORROW)
    assert "nothing pruned" in str(caught.value)
    assert await _seqs(trail) == before and _markers(trail) == []
    assert not (await _verify(trail)).ok


async def test_a_partly_removed_first_segment_is_not_pruned(trail: Trail) -> None:
    await _remove(trail, 1)
    with pytest.raises(PruneError, match=r"records 1\.\.1 are missing"):
        await _prune(trail)
    assert _markers(trail) == []


async def _prune_then_fail(trail: Trail) -> None:
    settings = trail.settings
    engine = create_engine(settings, trail.owner_url)
    try:
        async with transaction(system_sessions(engine, settings)) as session:
            await prune(
                session=session,
                witness_dir=trail.witness_dir,
                public_key=trail.key.public_key(),
                private_key=trail.key,
                before=cutoff(settings, None),
                actor=system_principal("test"),
            )
            raise RuntimeError("the deletion fails")
    finally:
        await engine.dispose()


async def test_a_marker_left_by_a_failed_deletion_is_harmless(trail: Trail) -> None:
    """The marker is written before the deletion: if the transaction then fails, the records
    are still there, verify accepts it, and the next run removes them."""
    with pytest.raises(RuntimeError, match="the deletion fails"):
        await _prune_then_fail(trail)
    assert _markers(trail) == [marker_name(trail.checkpoints[1].last_seq)]
    assert await _seqs(trail) == list(range(1, trail.head + 1))
    assert (await _verify(trail)).ok
    assert (await _prune(trail)).segments == trail.checkpoints[:2]
    assert len(_markers(trail)) == 1 and (await _verify(trail)).ok


# --- after a prune, what was not pruned is still guarded ------------------------------------


async def _pruned_first_segment(trail: Trail) -> None:
    """Prune the first segment only (the second is 1100 days old)."""
    before = datetime.now(UTC) - timedelta(days=1150)
    assert (await _prune(trail, before=before)).segments == trail.checkpoints[:1]
    assert (await _verify(trail)).ok


async def test_deleting_the_first_remaining_segment_is_detected(trail: Trail) -> None:
    await _pruned_first_segment(trail)
    second = trail.checkpoints[1]
    async with owner(trail.owner_url) as conn:
        await conn.execute(delete(RECORDS).where(RECORDS.c.seq <= second.last_seq))
    result = await _verify(trail)
    assert not result.ok and result.seq == second.first_seq
    assert f"record {second.first_seq} is missing" in (result.problem or "")


async def test_deleting_part_of_the_first_remaining_segment_is_detected(trail: Trail) -> None:
    await _pruned_first_segment(trail)
    second = trail.checkpoints[1]
    async with owner(trail.owner_url) as conn:
        await conn.execute(delete(RECORDS).where(RECORDS.c.seq <= second.first_seq + 1))
    result = await _verify(trail)
    assert not result.ok and result.seq == second.first_seq, result
    assert f"record {second.first_seq} is missing" in (result.problem or "")


async def test_a_prune_marker_covers_whole_segments_only(trail: Trail) -> None:
    """A marker for records 1..N (left by a failed deletion) does not excuse removing part of
    a segment within 1..N."""
    with pytest.raises(RuntimeError, match="the deletion fails"):
        await _prune_then_fail(trail)
    second = trail.checkpoints[1]
    async with owner(trail.owner_url) as conn:
        await conn.execute(delete(RECORDS).where(RECORDS.c.seq <= second.first_seq))
    result = await _verify(trail)
    assert not result.ok and result.seq == second.first_seq, result
    assert "only whole segments are pruned" in (result.problem or "")


@pytest.mark.parametrize(("attack", "words"), [(_alter, "was altered"), (_remove, "is missing")])
async def test_tampering_with_what_remains_is_detected(
    trail: Trail, attack: Attack, words: str
) -> None:
    await _pruned_first_segment(trail)
    seq = trail.checkpoints[2].first_seq + 1
    await attack(trail, seq)
    result = await _verify(trail)
    assert not result.ok and result.seq == seq and words in (result.problem or ""), result


async def test_recomputing_the_chain_of_what_remains_is_detected(trail: Trail) -> None:
    await _pruned_first_segment(trail)
    seq = trail.checkpoints[1].first_seq + 1
    async with owner(trail.owner_url) as conn:
        await conn.execute(update(RECORDS).where(RECORDS.c.seq == seq).values(actor_name="x"))
        rows = (await conn.execute(select(RECORDS).order_by(RECORDS.c.seq))).all()
        prev = rows[0].prev_hash  # keep the link to the pruned checkpoint, recompute the rest
        for row in rows:
            new = chain_hash(prev, row)
            await conn.execute(
                update(RECORDS).where(RECORDS.c.seq == row.seq).values(prev_hash=prev, row_hash=new)
            )
            prev = new
        await conn.execute(update(AuditHead).where(AuditHead.id == 1).values(last_hash=prev))
    result = await _verify(trail)
    assert not result.ok and result.seq == seq
    assert "differs from signed checkpoint" in (result.problem or "")


async def test_the_prune_marker_is_needed_and_cannot_be_edited(trail: Trail) -> None:
    await _pruned_first_segment(trail)
    path = trail.witness_dir / marker_name(trail.checkpoints[0].last_seq)
    data = json.loads(path.read_text())
    data["prune"]["through_seq"] = trail.checkpoints[1].last_seq  # claim more was pruned
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    path.write_text(json.dumps(data))
    result = await _verify(trail)
    assert not result.ok and "invalid signature" in (result.problem or ""), result
    path.unlink()  # without the marker, the missing prefix is a deletion
    result = await _verify(trail)
    assert not result.ok and result.seq == 1 and "record 1 is missing" in (result.problem or "")


async def test_pruned_checkpoints_must_stay(trail: Trail) -> None:
    await _pruned_first_segment(trail)
    (trail.witness_dir / trail.checkpoints[0].file_name).unlink()
    result = await _verify(trail)
    assert not result.ok and "prune marker" in (result.problem or ""), result


def test_cutoff() -> None:
    from tests.conftest import make_settings

    settings = make_settings(Path("/nonexistent"), "sqlite+aiosqlite:///:memory:")
    now = datetime(2030, 1, 1, tzinfo=UTC)
    assert settings.audit_retention_days == 1095
    assert cutoff(settings, None, now=now) == now - timedelta(days=1095)
    assert cutoff(settings, "2027-03-01") == datetime(2027, 3, 1, tzinfo=UTC)
    with pytest.raises(PruneError, match="not an ISO date"):
        cutoff(settings, "last year")


# --- privileges and the command line ---------------------------------------------------------


class _RolledBack(Exception):
    pass


async def _delete_as(trail: Trail, role: str) -> None:
    """As ``role``: nothing deleted without a context, record 1 in the system context; then
    roll back."""
    from sqlalchemy import text

    from hypervision.policy import rls

    async with owner(trail.owner_url) as conn:
        await conn.execute(text(f'SET LOCAL ROLE "{role}"'))
        gone = await conn.execute(delete(RECORDS).where(RECORDS.c.seq == 1))
        assert gone.rowcount == 0
        system = rls.sign(trail.settings, rls.SYSTEM_CONTEXT)
        await conn.execute(select(func.set_config(rls.SETTING, system, True)))
        gone = await conn.execute(delete(RECORDS).where(RECORDS.c.seq == 1))
        assert gone.rowcount == 1
        raise _RolledBack


async def test_postgresql_delete_needs_the_system_context(trail: Trail, database_url: str) -> None:
    """Policy hv_prune: a role with the DELETE privilege but without BYPASSRLS (the owner in a
    deployment) deletes nothing outside the system context; the application role has no
    DELETE privilege at all (tests/security/test_rls_catalogue.py)."""
    if engine_name(database_url) != "postgresql":
        pytest.skip("SQLite has no row-level security (ADR 0011)")
    from sqlalchemy import text

    role = f"hv_prune_probe_{os.getpid()}"
    async with owner(trail.owner_url) as conn:
        await conn.execute(text(f'CREATE ROLE "{role}" NOSUPERUSER NOBYPASSRLS'))
        await conn.execute(text(f'GRANT SELECT, DELETE ON audit_records TO "{role}"'))
    try:
        with pytest.raises(_RolledBack):
            await _delete_as(trail, role)
    finally:
        async with owner(trail.owner_url) as conn:
            await conn.execute(text(f'REVOKE ALL ON audit_records FROM "{role}"'))
            await conn.execute(text(f'DROP ROLE "{role}"'))


async def test_command_line_prune(
    app: FastAPI, client: AsyncClient, database_url: str, owner_database_url: str, tmp_path: Path
) -> None:
    from tests.conftest import once_across_engines
    from tests.test_cli import _cli

    once_across_engines(database_url)

    def run(*args: str, code: int = 0) -> str:
        result = _cli(database_url, tmp_path, "audit", *args, owner_url=owner_database_url)
        assert result.returncode == code, result.stderr
        return result.stdout + result.stderr

    run("keygen")
    headers = await officer(app, client, "carol", "PP")
    await _activity(client, headers, 2, "cli")
    run("checkpoint")
    covered = await _head(app)
    await _activity(client, headers, 1, "cli later")
    assert "record" in run("prune")  # nothing is three years old
    assert f"would remove records 1..{covered}" in run(
        "prune", "--dry-run", "--before", "2999-01-01"
    )
    head = await _head(app)  # the queue chained first
    assert await _seqs_of(owner_database_url) == list(range(1, head + 1))
    out = run("prune", "--before", "2999-01-01")
    assert f"removed records 1..{covered} ({covered}, " in out
    assert f"removed {covered} audit records" in out
    out = run("verify")
    assert "audit trail intact" in out and f"records 1..{covered} pruned" in out
    assert "not an ISO date" in run("prune", "--before", "soon", code=1)


async def _seqs_of(url: str) -> list[int]:
    async with owner(url) as conn:
        return list((await conn.scalars(select(RECORDS.c.seq).order_by(RECORDS.c.seq))).all())
