# ruff: noqa: T201 - benchmarks print their figures
"""Alert evaluation: audit records chained per second by the sequencer alone, against the
same passes followed by the alert evaluator (``alerts.evaluator``, docs/adr/0040) with the
default rules on, in alternating rounds on the same engine in the same run.

    python bench/alert_evaluation.py --engine sqlite|postgresql --rows 20000 [--rounds 5]

The records are a crisis room's mix: reads and lists of protected entries (1 to 20 ids each,
by 50 people), searches, refusals of unknown ids, sign-ins (some refused), writes and live
deliveries. Queuing them (the requests' part) is not timed: evaluation runs after the
sequencer's commit, off the request path; what it costs is sequencer time per record.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib
from benchlib import fmt, note, show

PEOPLE = 1500  # the seed's crisis room
HEAVY = 2  # of whom these few read in bulk (about 3 % of the reads): their alerts fire
ADDRESSES = [f"198.51.100.{n}" for n in range(1, 40)]


@dataclass(frozen=True)
class Person:
    """Who acts, as the trail records it (``audit.service.Actor``)."""

    user_id: uuid.UUID
    username: str
    client_address: str
    organisation_id: uuid.UUID | None = None
    clearance: str | None = "DR"
    surface: str = "api"
    request_id: str | None = None


def record_values(
    i: int, rng: random.Random, people: list[Person], ids: list[uuid.UUID]
) -> dict[str, Any]:
    who = people[i % len(people)]
    roll = rng.random()
    if roll < 0.70 and rng.random() < 0.03:
        who = people[rng.randrange(HEAVY)]
    base: dict[str, Any] = {
        "actor": who,
        # People work from their usual address; one sign-in in a hundred comes from another.
        "address": rng.choice(ADDRESSES) if rng.random() < 0.01 else who.client_address,
        "decision": "allowed",
        "resource_type": "entry",
        "labels": ["NP"],
        "detail": {},
    }
    if roll < 0.55:
        base |= {"action": "entry.read", "ids": [rng.choice(ids)]}
    elif roll < 0.70:
        base |= {"action": "entry.list", "ids": rng.sample(ids, rng.randint(2, 20))}
    elif roll < 0.75:
        base |= {"action": "search", "ids": rng.sample(ids, rng.randint(0, 10))}
    elif roll < 0.78:
        base |= {"action": "refused:not_found", "decision": "not_found", "ids": [uuid.uuid4()]}
    elif roll < 0.80:
        base |= {
            "action": "auth.sign_in", "resource_type": "user", "ids": [who.user_id], "actor": None,
            "decision": rng.choice(("allowed", "allowed", "denied")),
            "detail": {"reason": "otp"},
        }  # fmt: skip
    elif roll < 0.90:
        base |= {"action": "entry.create", "ids": [rng.choice(ids)]}
    else:
        base |= {"action": "live.deliver", "resource_type": "event", "actor": None,
                 "ids": rng.sample(ids, 5)}  # fmt: skip
    return base


async def queue(
    sessions: Any, count: int, rng: random.Random, people: list[Person], ids: list[uuid.UUID]
) -> None:
    from hypervision.audit import service as audit
    from hypervision.db import transaction

    for start in range(0, count, 500):
        async with transaction(sessions) as session:
            for i in range(start, min(count, start + 500)):
                v = record_values(i, rng, people, ids)
                await audit.record(
                    session=session,
                    actor=v["actor"],
                    actor_name=None if v["actor"] else "bench",
                    client_address=v["address"],
                    action=v["action"],
                    decision=v["decision"],
                    resource_type=v["resource_type"],
                    resource_ids=v["ids"],
                    labels=v["labels"],
                    detail=v["detail"],
                )


async def run(db: benchlib.BenchDb, args: Any) -> None:
    from hypervision.alerts import service as alerts
    from hypervision.alerts.evaluator import Evaluator
    from hypervision.alerts.models import Alert
    from hypervision.audit.models import AuditHead
    from hypervision.audit.sequencer import BATCH, sequence_batch
    from hypervision.db import create_engine, session_factory, transaction

    await benchlib.header("alert_evaluation", db, args.rows, f", {args.rounds} alternating rounds")
    settings = benchlib.bench_settings(db)
    engine = create_engine(settings)
    sessions = session_factory(engine)
    rng = random.Random(21)  # noqa: S311 - a reproducible mix, not a secret
    people = [
        Person(uuid.uuid4(), f"bench.{n}", ADDRESSES[n % len(ADDRESSES)]) for n in range(PEOPLE)
    ]
    ids = [uuid.uuid4() for _ in range(5000)]
    evaluator = Evaluator(settings.label_levels)
    async with transaction(sessions) as session:
        await alerts.ensure_state(session)

    async def fill(count: int) -> None:
        await queue(sessions, count, rng, people, ids)

    async def sequence(evaluate: bool) -> tuple[int, float, float]:
        done_total, seq_seconds, eval_seconds = 0, 0.0, 0.0
        while True:
            before = eval_seconds
            chained: list[Any] = []
            started = time.perf_counter()
            async with transaction(sessions) as session:
                done = await sequence_batch(session, out=chained)
                if evaluate:  # as Sequencer.run_after: same transaction, under a savepoint
                    begun = time.perf_counter()
                    async with session.begin_nested():
                        await evaluator.run(session, chained)
                    eval_seconds += time.perf_counter() - begun
            seq_seconds += time.perf_counter() - started - (eval_seconds - before)
            done_total += done
            if done < BATCH:
                return done_total, seq_seconds, eval_seconds

    # The request's part of the write path: one audited write per transaction, committed.
    sample = min(500, max(50, args.rows // 40))
    started = time.perf_counter()
    for _ in range(sample):
        await queue(sessions, 1, rng, people, ids)
    request = (time.perf_counter() - started) / sample
    await sequence(False)
    async with transaction(sessions) as session:
        cursor = await alerts.ensure_state(session)
        head = await session.get(AuditHead, 1)
        assert head is not None
        cursor.seq = head.seq
    evaluator.synced = cursor.seq

    per_round = max(1, args.rows // args.rounds)
    plain: list[float] = []
    with_eval: list[float] = []
    eval_only: list[float] = []
    for r in range(args.rounds):
        for evaluate in (False, True) if r % 2 == 0 else (True, False):
            await fill(per_round)
            done, seq_s, eval_s = await sequence(evaluate)
            if evaluate:
                with_eval.append((seq_s + eval_s) / done)
                eval_only.append(eval_s / done)
            else:
                plain.append(seq_s / done)
                # Not evaluated: the cursor skips these records (untimed), as if evaluated.
                async with transaction(sessions) as session:
                    cursor = await alerts.ensure_state(session)
                    head = await session.get(AuditHead, 1)
                    assert head is not None
                    cursor.seq = head.seq
                evaluator.synced = cursor.seq
        note(f"round {r + 1}/{args.rounds} done")
    async with sessions() as session:
        from sqlalchemy import func, select

        raised = await session.scalar(select(func.count()).select_from(Alert))
        evaluated = evaluator.evaluated
    await engine.dispose()

    def median(values: list[float]) -> float:
        return sorted(values)[len(values) // 2]

    base, total, extra = median(plain), median(with_eval), median(eval_only)
    show(
        "Sequencer throughput with and without alert evaluation",
        ["path", "records/s", "µs per record", "vs sequencer alone"],
        [
            ["sequencer alone", fmt(1 / base, 0), fmt(base * 1e6, 1), "1.00"],
            [
                "sequencer + evaluation",
                fmt(1 / total, 0),
                fmt(total * 1e6, 1),
                fmt(total / base, 3),
            ],
            ["evaluation only", fmt(1 / extra, 0), fmt(extra * 1e6, 1), fmt(extra / base, 3)],
        ],
    )
    path = request + base
    show(
        "Share of the write path (one audited write: its transaction, then its share of a "
        "sequencer pass)",
        ["write path", "µs per write", "evaluation µs", "evaluation share"],
        [["request + sequencer", fmt(path * 1e6, 1), fmt(extra * 1e6, 1),
          f"{100 * extra / path:.1f} %"]],
    )  # fmt: skip
    print(
        f"\nevaluation adds {100 * (total - base) / base:.1f} % to the sequencer's time per "
        f"record ({extra * 1e6:.1f} µs per record); {evaluated} records evaluated, "
        f"{raised} alerts raised or merged into; the request path (queuing) is unchanged."
    )


def main() -> None:
    p = benchlib.parser(__doc__.splitlines()[0], default_rows=20000)
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    args = p.parse_args()
    with benchlib.throwaway_database(args.engine, args.pg_url, args.keep) as db:
        asyncio.run(run(db, args))


if __name__ == "__main__":
    main()
