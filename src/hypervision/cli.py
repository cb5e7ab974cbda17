"""The ``hypervision`` command: serve, migrate, administration, audit, demo."""

from __future__ import annotations

import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TextIO, TypeVar

import typer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.config import ConfigError, Settings, get_settings
from hypervision.core.errors import AppError, NotFound
from hypervision.db import create_engine, transaction
from hypervision.geo import addresses, place_import
from hypervision.geo.place_addok import PlacesUnavailable
from hypervision.identity import auth, networks, service
from hypervision.identity.passwords import Passwords
from hypervision.identity.principal import Principal, system_principal
from hypervision.identity.schemas import (
    ApiTokenCreate,
    GroupCreate,
    OrganisationCreate,
    OrganisationUpdate,
    UserCreate,
)
from hypervision.policy import rls
from hypervision.policy.roles import Role

T = TypeVar("T")

app = typer.Typer(
    no_args_is_help=True,
    help="Hypervision: main courante, carte, synthèses.",
    pretty_exceptions_enable=False,  # never print local variables (passwords, tokens)
)
org_app = typer.Typer(no_args_is_help=True, help="Organisations (ministère → direction → service).")
group_app = typer.Typer(no_args_is_help=True, help="Need-to-know groups.")
user_app = typer.Typer(no_args_is_help=True, help="User accounts.")
token_app = typer.Typer(no_args_is_help=True, help="API tokens for machine clients.")
audit_app = typer.Typer(no_args_is_help=True, help="The audit trail.")
demo_app = typer.Typer(no_args_is_help=True, help="The Paris 2024-like demo scenario.")
files_app = typer.Typer(no_args_is_help=True, help="Attachment storage.")
places_app = typer.Typer(no_args_is_help=True, help="Address gazetteer (national address base).")
products_app = typer.Typer(no_args_is_help=True, help="Data products (the domains' own tables).")
review_app = typer.Typer(no_args_is_help=True, help="Access reviews and dormant accounts.")
for sub, name in (
    (org_app, "org"),
    (group_app, "group"),
    (user_app, "user"),
    (token_app, "token"),
    (audit_app, "audit"),
    (demo_app, "demo"),
    (files_app, "files"),
    (places_app, "places"),
    (products_app, "products"),
    (review_app, "access-review"),
):
    app.add_typer(sub, name=name)


def _actor() -> Principal:
    return system_principal(f"cli:{getpass.getuser()}")


def run_in_transaction(work: Callable[[AsyncSession, Settings], Awaitable[T]]) -> T:
    """Run ``work`` in one committed transaction; print a clear error and exit 1 on failure."""
    settings = get_settings()

    async def _main() -> T:
        engine = create_engine(settings)
        try:
            # The administrator on the server's command line holds the secret key anyway.
            async with transaction(rls.system_sessions(engine, settings)) as session:
                return await work(session, settings)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(_main())
    except AppError as exc:
        typer.echo(f"error: {exc.en}", err=True)
        raise typer.Exit(1) from None


@app.command()
def migrate() -> None:
    """Apply the database migrations (creates the embedded database when missing)."""
    from hypervision.migrate import MigrationError, upgrade
    from hypervision.policy.rls import role_of

    settings = get_settings()
    app_url = settings.effective_database_url
    owner_url = settings.database_owner_url or app_url
    app_role = role_of(app_url) if owner_url != app_url else None
    if app_role and app_role == role_of(owner_url):
        app_role = None
    try:
        done = upgrade(owner_url, app_role=app_role, settings=settings)
    except MigrationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(done.message)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address")] = None,
    port: Annotated[int | None, typer.Option(help="Port")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 1,
) -> None:
    """Serve the web app and the API."""
    import uvicorn

    from hypervision.core.logs import log_config
    from hypervision.soc.exporter import check_settings

    settings = get_settings()
    check_settings(settings)  # a wrong SOC setting stops here, named (not in a worker)
    host, port = host or settings.bind_host, port or settings.bind_port
    shown = f"[{host}]" if ":" in host else host
    typer.echo(f"Hypervision on http://{shown}:{port}/ (stop with Ctrl+C)")
    uvicorn.run(
        "hypervision.asgi:app",
        host=host,
        port=port,
        workers=workers,
        # The application applies forwarded_allow_ips itself (core.proxies): it must see the
        # socket's peer to know whether a request came through a trusted proxy.
        proxy_headers=False,
        log_config=log_config(),
        access_log=False,  # ours (hypervision.access) leaves out query strings
    )


@org_app.command("create")
def org_create(
    code: Annotated[str, typer.Option(help="Short code, e.g. MININT-DGPN")],
    name: Annotated[str, typer.Option(help="Full name")],
    parent: Annotated[str | None, typer.Option(help="Parent organisation code")] = None,
    mfa_required: Annotated[bool, typer.Option(help="Enforce MFA for its users")] = False,
) -> None:
    """Create an organisation."""
    data = OrganisationCreate(code=code, name=name, parent_code=parent, mfa_required=mfa_required)

    async def work(session: AsyncSession, _settings: Settings) -> None:
        org = await service.create_organisation(session=session, actor=_actor(), data=data)
        typer.echo(f"organisation {org.code} created ({org.id})")

    run_in_transaction(work)


@org_app.command("set")
def org_set(
    code: Annotated[str, typer.Argument(help="The organisation's code")],
    default_category: Annotated[
        str | None, typer.Option(help="Category its officers' new entries propose")
    ] = None,
    release_to: Annotated[
        list[str] | None,
        typer.Option(
            "--release-to",
            help="Organisation its officers' new entries are released to by default "
            "(repeat it; 'all' for every organisation, the default)",
        ),
    ] = None,
    allowed_networks: Annotated[
        str | None,
        typer.Option(
            "--allowed-networks",
            help="Networks its members may sign in and work from, comma-separated CIDRs "
            "(e.g. '10.0.0.0/8,2001:db8::/32'); '' for anywhere",
        ),
    ] = None,
    client_cert_required: Annotated[
        bool | None,
        typer.Option(
            "--client-cert-required/--no-client-cert-required",
            help="Its sign-ins need a client certificate verified by the ingress",
        ),
    ] = None,
) -> None:
    """Change an organisation's defaults for its officers' new entries, and where its
    members may sign in from."""
    audience = None
    if release_to is not None:
        audience = [] if release_to == ["all"] else release_to
    wanted = None
    if allowed_networks is not None:
        wanted = [n.strip() for n in allowed_networks.split(",") if n.strip()]

    async def work(session: AsyncSession, _settings: Settings) -> None:
        data = OrganisationUpdate(
            default_category=default_category,
            default_audience=audience,
            # checked here first: a clear error naming the field, not a traceback
            allowed_networks=None if wanted is None else networks.normalise(wanted),
            client_cert_required=client_cert_required,
        )
        org = await service.update_organisation(
            session=session, actor=_actor(), code=code, data=data
        )
        released = ", ".join(org.default_audience) or "every organisation"
        typer.echo(f"organisation {org.code}: new entries released to {released}")
        where = ", ".join(org.allowed_networks or []) or "any network"
        certificate = "required" if org.client_cert_required else "not required"
        typer.echo(f"organisation {org.code}: sign-in from {where}; certificate {certificate}")

    run_in_transaction(work)


@review_app.command("report")
def access_review_report(
    code: Annotated[str, typer.Argument(help="The organisation's code")],
    as_json: Annotated[bool, typer.Option("--json", help="The report as JSON")] = False,
) -> None:
    """Who holds which roles, clearance and groups in an organisation, their last activity,
    its dormant accounts, and the checksum a confirmation names (audited)."""
    from hypervision.identity import review

    async def work(session: AsyncSession, settings: Settings) -> None:
        found = await review.report(session=session, settings=settings, actor=_actor(), code=code)
        if as_json:
            typer.echo(found.model_dump_json(indent=2))
            return
        typer.echo(f"{found.organisation_code} — {found.organisation_name}")
        for a in found.accounts:
            state = "dormant" if a.dormant else ("active" if a.is_active else "disabled")
            typer.echo(
                f"{a.username}\t{state}\t{','.join(a.roles) or '-'}\t{a.clearance}\t"
                f"{','.join(a.groups) or '-'}\tlast activity {a.last_activity_at:%Y-%m-%d %H:%M}"
            )
        typer.echo(f"checksum {found.checksum}")
        if found.last_review:
            last = found.last_review
            when = f"{last.confirmed_at:%Y-%m-%d %H:%M}"
            typer.echo(f"last confirmed {when} by {last.confirmed_by_name}")
        else:
            typer.echo("never confirmed")

    run_in_transaction(work)


@review_app.command("disable-dormant")
def access_review_disable_dormant() -> None:
    """Disable the accounts without activity for HYPERVISION_DORMANT_AFTER_DAYS days (what the
    server does periodically): their sessions and tokens end; each disabling is audited."""
    from hypervision.identity import review

    async def work(session: AsyncSession, settings: Settings) -> None:
        if settings.dormant_after_days == 0:
            typer.echo("dormant accounts are kept (HYPERVISION_DORMANT_AFTER_DAYS=0)")
            return
        actor = system_principal(f"cli:{getpass.getuser()}")
        done = await review.disable_dormant(session=session, settings=settings, actor=actor)
        for user in done:
            typer.echo(f"user {user.username} disabled (dormant)")
        typer.echo(f"{len(done)} dormant account(s) disabled")

    run_in_transaction(work)


@group_app.command("create")
def group_create(
    code: Annotated[str, typer.Option()], name: Annotated[str, typer.Option()]
) -> None:
    """Create a need-to-know group."""
    data = GroupCreate(code=code, name=name)

    async def work(session: AsyncSession, _settings: Settings) -> None:
        group = await service.create_group(session=session, actor=_actor(), data=data)
        typer.echo(f"group {group.code} created")

    run_in_transaction(work)


def _read_password(username: str, from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass(f"Password for {username}: ")
    if getpass.getpass("Again: ") != first:
        typer.echo("error: the two passwords differ", err=True)
        raise typer.Exit(1)
    return first


@user_app.command("create")
def user_create(
    username: Annotated[str, typer.Option()],
    full_name: Annotated[str, typer.Option("--name")],
    org: Annotated[str, typer.Option(help="Organisation code")],
    clearance: Annotated[str, typer.Option(help="Clearance level, e.g. NP or DR")],
    role: Annotated[list[Role] | None, typer.Option(help="Role (repeat)")] = None,
    group: Annotated[list[str] | None, typer.Option(help="Need-to-know group (repeat)")] = None,
    email: Annotated[str | None, typer.Option()] = None,
    machine: Annotated[bool, typer.Option(help="Machine account: API tokens only")] = False,
    password_stdin: Annotated[bool, typer.Option(help="Read the password from stdin")] = False,
) -> None:
    """Create a user (asks for the password unless --machine)."""
    password = None if machine else _read_password(username, password_stdin)
    data = UserCreate(
        username=username,
        full_name=full_name,
        email=email,
        organisation_code=org,
        roles=role or [Role.OFFICER],
        clearance=clearance,
        groups=group or [],
        password=password,
        is_machine=machine,
    )

    async def work(session: AsyncSession, settings: Settings) -> None:
        user = await service.create_user(
            session=session,
            actor=_actor(),
            settings=settings,
            passwords=Passwords(settings),
            data=data,
        )
        typer.echo(f"user {user.username} created ({user.id})")

    run_in_transaction(work)


@user_app.command("disable")
def user_disable(username: str) -> None:
    """Disable an account and end all its sessions and tokens at once."""

    async def work(session: AsyncSession, _settings: Settings) -> None:
        user = await service.get_user_by_username(session=session, username=username)
        await service.disable_user(session=session, actor=_actor(), user_id=user.id)
        typer.echo(f"user {user.username} disabled; sessions and tokens revoked")

    run_in_transaction(work)


@user_app.command("set-clearance")
def user_set_clearance(username: str, level: str) -> None:
    """Change a user's clearance; it applies to their very next request."""

    async def work(session: AsyncSession, settings: Settings) -> None:
        user = await service.get_user_by_username(session=session, username=username)
        await service.set_clearance(
            session=session, actor=_actor(), settings=settings, user_id=user.id, clearance=level
        )
        typer.echo(f"user {user.username} clearance is now {level}")

    run_in_transaction(work)


@token_app.command("create")
def token_create(
    user: Annotated[str, typer.Option(help="Account the token acts as")],
    name: Annotated[str, typer.Option(help="What the token is for")],
    scope: Annotated[list[str], typer.Option(help="read, write, admin or audit (repeat)")],
    days: Annotated[int, typer.Option(help="Lifetime in days")] = 90,
) -> None:
    """Issue an API token; it is printed once and stored only hashed."""
    data = ApiTokenCreate(name=name, username=user, scopes=scope, expires_in_days=days)

    async def work(session: AsyncSession, settings: Settings) -> None:
        row, token = await auth.create_api_token(
            session=session, settings=settings, actor=_actor(), data=data
        )
        typer.echo(token)
        typer.echo(f"expires {row.expires_at.isoformat()}; scopes {','.join(row.scopes)}", err=True)

    run_in_transaction(work)


@audit_app.command("verify")
def audit_verify() -> None:
    """Exit 0 when the trail is intact; otherwise name the first record that fails. When the
    witness directory holds checkpoints, they are checked too (signature, chain, Merkle roots)."""
    from hypervision.audit import service as audit
    from hypervision.audit.checkpoints import CheckpointError, Witness, load_public_key
    from hypervision.audit.sequencer import queued

    settings = get_settings()
    witness = None
    if any(settings.audit_witness_path.glob("checkpoint-*.json")):
        try:
            public_key = load_public_key(settings.audit_public_key_path)
        except CheckpointError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        witness = Witness(settings.audit_witness_path, public_key)
    else:
        typer.echo(f"no signed checkpoints in {settings.audit_witness_path}: chain only", err=True)

    async def check(session: AsyncSession, _s: Settings) -> tuple[int, Any, audit.VerifyResult]:
        waiting, oldest = await queued(session)  # a stalled sequencer shows here
        return waiting, oldest, await audit.verify(session=session, witness=witness)

    waiting, oldest, result = run_in_transaction(check)

    async def note(session: AsyncSession, _s: Settings) -> None:
        # The outcome on the trail itself: a failure raises the security officers' alert
        # (alerts rule "audit_verify_failed", docs/adr/0040). Ids and counts only.
        await audit.record(
            session=session,
            actor=None,
            actor_name="cli",
            action="audit.verify",
            surface="cli",
            decision="allowed" if result.ok else "denied",
            resource_type="audit_record",
            detail={"checked": result.checked, "problem": (result.problem or "")[:300]},
        )

    try:
        run_in_transaction(note)
    except Exception as exc:  # noqa: BLE001 - the verdict stands even if it cannot be noted
        typer.echo(
            f"warning: the verification could not be recorded ({type(exc).__name__})", err=True
        )
    if waiting:
        typer.echo(
            f"{waiting} records were waiting to be chained (the oldest written at "
            f"{oldest:%Y-%m-%d %H:%M:%S} UTC): chained now",
            err=True,
        )
    if result.ok:
        signed = ""
        if witness is not None:
            signed = (
                f"; {result.checkpoints} signed checkpoints (key {witness.key_id}) "
                f"cover records 1..{result.checkpointed}"
            )
            if marker := witness.latest_marker():
                signed += f"; records 1..{marker.through_seq} pruned ({marker.file_name})"
        typer.echo(f"audit trail intact: {result.checked} records verified{signed}")
        return
    typer.echo(f"AUDIT TRAIL BROKEN: {result.problem} ({result.checked} verified before)", err=True)
    raise typer.Exit(1)


@audit_app.command("keygen")
def audit_keygen() -> None:
    """Create the Ed25519 key that signs checkpoints (mode 0600) and its public key next to
    it. Never overwrites a key."""
    from hypervision.audit.checkpoints import CheckpointError, generate_key

    settings = get_settings()
    try:
        kid = generate_key(settings.audit_key_path, settings.audit_public_key_path)
    except (CheckpointError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"signing key {settings.audit_key_path} created (key id {kid})")
    typer.echo(f"public key {settings.audit_public_key_path}: give it to the verifiers")


@audit_app.command("checkpoint")
def audit_checkpoint() -> None:
    """Sign the records written since the last checkpoint into the witness directory (nothing
    when there are none). Run it every few minutes (cron, Kubernetes CronJob)."""
    from hypervision.audit.checkpoints import CheckpointError, load_private_key, write_checkpoints

    settings = get_settings()
    try:
        key = load_private_key(settings.audit_key_path)
        written = run_in_transaction(
            lambda session, s: write_checkpoints(
                session=session, witness_dir=s.audit_witness_path, private_key=key
            )
        )
    except CheckpointError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    for checkpoint in written:
        typer.echo(
            f"checkpoint {checkpoint.file_name}: records "
            f"{checkpoint.first_seq}..{checkpoint.last_seq} signed"
        )
    if not written:
        typer.echo("no new audit records since the last checkpoint")


@audit_app.command("prune")
def audit_prune(
    before: Annotated[
        str | None, typer.Option(help="Cut-off, ISO date (UTC); default: now minus retention")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Only print what would be removed")] = False,
) -> None:
    """Remove whole checkpointed segments older than the retention (oldest first), each
    verified against its signed checkpoint first; sign a prune marker (docs/adr/0010)."""
    from hypervision.audit.checkpoints import CheckpointError, load_private_key, load_public_key
    from hypervision.audit.prune import cutoff, run_prune

    settings = get_settings()
    try:
        limit = cutoff(settings, before)
        public = load_public_key(settings.audit_public_key_path)
        private = None if dry_run else load_private_key(settings.audit_key_path)
        report = asyncio.run(
            run_prune(
                settings,
                public_key=public,
                private_key=private,
                before=limit,
                actor=_actor(),
                dry_run=dry_run,
            )
        )
    except CheckpointError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    verb = "would remove" if dry_run else "removed"
    for cp in report.segments:
        typer.echo(f"{verb} records {cp.first_seq}..{cp.last_seq} ({cp.count}, {cp.file_name})")
    typer.echo(f"{verb} {report.removed} audit records older than {limit.isoformat()}")


@audit_app.command("export")
def audit_export(
    output: Annotated[Path | None, typer.Option(help="File to write (default: stdout)")] = None,
    since: Annotated[int, typer.Option(help="Only records after this sequence number")] = 0,
) -> None:
    """Write the trail as JSON lines, one record a line, for a SIEM."""
    from hypervision.audit import service as audit

    async def work(session: AsyncSession, _settings: Settings) -> int:
        count = 0
        with output.open("w", encoding="utf-8") if output else _stdout() as sink:
            async for line in audit.export(session=session, since_seq=since):
                sink.write(line + "\n")
                count += 1
        return count

    count = run_in_transaction(work)
    typer.echo(f"{count} records exported", err=True)


@audit_app.command("ship")
def audit_ship(
    once: Annotated[bool, typer.Option("--once", help="Send what is there, then stop")] = False,
    follow: Annotated[bool, typer.Option("--follow", help="Keep sending (Ctrl+C stops)")] = False,
) -> None:
    """Send the trail to the SOC's configured sinks (HYPERVISION_SOC_SYSLOG_URL,
    HYPERVISION_SOC_JSONL_PATH) from their cursors, as the server does (docs/adr/0037)."""
    from hypervision.soc.exporter import Exporter, LeaseHeld, exporters_from, ship_once
    from hypervision.soc.sinks import SinkError

    if once == follow:
        typer.echo("error: give --once or --follow", err=True)
        raise typer.Exit(2)
    settings = get_settings()

    async def _main() -> list[tuple[Exporter, int | str]]:
        engine = create_engine(settings)
        exporters: list[Exporter] = []
        try:
            sessions = rls.system_sessions(engine, settings)
            exporters = exporters_from(settings, sessions, sequence=True)
            if not exporters:
                raise SocNotConfigured()
            if follow:
                await asyncio.gather(*(e.run() for e in exporters))
            done: list[tuple[Exporter, int | str]] = []
            for exporter in exporters:
                try:
                    done.append((exporter, await ship_once(exporter)))
                except (SinkError, LeaseHeld) as exc:
                    done.append((exporter, str(exc)))
            return done
        finally:
            for exporter in exporters:  # gives the leases up (Ctrl+C in --follow too)
                await exporter.stop()
            await engine.dispose()

    try:
        done = asyncio.run(_main())
    except SocNotConfigured:
        typer.echo(
            "error: no SOC sink configured "
            "(HYPERVISION_SOC_SYSLOG_URL, HYPERVISION_SOC_JSONL_PATH)",
            err=True,
        )
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        return
    failed = False
    for exporter, outcome in done:
        if isinstance(outcome, str):
            failed = True
            typer.echo(f"error: {exporter.sink.name}: {outcome}", err=True)
        else:
            typer.echo(
                f"{exporter.sink.name}: {outcome} messages sent, "
                f"records up to {exporter.state.cursor}"
            )
    if failed:
        raise typer.Exit(1)


class SocNotConfigured(Exception):
    pass


@audit_app.command("verify-export")
def audit_verify_export(
    files: Annotated[list[Path], typer.Argument(help="JSON lines files (rotated ones too)")],
    public_key: Annotated[
        Path | None,
        typer.Option(help="The audit public key (default: HYPERVISION_AUDIT_PUBLIC_KEY_FILE)"),
    ] = None,
) -> None:
    """Check a received JSON lines export: no gap, the hash chain, and the signed
    checkpoints over the records received. Exit 0 when it holds."""
    from hypervision.audit.checkpoints import CheckpointError, load_public_key
    from hypervision.soc.verify import verify_export

    key = None
    path = public_key
    if path is None:
        candidate = get_settings().audit_public_key_path
        path = candidate if candidate.is_file() else None
    try:
        key = load_public_key(path) if path is not None else None
    except CheckpointError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if key is None:
        typer.echo("no audit public key: checking the chain only, not the checkpoints", err=True)

    def lines() -> Iterator[bytes]:
        for file in files:
            try:
                with file.open("rb") as source:
                    yield from source
            except OSError as exc:
                typer.echo(f"error: {file}: {exc.strerror or exc}", err=True)
                raise typer.Exit(1) from None

    report = verify_export(lines(), key)
    for name in report.skipped:
        typer.echo(f"{name}: not all its records are in the export, not checked", err=True)
    if report.unreadable:
        typer.echo(f"{report.unreadable} unreadable lines skipped (a write cut short)", err=True)
    if not report.ok:
        for problem in report.problems:
            typer.echo(f"EXPORT BROKEN: {problem}", err=True)
        raise typer.Exit(1)
    span = f"records {report.first_seq}..{report.last_seq}" if report.records else "no records"
    typer.echo(
        f"export intact: {span} ({report.records} distinct, {report.duplicates} duplicates), "
        f"{report.recomputed} hashes recomputed, {report.checkpoints} signed checkpoints "
        f"verified (records 1..{report.signed_through})"
    )


def _stdout() -> TextIO:
    return open(sys.stdout.fileno(), "w", encoding="utf-8", closefd=False)


@files_app.command("sweep")
def files_sweep(
    hours: Annotated[int, typer.Option(help="Only blobs older than this many hours")] = 1,
) -> None:
    """Delete stored files that no attachment nor shared document references (left by a
    crash mid-upload)."""
    from datetime import timedelta

    from hypervision.hub.models import HubDocument
    from hypervision.logbook.attachments import sweep_orphan_blobs
    from hypervision.storage.blobs import LocalBlobStore

    async def work(session: AsyncSession, settings: Settings) -> int:
        store = LocalBlobStore(settings.blob_dir)
        store.purge_temporary()
        removed = await sweep_orphan_blobs(
            session=session,
            actor=_actor(),
            blobs=store,
            older_than=timedelta(hours=hours),
            also_used=[HubDocument.storage_key],  # the hub's documents share the store
        )
        return len(removed)

    typer.echo(f"{run_in_transaction(work)} orphan file(s) removed")


def import_places(path: Path, *, strict: bool) -> place_import.ImportReport:
    """Import an address file with the system's sessions; exit 1 when it is no such file."""
    settings = get_settings()

    async def _main() -> place_import.ImportReport:
        engine = create_engine(settings)
        try:
            return await place_import.import_file(
                sessions=rls.system_sessions(engine, settings),
                actor=_actor(),
                path=path,
                strict=strict,
                addok_url=settings.addok_url,
            )
        finally:
            await engine.dispose()

    try:
        return asyncio.run(_main())
    except addresses.FileError as exc:
        typer.echo(f"erreur : {path.name} : {exc.fr}", err=True)
        raise typer.Exit(1) from None
    except PlacesUnavailable:
        typer.echo(
            f"erreur : addok injoignable (Redis {settings.addok_redis}, "
            "HYPERVISION_ADDOK_REDIS) ; les lots déjà écrits restent, relancez l'import",
            err=True,
        )
        raise typer.Exit(1) from None
    except OSError as exc:
        typer.echo(f"erreur : {path} illisible ({exc.strerror or exc})", err=True)
        raise typer.Exit(1) from None


@places_app.command("import")
def places_import(
    file: Annotated[Path, typer.Argument(help="adresses-XX.csv (or .csv.gz) of the BAN.")],
    strict: Annotated[
        bool, typer.Option("--strict", help="Stop at the first bad row instead of skipping it.")
    ] = False,
) -> None:
    """Import (or update: rows are matched by their id) an address file in the national
    address base's CSV format. Exit status: 0 all rows imported, 2 bad rows skipped, 1 stopped."""
    report = import_places(file, strict=strict)
    for error in report.errors:
        typer.echo(f"{file.name}: {error}", err=True)
    if report.error_count > len(report.errors):
        typer.echo(f"… et {report.error_count - len(report.errors)} autre(s) erreur(s)", err=True)
    into = " dans addok" if get_settings().addok_url else ""
    typer.echo(
        f"{report.imported} adresse(s) importée(s){into}, {report.error_count} ligne(s) en erreur"
    )
    if report.stopped:
        typer.echo(
            f"import arrêté à la {report.stopped} ; les {report.imported} adresses importées "
            "avant restent : corrigez le fichier et relancez (elles seront mises à jour)",
            err=True,
        )
        raise typer.Exit(1)
    if report.error_count:
        raise typer.Exit(2)


@products_app.command("import")
def products_import(
    product: Annotated[str, typer.Argument(help="The product's identifier (slug).")],
    file: Annotated[Path, typer.Argument(help="CSV, XLSX, ODS, JSON, GeoJSON or Parquet.")],
    steward: Annotated[
        str, typer.Option("--as", help="Username of a data steward of the product's domain.")
    ],
    mode: Annotated[str, typer.Option(help="replace, append or upsert.")] = "replace",
) -> None:
    """Import a file as the product's next data version, in the name of one of its stewards.
    Nothing is written when any row is wrong: the errors are listed (exit status 1)."""
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from hypervision.identity.auth import Client, build_principal
    from hypervision.identity.models import User
    from hypervision.products import service as products
    from hypervision.products.models import DataProduct

    steps = {
        "read": "lecture du fichier",
        "check": "contrôles",
        "write": "écriture",
        "quality": "règles de qualité",
    }
    order = list(products.IMPORT_STEPS)
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
        TextColumn("étape {task.completed:.0f}/{task.total:.0f}"), TimeElapsedColumn(),
        transient=True,
    ) as progress:  # fmt: skip
        task = progress.add_task("connexion", total=len(steps))

        async def work(session: AsyncSession, settings: Settings) -> products.Imported:
            user = await session.scalar(select(User).where(User.username == steward.lower()))
            found = await session.scalar(select(DataProduct.id).where(DataProduct.slug == product))
            if user is None or found is None:
                raise NotFound(
                    f"Inconnu : {'utilisateur ' + steward if user is None else product}.",
                    f"Unknown: {'user ' + steward if user is None else product}.",
                )
            actor = await build_principal(
                session=session, user=user, scopes=None, client=Client("cli", None),
                surface="cli",
            )  # fmt: skip
            try:
                with file.open("rb") as source:
                    return await products.import_data(
                        session=session, settings=settings, actor=actor, product_id=found,
                        source=source, filename=file.name, media_type=None, mode=mode,
                        on_step=lambda name: progress.update(
                            task, description=steps[name], completed=order.index(name)
                        ),
                    )  # fmt: skip
            except AppError as exc:
                for row in exc.extra.get("rows", []):
                    where = f"ligne {row['row']}" + (f", {row['field']}" if row["field"] else "")
                    typer.echo(f"{file.name}: {where} : {row['message']}", err=True)
                raise

        try:
            imported = run_in_transaction(work)
        except OSError as exc:
            typer.echo(f"erreur : {file} illisible ({exc.strerror or exc})", err=True)
            raise typer.Exit(1) from None
    version = imported.version
    typer.echo(
        f"{product} : version {version.number} — {version.rows_added} ajoutée(s), "
        f"{version.rows_changed} modifiée(s), {version.rows_removed} retirée(s), "
        f"{version.row_count} ligne(s) en tout"
    )


@products_app.command("poll")
def products_poll(
    product: Annotated[
        str | None, typer.Argument(help="A product's identifier (slug): run its source now.")
    ] = None,
) -> None:
    """Run the HTTP sources that are due (or the one of PRODUCT, due or not), as the serving
    processes' poller does; one line per run. Exit status 1 when a run failed."""
    from hypervision.products import sources
    from hypervision.products.models import DataProduct
    from hypervision.products.source_models import ProductSourceRun, RunStatus, RunTrigger

    settings = get_settings()

    async def _main() -> tuple[list[ProductSourceRun], dict[Any, str]]:
        engine = create_engine(settings)
        try:
            sessions = rls.system_sessions(engine, settings)
            runs = await sources.poll(sessions, settings, slug=product, trigger=RunTrigger.CLI)
            async with transaction(sessions) as session:
                ids = [run.product_id for run in runs]
                slugs = await session.execute(
                    select(DataProduct.id, DataProduct.slug).where(DataProduct.id.in_(ids))
                )
                return runs, {pid: slug for pid, slug in slugs.all()}
        finally:
            await engine.dispose()

    runs, slugs = asyncio.run(_main())
    if product and not runs:
        typer.echo(f"erreur : {product} n'a pas de source (ou pas de tel produit)", err=True)
        raise typer.Exit(1)
    for run in runs:
        done = f"version {run.data_version}, {run.rows} ligne(s)" if run.data_version else ""
        http = f"HTTP {run.http_status}" if run.http_status else "pas de réponse"
        name = slugs.get(run.product_id, str(run.product_id))
        line = f"{name} : {run.status} ({http}, {run.duration_ms} ms) {done}".strip()
        typer.echo(line + (f" — {run.error}" if run.error else ""))
    typer.echo(f"{len(runs)} source(s) exécutée(s)")
    if any(run.status == RunStatus.FAILED for run in runs):
        raise typer.Exit(1)


@products_app.command("quality")
def products_quality(
    product: Annotated[str, typer.Argument(help="The product's identifier (slug).")],
) -> None:
    """Check the product's quality rules now, keep the run and print the report. Exit status:
    0 every rule passes, 2 a warning rule fails, 1 a blocking rule fails."""
    from hypervision.audit import service as audit_service
    from hypervision.products import quality
    from hypervision.products.models import DataProduct

    async def work(session: AsyncSession, settings: Settings) -> quality.Checked:
        found = await session.scalar(select(DataProduct).where(DataProduct.slug == product))
        if found is None:
            raise NotFound(f"Produit inconnu : {product}.", f"Unknown product: {product}.")
        checked, run = await quality.check_now(session=session, product=found, trigger="manual")
        await audit_service.record(
            session=session, actor=_actor(), action="product.quality_check", surface="cli",
            resource_type="product", resource_ids=[found.id, run.id],
            labels=[found.label_level], detail={"score": run.score, "failed": run.failed_rules},
        )  # fmt: skip
        return checked

    checked = run_in_transaction(work)
    if not checked.results:
        typer.echo(f"{product} : aucune règle de qualité")
        return
    score = checked.score or 0.0
    typer.echo(f"{product} : version {checked.data_version}, {checked.row_count} ligne(s), "
               f"score {score:.1%}{' — PÉRIMÉ' if checked.stale else ''}")  # fmt: skip
    for result in checked.results:
        state = "ok" if result.passed else ("ÉCHEC" if result.rule.blocking else "alerte")
        counts = f"{result.failing}/{result.checked}" if result.rule.per_row else result.detail
        typer.echo(f"  [{state}] {result.rule.id} ({result.rule.severity}) "
                   f"{result.rule.describe()} : {result.score:.1%} ({counts})")  # fmt: skip
        for line in result.report[:5]:
            typer.echo(f"      {line['message']}")
        if result.failing > 5 and result.rule.per_row:
            typer.echo(f"      … et {result.failing - 5} autre(s)")
    failed = [r for r in checked.results if not r.passed]
    if any(r.rule.blocking for r in failed):
        raise typer.Exit(1)
    if failed:
        raise typer.Exit(2)


@demo_app.command("load")
def demo_load() -> None:
    """Load the demo organisations, users, main courante, data products and hub (nothing when
    already there), and the addresses of the venues' streets (updated in place)."""
    from hypervision.demo import addresses as demo_addresses
    from hypervision.demo import events, scenario
    from hypervision.demo import feeds as demo_feeds
    from hypervision.demo import hub as demo_hub
    from hypervision.demo import opendata as demo_opendata
    from hypervision.demo import products as demo_products
    from hypervision.demo import spaces as demo_spaces

    users = run_in_transaction(lambda session, settings: scenario.load(session, settings))
    typer.echo(f"demo: {users} users created" if users else "demo users already loaded")
    made = run_in_transaction(lambda session, settings: events.load(session, settings))
    typer.echo(f"demo: {made} entries created" if made else "demo entries already loaded")
    products = run_in_transaction(lambda session, settings: demo_products.load(session, settings))
    typer.echo(f"demo: {products} data products" if products else "demo products already loaded")
    published = run_in_transaction(lambda session, settings: demo_opendata.load(session, settings))
    typer.echo(f"demo: {published} open datasets" if published else "demo open data already loaded")
    shifts = run_in_transaction(lambda session, settings: demo_hub.load(session, settings))
    typer.echo(f"demo: {shifts} shifts on duty" if shifts else "demo hub already loaded")
    spaces = run_in_transaction(lambda session, settings: demo_spaces.load(session, settings))
    typer.echo(f"demo: {spaces} spaces" if spaces else "demo spaces already loaded")
    url = run_in_transaction(lambda session, settings: demo_feeds.attach(session, settings))
    if url:
        typer.echo(f"demo: heat alerts polled from {url}")
    report = import_places(demo_addresses.DEMO_FILE, strict=True)
    typer.echo(f"demo: {report.imported} addresses imported")


@demo_app.command("otp")
def demo_otp(username: str) -> None:
    """Print the current TOTP code of a demo account (demo accounts only)."""
    from hypervision.demo.scenario import demo_usernames
    from hypervision.identity import mfa

    if username not in demo_usernames():
        typer.echo(f"error: {username} is not a demo account", err=True)
        raise typer.Exit(1)

    async def work(session: AsyncSession, settings: Settings) -> str:
        user = await service.get_user_by_username(session=session, username=username)
        return mfa.current_otp(settings, user)

    typer.echo(run_in_transaction(work))


@app.command("backup")
def backup_store(
    output: Annotated[Path, typer.Option("--output", help="Archive to write (.tar.gz)")],
) -> None:
    """Back up the embedded store (database snapshot + attachment files + manifest) into one
    archive, while the server may keep running. PostgreSQL: see README, Backup and restore."""
    from hypervision import backup as backups

    try:
        report = backups.backup(get_settings(), output)
    except backups.BackupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"backup {report.path} written ({report.size} bytes): database at revision "
        f"{report.revision}, {report.blobs} attachment file(s), audit head {report.audit_seq}"
    )


@app.command("restore")
def restore_store(
    archive: Annotated[Path, typer.Argument(help="Archive written by hypervision backup")],
    force: Annotated[
        bool, typer.Option(help="Move the existing database aside instead of refusing")
    ] = False,
) -> None:
    """Check a backup archive completely, then restore it into the data directory and verify
    its audit trail. Stop the server first."""
    from hypervision import backup as backups

    try:
        report = backups.restore(get_settings(), archive, force=force)
    except backups.BackupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    for path in report.moved_aside:
        typer.echo(f"previous data moved aside to {path}")
    typer.echo(
        f"restored {report.database} (backup of {report.created_at}) and "
        f"{report.blobs} attachment file(s)"
    )
    typer.echo(
        f"audit trail intact: {report.audit_checked} records verified, "
        f"head {report.audit_seq} {report.audit_hash}"
    )
    if report.migrate_needed:
        typer.echo("run `hypervision migrate` before serving: the backup predates this version")


def main() -> None:
    try:
        app()
    except ConfigError as exc:
        print(f"hypervision: {exc}", file=sys.stderr)  # noqa: T201
        sys.exit(2)
