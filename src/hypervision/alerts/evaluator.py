"""Evaluating alert rules as the audit trail is chained (docs/adr/0040).

The sequencer hands each batch it chained to ``Evaluator.run`` at the end of the same
transaction, under a savepoint (a failure here never holds the chain back). A cursor row
(``alert_cursor``, locked by the pass) holds the last ``seq`` evaluated, so each record is
evaluated once whichever replica chained it; a batch that does not follow the cursor (chained
by ``drain`` for the audit API) makes the evaluator read what it missed from the trail. A
process's first pass fills the windows from the records still inside them; a pass after
another replica's adds to them the records that replica evaluated. A failed pass leaves the
cursor where it was: the next one resumes.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.alerts import service
from hypervision.alerts.catalogue import (
    COUNTED,
    PROTECTED_KINDS,
    SIGN_IN,
    Observation,
    Rec,
    kinds_for,
    observe,
)
from hypervision.alerts.countries import CountryTable
from hypervision.alerts.models import Alert, AlertRule, KnownAddress, KnownCountry
from hypervision.alerts.windows import Entry, Firing, RuleView, Window
from hypervision.audit.models import AuditHead, AuditRecord
from hypervision.db import utcnow

log = logging.getLogger("hypervision.alerts")
READ_BATCH = 2000


class Evaluator:
    """One per serving process; its windows are a cache of the trail."""

    def __init__(
        self, levels: tuple[str, ...], countries: CountryTable | None = None, mail: bool = False
    ) -> None:
        self.levels = levels
        self.mail = mail  # queue e-mails for raised alerts (an SMTP server is configured)
        # The operator's address ranges → country (the "new country" rule; none: silent).
        self.country_table = countries or CountryTable(None)
        # (rule id, subject): the subject's key, or its person's id for bulk reads
        self.windows: dict[tuple[uuid.UUID, object], Window] = {}
        self.synced = -1  # the cursor the windows are in step with
        self.rules_seen: frozenset[tuple[uuid.UUID, int]] = frozenset()
        self.evaluated = 0  # records evaluated by this process (for the bench)
        # Addresses each account signed in from (the "new address" rule), read once per
        # account from ``alert_known_addresses`` and kept in step with it.
        self.addresses: dict[str, dict[str, datetime]] = {}
        self.countries: dict[str, dict[str, datetime]] = {}  # the same, by country
        # Open alerts whose cited list is full, by (rule id, subject key).
        self.full: dict[tuple[uuid.UUID, str], uuid.UUID] = {}

    async def run(self, session: AsyncSession, rows: Sequence[Any] = ()) -> int:
        """Evaluate the records chained since the cursor (``rows``: the batch just chained,
        used as is when it follows the cursor). Returns how many records were evaluated."""
        cursor = await service.ensure_state(session)
        rules = list(
            await session.scalars(
                select(AlertRule).where(AlertRule.enabled).order_by(AlertRule.created_at)
            )
        )
        seen = frozenset((r.id, r.version) for r in rules)
        # The sequencer's records carry every attribute the rules read: used as they are.
        recs: list[Any] = [r for r in rows if r.seq is not None and r.seq > cursor.seq]
        synced, self.synced = self.synced, -1  # until this pass commits its work
        if synced < 0 or synced > cursor.seq or seen != self.rules_seen:
            # A rule changed, or this is the first pass (or follows a failed one): the
            # windows are refilled from the trail, then what follows the cursor is read.
            await self._rebuild(session, rules, cursor.seq)
            self.rules_seen = seen
            recs = []
        elif synced != cursor.seq:
            # Another replica evaluated since: the windows take the records it evaluated
            # (its alerts are raised), not the whole trail again. A full refill here held
            # the pass's transaction, and with it the live hubs' horizon, for hundreds of
            # milliseconds whenever passes moved between replicas (ADR 0053).
            await self._rebuild(session, rules, cursor.seq, after=synced)
            recs = []
        elif recs and recs[0].seq != cursor.seq + 1:
            recs = []  # records chained elsewhere (``drain``) came first: read from the trail
        if not recs:
            head = await session.scalar(select(AuditHead.seq).where(AuditHead.id == 1))
            if head is None or head <= cursor.seq:
                self.synced = cursor.seq
                return 0
            recs = await _read(session, cursor.seq, head)
        fired = await self._feed(session, rules, recs)
        merges: list[tuple[Alert, Firing]] = []
        for key, firing in fired.items():
            alert, merged = await self._alert(session, key, firing)
            if merged:
                merges.append((alert, firing))
        await service.audit_merges(session, merges)
        cursor.seq = recs[-1].seq
        self.synced = cursor.seq
        self.evaluated += len(recs)
        return len(recs)

    async def _alert(
        self, session: AsyncSession, key: tuple[uuid.UUID, str], firing: Firing
    ) -> tuple[Alert, bool]:
        """Raise or merge; an alert whose cited list is full is remembered, and later
        records join it with one UPDATE. Returns the alert and whether it was a merge."""
        full = self.full.get(key)
        if full is not None:
            alert = await service.add_to_full(
                session, alert_id=full, firing=firing, levels=self.levels
            )
            if alert is not None:
                return alert, True
            del self.full[key]
        alert = await service.raise_or_merge(
            session, firing=firing, levels=self.levels, mail=self.mail
        )
        if len(alert.records) >= service.MAX_CITED:
            self.full[key] = alert.id
        return alert, alert.version > 1

    async def _rebuild(
        self, session: AsyncSession, rules: list[AlertRule], upto: int, after: int | None = None
    ) -> None:
        """Refill the windows of the counted rules from the records still inside them, up to
        ``upto``. ``after``: the windows already hold the records up to it, only the later
        ones are added, and only the accounts that signed in meanwhile have their known
        addresses and countries read again (the replica that evaluated those sign-ins wrote
        them); else all are read."""
        if after is None:
            self.windows.clear()
            self.addresses, self.countries = {}, {}
            accounts = None
        else:
            accounts = await self._signed_in(session, rules, after, upto)
        if accounts is None or accounts:
            await self._read_known(session, accounts)
        self.full.clear()
        counted = [r for r in rules if r.kind in COUNTED]
        if not counted:
            return
        longest = max(int(r.params.get("window_minutes", 15)) for r in counted)
        since = utcnow() - timedelta(minutes=longest)
        query = (
            select(*_COLUMNS)
            .where(AuditRecord.at >= since, AuditRecord.seq <= upto)
            .order_by(AuditRecord.seq)
            .execution_options(yield_per=READ_BATCH)
        )
        if after is not None:
            query = query.where(AuditRecord.seq > after)
        by_kind = _by_kind(counted)
        bulk = by_kind.pop("bulk_reads", [])
        ignored: dict[tuple[uuid.UUID, str], Firing] = {}
        result = await session.stream(query)
        async for row in result:
            for kind in kinds_for(row.action):
                for rule in bulk if kind == "bulk_reads" else by_kind.get(kind, ()):
                    if kind == "bulk_reads":
                        self._bulk_read(ignored, rule, row)
                    else:
                        self._count(rule, row)
        # A bulk-read window above its threshold is marked fired (its alert was raised when
        # its records were first evaluated): later reads join that alert one by one.

    async def _read_known(self, session: AsyncSession, accounts: set[str] | None) -> None:
        """The known addresses and countries of ``accounts`` (None: of every account)."""
        for model, known, place in (
            (KnownAddress, self.addresses, KnownAddress.address),
            (KnownCountry, self.countries, KnownCountry.country),
        ):
            query = select(model.user_key, place, model.last_seen_at)
            if accounts is not None:
                query = query.where(model.user_key.in_(sorted(accounts)))
                for account in accounts:
                    known.pop(account, None)
            for user_key, where, at in await session.execute(query):
                known.setdefault(user_key, {})[where] = at

    async def _signed_in(
        self, session: AsyncSession, rules: list[AlertRule], after: int, upto: int
    ) -> set[str]:
        """The accounts whose sign-ins the "new address/country" rules evaluated after
        ``after`` up to ``upto`` (on another replica: this one's windows stopped at
        ``after``)."""
        kinds = {r.kind for r in rules} & {"sign_in_new_address", "sign_in_new_country"}
        if not kinds:
            return set()  # no such rule: nobody learnt an address
        rows = await session.execute(
            select(*_COLUMNS).where(
                AuditRecord.seq > after, AuditRecord.seq <= upto, AuditRecord.action == SIGN_IN
            )
        )
        accounts: set[str] = set()
        for row in rows:
            for kind in kinds:
                seen = observe(kind, {}, row, self.levels)
                if seen is not None:
                    accounts.add(seen.subject_key)
        return accounts

    def _count(self, rule: RuleView, rec: Any) -> tuple[Window, Any] | None:
        seen = observe(rule.kind, rule.params, rec, self.levels)
        if seen is None:
            return None
        key = (rule.id, seen.subject_key)
        window = self.windows.get(key)
        if window is None:
            window = self.windows[key] = Window(rule.minutes, rule.kind == "bulk_reads")
        window.add(Entry(rec.at, rec.seq, rec.id, seen.items, seen.weight))
        return window, seen

    async def _feed(
        self, session: AsyncSession, rules: list[AlertRule], recs: list[Any]
    ) -> dict[tuple[uuid.UUID, str], Firing]:
        """Each record is observed by the rules of the kinds that look at its action only
        (``catalogue.kinds_for``): most records by one rule or none."""
        fired: dict[tuple[uuid.UUID, str], Firing] = {}
        by_kind = _by_kind(rules)
        bulk = by_kind.pop("bulk_reads", [])
        for rec in recs:
            for kind in kinds_for(rec.action):
                if kind == "bulk_reads":
                    for rule in bulk:
                        self._bulk_read(fired, rule, rec)
                    continue
                for rule in by_kind.get(kind, ()):
                    if kind in COUNTED:
                        self._counted(fired, rule, rec)
                    else:
                        await self._single(session, fired, rule, rec)
        return fired

    def _bulk_read(
        self, fired: dict[tuple[uuid.UUID, str], Firing], rule: RuleView, rec: Any
    ) -> None:
        """``catalogue.observe`` for bulk reads, inlined: reads are most of the trail."""
        if (
            rec.actor_id is None
            or rec.decision != "allowed"
            or rec.resource_type not in PROTECTED_KINDS
            or not rec.resource_ids
        ):
            return
        key = (rule.id, rec.actor_id)
        window = self.windows.get(key)
        if window is None:
            window = self.windows[key] = Window(rule.minutes, True)
        window.add(Entry(rec.at, rec.seq, rec.id, rec.resource_ids, 1))
        if window.measure > rule.threshold:
            seen = Observation("person", str(rec.actor_id), rec.actor_name)
            self._fire(fired, rule, seen, window, rec)

    def _counted(
        self, fired: dict[tuple[uuid.UUID, str], Firing], rule: RuleView, rec: Any
    ) -> None:
        counted = self._count(rule, rec)
        if counted is None:
            return
        window, seen = counted
        if window.measure > rule.threshold:
            self._fire(fired, rule, seen, window, rec)

    def _fire(
        self,
        fired: dict[tuple[uuid.UUID, str], Firing],
        rule: RuleView,
        seen: Observation,
        window: Window,
        rec: Any,
    ) -> None:
        """A window above its threshold: its records raise (or join) the subject's alert."""
        firing = _firing(fired, rule, seen)
        if window.fired:
            firing.cite(rec.at, rec.seq, rec.id)
        else:
            window.fired = True
            for entry in window.entries:
                firing.cite(entry.at, entry.seq, entry.id)
        firing.measure = max(firing.measure, window.measure)

    async def _single(
        self,
        session: AsyncSession,
        fired: dict[tuple[uuid.UUID, str], Firing],
        rule: RuleView,
        rec: Any,
    ) -> None:
        seen = observe(rule.kind, rule.params, rec, self.levels)
        if seen is None:
            return
        if rule.kind == "sign_in_new_address" and not await self._new_address(
            session, seen.subject_key, rec, int(rule.params.get("days", 30))
        ):
            return
        if rule.kind == "sign_in_new_country" and not await self._new_country(
            session, seen.subject_key, rec, int(rule.params.get("days", 90))
        ):
            return
        firing = _firing(fired, rule, seen)
        firing.cite(rec.at, rec.seq, rec.id)
        firing.measure += 1

    async def _new_address(self, session: AsyncSession, user_key: str, rec: Any, days: int) -> bool:
        """Whether the account signs in from an address it has not used in the last ``days``
        days (its very first sign-in teaches the evaluator, and raises nothing); learns the
        address. The addresses are read from the database at each rebuild, and written
        only for an address new to the account or last seen more than a day before."""
        known = self.addresses.setdefault(user_key, {})  # all read by the last rebuild
        address, at = rec.client_address, rec.at
        last = known.get(address)
        if last is None:
            session.add(KnownAddress(user_key=user_key, address=address, last_seen_at=at))
            first = not known
            known[address] = at
            return not first
        if at - last > timedelta(days=1):
            await session.execute(
                update(KnownAddress)
                .where(KnownAddress.user_key == user_key, KnownAddress.address == address)
                .values(last_seen_at=at)
            )
            known[address] = at
        return bool(last < at - timedelta(days=days))

    async def _new_country(self, session: AsyncSession, user_key: str, rec: Any, days: int) -> bool:
        """Whether the account signs in from a country (the operator's table) it has not
        signed in from in the last ``days`` days; the first country known for an account
        teaches, and an address in no range says nothing. Learns the country."""
        country = self.country_table.country(rec.client_address)
        if country is None:
            return False
        known = self.countries.setdefault(user_key, {})
        at, last = rec.at, known.get(country)
        if last is None:
            session.add(KnownCountry(user_key=user_key, country=country, last_seen_at=at))
            first = not known
            known[country] = at
            return not first
        if at - last > timedelta(days=1):
            await session.execute(
                update(KnownCountry)
                .where(KnownCountry.user_key == user_key, KnownCountry.country == country)
                .values(last_seen_at=at)
            )
            known[country] = at
        return bool(last < at - timedelta(days=days))


def _by_kind(rules: list[AlertRule]) -> dict[str, list[RuleView]]:
    """The pass's rules by kind, read once from their rows (the hot loop reads plain
    attributes, not the ORM's)."""
    found: dict[str, list[RuleView]] = {}
    for rule in rules:
        found.setdefault(rule.kind, []).append(RuleView.of(rule))
    return found


def _firing(fired: dict[tuple[uuid.UUID, str], Firing], rule: RuleView, seen: Any) -> Firing:
    key = (rule.id, seen.subject_key)
    firing = fired.get(key)
    if firing is None:
        firing = fired[key] = Firing(
            rule.model, seen.subject_kind, seen.subject_key, seen.subject_name
        )
    return firing


_COLUMNS = (
    AuditRecord.seq,
    AuditRecord.id,
    AuditRecord.at,
    AuditRecord.actor_id,
    AuditRecord.actor_name,
    AuditRecord.action,
    AuditRecord.decision,
    AuditRecord.resource_type,
    AuditRecord.resource_ids,
    AuditRecord.labels,
    AuditRecord.detail,
    AuditRecord.client_address,
)


async def _read(session: AsyncSession, after: int, upto: int) -> list[Rec]:
    rows = await session.execute(
        select(*_COLUMNS)
        .where(AuditRecord.seq > after, AuditRecord.seq <= upto)
        .order_by(AuditRecord.seq)
        .limit(READ_BATCH * 5)
    )
    return [Rec.of(row) for row in rows]
