"""Product sources (docs/adr/0029): a steward points a product at a CSV, JSON or GeoJSON URL;
it is fetched on a schedule (``fetch.py`` guards the fetching) and imported through the
normal import path — a new data version each time, all-or-nothing, the same checks — unless
its content did not change (304 to a conditional request, or the same SHA-256). Every run is
kept with its status, HTTP status, rows, duration and, when it failed, the error in words.

The background poller of a serving process runs rounds; on PostgreSQL a round holds a
transaction-scoped advisory lock (the lease) for its whole length, so at most one replica
polls at a time; a replica that dies releases it with its connection."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hypervision.audit import service as audit
from hypervision.config import Settings
from hypervision.core.errors import AppError, Invalid, NotFound
from hypervision.db import transaction, utcnow
from hypervision.identity.auth import Client, build_principal
from hypervision.identity.models import User
from hypervision.identity.principal import Principal
from hypervision.products import service
from hypervision.products.fetch import Fetched, FetchError, Guard, fetch
from hypervision.products.models import DataProduct, ImportMode
from hypervision.products.source_models import (
    ProductSource,
    ProductSourceRun,
    RunStatus,
    RunTrigger,
    SourceFormat,
)
from hypervision.records import versions

log = logging.getLogger("hypervision.sources")

# pg_try_advisory_xact_lock key: "hv-srcs" read as an integer.
LEASE_KEY = int.from_bytes(b"hv-srcs", "big")
ROUND = 20  # sources run per round at most
RUNS_SHOWN = 50
MAX_INTERVAL = 7 * 24 * 60


@dataclass(frozen=True)
class SourceConfig:
    url: str
    format: str
    mode: str
    interval_minutes: int


def _checked(settings: Settings, config: SourceConfig, product: DataProduct) -> SourceConfig:
    guard = Guard.of(settings)
    if not guard.enabled:
        raise Invalid(
            "Les sources HTTP sont désactivées sur cette plateforme (aucun hôte autorisé).",
            "HTTP sources are off on this platform (no host allowed).",
            code="sources_off",
        )
    try:
        guard.check_url(config.url.strip())
    except FetchError as error:
        raise Invalid(
            error.fr, error.en, extra={"fields": [{"field": "url", "message": "refused"}]}
        ) from None
    fmt = service._choice(SourceFormat, config.format, "format", "Format inconnu", "Unknown format")
    mode = service._choice(
        ImportMode, config.mode, "mode", "Mode d'import inconnu", "Unknown import mode"
    )
    if mode is ImportMode.UPSERT and not service.schema_of(product).primary_key:
        raise Invalid(
            "La mise à jour par clé demande une clé primaire dans le schéma.",
            "Upsert needs a primary key in the schema.",
            extra={"fields": [{"field": "mode", "message": "no primary key"}]},
        )
    if not 1 <= config.interval_minutes <= MAX_INTERVAL:
        raise Invalid(
            f"Intervalle entre 1 et {MAX_INTERVAL} minutes.",
            f"Interval between 1 and {MAX_INTERVAL} minutes.",
            extra={"fields": [{"field": "interval_minutes", "message": "out of range"}]},
        )
    return SourceConfig(config.url.strip(), fmt.value, mode.value, config.interval_minutes)


async def _steward_product(
    session: AsyncSession, settings: Settings, actor: Principal, product_id: uuid.UUID
) -> DataProduct:
    product = await service.find_product(
        session=session, settings=settings, actor=actor, product_id=product_id
    )
    service.check_steward(actor, product)
    return product


async def _source_of(session: AsyncSession, product_id: uuid.UUID) -> ProductSource | None:
    found: ProductSource | None = await session.scalar(
        select(ProductSource).where(ProductSource.product_id == product_id)
    )
    return found


async def _record_on_product(
    session: AsyncSession, actor: Principal, product: DataProduct, action: str
) -> None:
    """A source set or removed is a change of its product: a record version, an outbox event
    and an audit record (the URL itself stays out of them: it may hold a key)."""
    before = versions.snapshot(product)
    product.version += 1
    product.updated_at = utcnow()
    await versions.record_change(
        session=session,
        actor=actor,
        resource_type="product",
        row=product,
        action=action,
        before=before,
    )


async def set_source(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    product_id: uuid.UUID,
    config: SourceConfig,
) -> ProductSource:
    """Attach (or change) the product's source; its first run is due at once. Runs act as
    ``actor``, whose rights are checked again at each run."""
    product = await _steward_product(session, settings, actor, product_id)
    assert actor.user_id is not None
    config = _checked(settings, config, product)
    now = utcnow()
    source = await _source_of(session, product.id)
    if source is None:
        source = ProductSource(product_id=product.id, created_at=now, version=0, enabled=True)
        session.add(source)
    if source.url != config.url or source.format != config.format:
        source.etag = source.last_modified = source.content_hash = None
    source.url, source.format, source.mode = config.url, config.format, config.mode
    source.interval_minutes = config.interval_minutes
    source.owner_id = actor.user_id
    source.enabled = True
    source.next_run_at = now
    source.updated_at = now
    source.version += 1
    await session.flush()
    await _record_on_product(session, actor, product, "source")
    return source


async def remove_source(
    *, session: AsyncSession, settings: Settings, actor: Principal, product_id: uuid.UUID
) -> None:
    """Detach the product's source (its runs stay in the history)."""
    product = await _steward_product(session, settings, actor, product_id)
    source = await _source_of(session, product.id)
    if source is None:
        raise NotFound("Ce produit n'a pas de source.", "This product has no source.")
    await session.delete(source)
    await _record_on_product(session, actor, product, "source_removed")


async def source_and_runs(
    *, session: AsyncSession, settings: Settings, actor: Principal, product_id: uuid.UUID
) -> tuple[DataProduct, ProductSource | None, list[ProductSourceRun]]:
    """The source (None when there is none) and its last runs, newest first: stewards of the
    product's domain only (the URL may hold a key)."""
    product = await _steward_product(session, settings, actor, product_id)
    source = await _source_of(session, product.id)
    runs = list(
        await session.scalars(
            select(ProductSourceRun)
            .where(ProductSourceRun.product_id == product.id)
            .order_by(ProductSourceRun.started_at.desc(), ProductSourceRun.id)
            .limit(RUNS_SHOWN)
        )
    )
    await audit.record(
        session=session,
        actor=actor,
        action="product.source",
        resource_type="product",
        resource_ids=[product.id, *([source.id] if source else []), *(r.id for r in runs)],
        labels=[product.label_level],
    )
    return product, source, runs


# --- running -----------------------------------------------------------------------------------


def _filename(fmt: str) -> str:
    return f"source.{fmt}"


async def apply(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    source_id: uuid.UUID,
    fetched: Fetched | FetchError,
    trigger: str,
    started: datetime,
    clock: float,
) -> ProductSourceRun:
    """What a fetch gives, in the caller's transaction: imported (in a savepoint: a refused
    file writes nothing), or unchanged, or failed; then the run, the source's next time and
    the run's audit record."""
    source = await session.scalar(
        select(ProductSource).where(ProductSource.id == source_id).with_for_update()
    )
    if source is None:
        if isinstance(fetched, Fetched) and fetched.file is not None:
            fetched.file.close()
        raise NotFound("Ce produit n'a pas de source.", "This product has no source.")
    run = ProductSourceRun(
        product_id=source.product_id,
        started_at=started,
        trigger=trigger,
        actor_id=actor.user_id,
        error="",
    )
    if isinstance(fetched, FetchError):
        run.status, run.http_status, run.error = RunStatus.FAILED, fetched.http_status, fetched.fr
    elif fetched.status == 304 or (
        fetched.content_hash is not None and fetched.content_hash == source.content_hash
    ):
        run.status, run.http_status = RunStatus.UNCHANGED, fetched.status
        if fetched.file is not None:
            fetched.file.close()
    else:
        run.http_status = fetched.status
        await _import(session, settings, actor, source, fetched, run)
    run.duration_ms = int((time.perf_counter() - clock) * 1000)
    source.last_run_at = started
    source.last_status = run.status
    source.next_run_at = started + timedelta(minutes=source.interval_minutes)
    session.add(run)
    await session.flush()
    product = await session.get(DataProduct, source.product_id)
    assert product is not None
    await audit.record(
        session=session,
        actor=actor,
        action="product.source_run",
        surface=trigger,
        resource_type="product",
        resource_ids=[product.id, run.id],
        labels=[product.label_level],
        detail={"status": run.status, "http_status": run.http_status, "rows": run.rows},
    )
    return run


async def _import(
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    source: ProductSource,
    fetched: Fetched,
    run: ProductSourceRun,
) -> None:
    assert fetched.file is not None
    try:
        async with session.begin_nested():
            imported = await service.import_data(
                session=session,
                settings=settings,
                actor=actor,
                product_id=source.product_id,
                source=fetched.file,
                filename=_filename(source.format),
                media_type=fetched.media_type,
                mode=source.mode,
            )
            got = str(imported.version.source.get("format"))
            if got != source.format and {got, source.format} != {"json", "geojson"}:
                raise Invalid(
                    f"Format reçu : {got.upper()}, attendu : {source.format.upper()}.",
                    f"Format received: {got.upper()}, expected: {source.format.upper()}.",
                )
    except AppError as error:
        run.status, run.error = RunStatus.FAILED, error.fr[:2000]
        rows = error.extra.get("rows") if error.extra else None
        if rows:  # the first bad rows, as the import form lists them
            run.error += "".join(
                f"\nligne {r['row']}" + (f", « {r['field']} »" if r["field"] else "")
                + f" : {r['message']}"
                for r in rows[:10]
            )  # fmt: skip
        return
    finally:
        fetched.file.close()
    run.status = RunStatus.IMPORTED
    run.rows = int(imported.version.source.get("rows_read") or 0)
    run.data_version = imported.version.number
    source.etag, source.last_modified = fetched.etag, fetched.last_modified
    source.content_hash = fetched.content_hash


async def _fetch(settings: Settings, source: ProductSource) -> Fetched | FetchError:
    try:
        return await fetch(
            source.url,
            guard=Guard.of(settings),
            max_bytes=settings.product_max_bytes,
            seconds=settings.product_source_timeout_seconds,
            etag=source.etag,
            last_modified=source.last_modified,
        )
    except FetchError as error:
        return error


async def run_now(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    product_id: uuid.UUID,
    trigger: str = RunTrigger.MANUAL,
) -> ProductSourceRun:
    """Fetch and import the product's source now, as ``actor`` (a steward of its domain), in
    the caller's transaction; the run says how it went (a failed run is not an error)."""
    product = await _steward_product(session, settings, actor, product_id)
    source = await _source_of(session, product.id)
    if source is None:
        raise NotFound("Ce produit n'a pas de source.", "This product has no source.")
    started, clock = utcnow(), time.perf_counter()
    fetched = await _fetch(settings, source)
    return await apply(
        session=session, settings=settings, actor=actor, source_id=source.id, fetched=fetched,
        trigger=trigger, started=started, clock=clock,
    )  # fmt: skip


async def _owner(session: AsyncSession, source: ProductSource, trigger: str) -> Principal:
    user = await session.get(User, source.owner_id)
    assert user is not None  # a foreign key
    return await build_principal(
        session=session, user=user, scopes=None, client=Client(None, f"source:{source.id}"),
        surface=trigger,
    )  # fmt: skip


async def run_source(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    source_id: uuid.UUID,
    trigger: str = RunTrigger.SCHEDULE,
) -> ProductSourceRun | None:
    """One run in the background: the fetch outside any transaction, then its import and
    its run in one. A steward who may no longer import makes a failed run."""
    async with transaction(sessions) as session:
        source = await session.get(ProductSource, source_id)
        if source is None:
            return None
        owner = await session.get(User, source.owner_id)
        session.expunge(source)
    started, clock = utcnow(), time.perf_counter()
    if owner is None or not owner.is_active:
        fetched: Fetched | FetchError = FetchError(
            "Le gestionnaire qui a posé cette source n'a plus de compte actif.",
            "The steward who set this source no longer has an active account.",
        )
    else:
        fetched = await _fetch(settings, source)
    async with transaction(sessions) as session:
        actor = await _owner(session, source, trigger)
        try:
            return await apply(
                session=session, settings=settings, actor=actor, source_id=source_id,
                fetched=fetched, trigger=trigger, started=started, clock=clock,
            )  # fmt: skip
        except NotFound:
            return None  # removed meanwhile


@asynccontextmanager
async def _lease(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[bool]:
    """True while this process holds the pollers' lease (PostgreSQL: an advisory lock held
    by a transaction for the round; SQLite: one process, always)."""
    async with transaction(sessions) as session:
        if session.get_bind().dialect.name != "postgresql":
            yield True
            return
        yield bool(await session.scalar(select(func.pg_try_advisory_xact_lock(LEASE_KEY))))


async def due_sources(
    session: AsyncSession, now: datetime, slug: str | None = None
) -> Sequence[uuid.UUID]:
    query = select(ProductSource.id).where(ProductSource.enabled)
    if slug is None:
        query = query.where(ProductSource.next_run_at <= now)
    else:
        query = query.join(DataProduct, DataProduct.id == ProductSource.product_id).where(
            DataProduct.slug == slug
        )
    return list(await session.scalars(query.order_by(ProductSource.next_run_at).limit(ROUND)))


async def poll(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    *,
    slug: str | None = None,
    trigger: str = RunTrigger.SCHEDULE,
) -> list[ProductSourceRun]:
    """One round: the due sources (or ``slug``'s, due or not), one after the other, under
    the lease; nothing when another replica holds it."""
    async with _lease(sessions) as held:
        if not held:
            return []
        async with transaction(sessions) as session:
            due = await due_sources(session, utcnow(), slug)
        runs = []
        for source_id in due:
            run = await run_source(sessions, settings, source_id, trigger)
            if run is not None:
                runs.append(run)
        return runs


class Poller:
    """The sources' poller of a serving process (every ``product_source_poll_seconds``)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self.sessions, self.settings = sessions, settings
        self._task: asyncio.Task[None] | None = None

    @property
    def active(self) -> bool:
        return self.settings.product_source_poll_seconds > 0 and Guard.of(self.settings).enabled

    def start(self) -> None:
        if self._task is None and self.active:
            self._task = asyncio.create_task(self._run(), name="hypervision-product-sources")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                runs = await poll(self.sessions, self.settings)
                if runs:
                    log.info("product sources: %d run(s)", len(runs))
            except Exception:
                log.exception("product sources: round failed; will retry")
            await asyncio.sleep(self.settings.product_source_poll_seconds)
