"""Settings read from ``HYPERVISION_*`` variables and an optional env file.

The env file is named by ``HYPERVISION_CONFIG_FILE``; variables override it. An invalid or
missing setting stops start-up with one line naming the setting (see ``describe_error``).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "HYPERVISION_"
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


# The policy's role names (``policy.roles.Role``, which builds on this module: settings name
# roles without importing the policy; tests/test_config.py checks that both agree).
ROLE_NAMES = frozenset(
    {
        "officer",
        "watch_officer",
        "authority",
        "data_steward",
        "administrator",
        "organisation_administrator",
        "security_officer",
    }
)


class ClaimToValue(BaseModel):
    """An administrator's rule: the value of one claim (a string, or each string of a list)
    looked up in ``map``; ``default`` when nothing matches (None: no value)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    claim: str = Field(min_length=1, max_length=200)
    map: dict[str, str] = Field(default_factory=dict)
    default: str | None = None


class ClaimToList(BaseModel):
    """An administrator's rule mapping one claim's values to lists (roles, groups): the lists
    of every value found are joined; ``default`` when nothing matches."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    claim: str = Field(min_length=1, max_length=200)
    map: dict[str, list[str]] = Field(default_factory=dict)
    default: list[str] = Field(default_factory=list)


class OidcProvider(BaseModel):
    """One OpenID Connect provider beside local accounts (docs/adr/0033)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")  # in URLs: /connexion/oidc/{name}
    title: str = Field(min_length=1, max_length=80)
    issuer: str
    client_id: str = Field(min_length=1, max_length=500)
    client_secret: str = ""  # empty: a public client (PKCE only)
    scopes: str = "openid email profile"
    organisation: ClaimToValue
    roles: ClaimToList | None = None
    clearance: ClaimToValue | None = None
    groups: ClaimToList | None = None

    @field_validator("issuer")
    @classmethod
    def _check_issuer(cls, value: str) -> str:
        parts = urlsplit(value)
        loopback = parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS
        if not (parts.scheme == "https" or loopback) or not parts.hostname:
            raise ValueError("must be an https:// URL (http:// only on the loopback address)")
        if parts.query or parts.fragment:
            raise ValueError("must have no query nor fragment")
        return value.rstrip("/")

    @field_validator("scopes")
    @classmethod
    def _check_scopes(cls, value: str) -> str:
        words = value.split()
        if "openid" not in words:
            raise ValueError("must include openid")
        if not all(re.fullmatch(r"[\x21\x23-\x5b\x5d-\x7e]+", w) for w in words):
            raise ValueError("must be scope names separated by spaces")
        return " ".join(words)

    @field_validator("roles")
    @classmethod
    def _check_roles(cls, value: ClaimToList | None) -> ClaimToList | None:
        known = ROLE_NAMES
        for roles in [*(value.map.values() if value else ()), value.default if value else []]:
            unknown = sorted(set(roles) - known)
            if unknown:
                raise ValueError(f"unknown role {unknown[0]!r} (known: {', '.join(sorted(known))})")
        return value

    @model_validator(mode="after")
    def _check_organisation(self) -> OidcProvider:
        if not self.organisation.map and self.organisation.default is None:
            raise ValueError("organisation: give a map of claim values or a default")
        return self


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    data_dir: Path = Path("var")
    database_url: str = ""
    # PostgreSQL: the owner role that runs the migrations. The application then connects with
    # ``database_url`` as a separate role that owns nothing and is held by row-level security;
    # ``hypervision migrate`` grants that role what it needs and nothing more.
    database_owner_url: str = ""
    secret_key: str = Field(min_length=32)

    label_levels: Annotated[tuple[str, ...], NoDecode] = ("NP", "DR")
    categories: Annotated[tuple[str, ...], NoDecode] = (
        "security",
        "public_order",
        "rescue",
        "health",
        "transport",
        "traffic",
        "environment",
        "weather",
        "logistics",
        "cyber",
        "communication",
    )
    attachment_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1024, le=1024**3)
    layer_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1024, le=1024**3)
    # Data products: the largest file an import reads (streamed to a temporary file).
    product_max_bytes: int = Field(default=256 * 1024 * 1024, ge=1024, le=8 * 1024**3)
    # Product sources polled over HTTP (docs/adr/0029): the hosts a steward may point a source
    # at ("donnees.example.gouv.fr", "*.meteo.example", or an IP address); empty: sources are
    # off. A host's addresses must be public unless their network is listed in
    # product_source_networks (CIDRs) or the host is listed as an IP address itself.
    product_source_hosts: Annotated[tuple[str, ...], NoDecode] = ()
    product_source_networks: Annotated[tuple[str, ...], NoDecode] = ()
    product_source_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    product_source_poll_seconds: float = Field(default=30.0, ge=0, le=3600)  # 0: poller off
    # The demo's own open-data feed (/demo/flux/…), polled by a demo product's source.
    demo_feeds: bool = False
    label_ceiling: str = "DR"
    # The hub's announcements (docs/adr/0042): the organisations (codes) whose watch officers
    # and authorities publish them, with their sub-organisations; empty: nobody does.
    hub_announcers: Annotated[tuple[str, ...], NoDecode] = ("MININT-CNCS",)
    # The protection marking shown on every page (and document) holding a record of that level;
    # a level above the lowest that is missing here is marked with its code.
    label_markings: dict[str, str] = {"DR": "DIFFUSION RESTREINTE"}

    # Base map tiles (e.g. a sovereign tile server: the IGN Géoplateforme). Empty: no tiles, the
    # map draws the boundaries installed with the application.
    map_tiles_url: str = ""
    # A self-hosted vector base map: one PMTiles file the operator provides (e.g. an extract of
    # France), served by the application itself with range requests; drawn before the tiles.
    map_pmtiles: Path | None = None
    map_tiles_attribution: str = ""

    # The address search's engine (docs/adr/0030): "embedded" searches the database's places
    # table (SQLite FTS5 trigrams, PostgreSQL pg_trgm); "addok" imports into and searches addok
    # against the Redis database of addok_redis (a whole-country file).
    places_engine: Literal["embedded", "addok"] = "embedded"
    addok_redis: str = "redis://127.0.0.1:6379/0"

    session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    session_absolute_hours: int = Field(default=12, ge=1, le=7 * 24)
    cookie_secure: bool = True
    mfa_required_for_dr: bool = False

    login_max_failures: int = Field(default=5, ge=1, le=1000)
    login_ip_max_failures: int = Field(default=50, ge=1, le=100000)
    login_window_seconds: int = Field(default=15 * 60, ge=1)
    # Bulk exports (map GeoJSON, synthesis PDF) per user in a fixed window (SECURITY.md item 13).
    export_max_per_window: int = Field(default=30, ge=1, le=100_000)
    export_window_seconds: int = Field(default=15 * 60, ge=1, le=24 * 3600)

    argon2_time_cost: int = Field(default=3, ge=1, le=20)
    argon2_memory_kib: int = Field(default=64 * 1024, ge=8, le=4 * 1024 * 1024)
    argon2_parallelism: int = Field(default=2, ge=1, le=16)
    argon2_concurrency: int = Field(default=4, ge=1, le=64)

    api_token_max_days: int = Field(default=365, ge=1, le=3650)

    # OpenID Connect providers beside local accounts (docs/adr/0033): a JSON list of
    # {name, title, issuer, client_id, client_secret, scopes, organisation, roles, clearance,
    # groups}; empty: local accounts only.
    oidc_providers: Annotated[tuple[OidcProvider, ...], NoDecode] = ()
    # How long a provider's discovery document and keys are kept before being read again.
    oidc_discovery_seconds: float = Field(default=3600.0, gt=0, le=7 * 24 * 3600)
    oidc_timeout_seconds: float = Field(default=10.0, gt=0, le=120)

    # What wakes the live hubs of every replica after a commit (docs/adr/0019): "auto" is
    # PostgreSQL's LISTEN/NOTIFY on PostgreSQL, nothing on SQLite (one process); "nats"
    # publishes the transaction's highest outbox id to nats_subject, a JetStream subject, after
    # commit, and no commit runs pg_notify. nats_url: one server URL or several, comma-separated.
    live_bus: Literal["auto", "inprocess", "postgres", "nats"] = "auto"
    nats_url: str = "nats://127.0.0.1:4222"
    nats_subject: str = "hypervision.outbox"
    live_queue_size: int = Field(default=256, ge=1, le=100_000)
    live_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    live_heartbeat_seconds: float = Field(default=15.0, gt=0, le=300)
    # A burst of stream openings (docs/adr/0015): this many authenticate (or read a backlog)
    # at once, holding a connection; the others queue for up to live_open_wait_seconds (503).
    live_open_concurrency: int = Field(default=8, ge=1, le=1000)
    live_open_wait_seconds: float = Field(default=120.0, gt=0, le=3600)

    # E-mail to the recipients of syntheses (none configured: in-app inbox only).
    smtp_host: str = ""
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_starttls: bool = False
    smtp_tls: bool = False  # implicit TLS from the first byte (SMTPS, port 465)
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_from: str = "hypervision@localhost"
    smtp_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    public_url: str = "http://127.0.0.1:8000"  # links in e-mails
    schedule_poll_seconds: float = Field(default=30.0, ge=0, le=3600)  # 0: schedules off
    quality_check_seconds: float = Field(default=300.0, ge=0, le=86400)  # 0: no scheduled checks
    # Open data (docs/adr/0035): scheduled releases polled every so often (0: off), and the
    # public API's rate limit per client address and replica (a token bucket).
    opendata_refresh_seconds: float = Field(default=60.0, ge=0, le=86400)
    opendata_rate_per_second: float = Field(default=20.0, gt=0, le=100_000)
    opendata_burst: int = Field(default=100, ge=1, le=1_000_000)
    # The public answers' cache (ADR 0049): its size, its entries' life (0 turns it off),
    # and how often a replica re-reads what is public (the staleness bound across replicas).
    opendata_cache_bytes: int = Field(default=64 * 1024 * 1024, ge=1024, le=2**34)
    opendata_cache_seconds: float = Field(default=60.0, ge=0, le=3600)
    opendata_cache_check_seconds: float = Field(default=2.0, gt=0, le=60)

    bind_host: str = "127.0.0.1"
    bind_port: int = Field(default=8000, ge=1, le=65535)
    forwarded_allow_ips: str = "127.0.0.1"  # proxies trusted for X-Forwarded-For
    # Filtered upstream (docs/adr/0038): the header the ingress sets once it has verified a
    # client certificate, and the value meaning "verified". Read only on requests relayed by a
    # proxy of ``forwarded_allow_ips``; empty: no organisation can require a certificate.
    client_cert_header: str = Field(default="", max_length=100, pattern=r"^[A-Za-z0-9-]*$")
    client_cert_value: str = Field(default="SUCCESS", min_length=1, max_length=200)
    # Access review (docs/adr/0038): an account without activity for this many days is
    # disabled by the periodic job (0: never); how often the job runs (0: not in the app).
    dormant_after_days: int = Field(default=90, ge=0, le=3650)
    dormant_check_seconds: float = Field(default=3600.0, ge=0, le=86400 * 7)
    # Security alerts (docs/adr/0046): the operator's address ranges → country table for the
    # "new country" rule (CSV, see alerts/countries.py; none: the rule says nothing), and the
    # alert e-mails' loop: how often it looks for mails due (0: not in the app), the first
    # retry delay (doubled at each failure, up to an hour) and the attempts before giving up.
    ip_country_file: Path | None = None
    alert_mail_poll_seconds: float = Field(default=5.0, ge=0, le=3600)
    alert_mail_retry_seconds: float = Field(default=30.0, gt=0, le=3600)
    alert_mail_attempts: int = Field(default=12, ge=1, le=100)
    # The networks (CIDRs) whose clients may read /metrics (docs/adr/0032): the monitoring
    # network. Empty: /metrics is off. Anyone else gets 404.
    metrics_allow: Annotated[tuple[str, ...], NoDecode] = ("127.0.0.0/8", "::1/128")
    db_connect_timeout_seconds: float = Field(default=1.0, gt=0, le=60)
    # PostgreSQL time-outs (docs/adr/0015): a statement running longer than this is cancelled
    # (server side, and client side too so that a frozen server cannot hold a request), a lock
    # waited for longer than this fails; both answer 503. 0 turns the lock time-out off.
    db_statement_timeout_seconds: float = Field(default=15.0, gt=0, le=3600)
    db_lock_timeout_seconds: float = Field(default=5.0, ge=0, le=3600)
    # The connection pool: a burst of requests (e.g. 1,500 streams opened at once) queues for a
    # connection for up to db_pool_timeout_seconds before answering 503.
    db_pool_size: int = Field(default=10, ge=1, le=1000)
    db_pool_max_overflow: int = Field(default=10, ge=0, le=1000)
    db_pool_timeout_seconds: float = Field(default=30.0, gt=0, le=300)
    # A pooled connection idle this long is pinged before use, and replaced if dead (ADR 0055);
    # one used more recently is not. 0 pings at every use.
    db_ping_idle_seconds: float = Field(default=1.0, ge=0, le=3600)
    # /readyz answers within this (503 when the database has not answered by then).
    readiness_timeout_seconds: float = Field(default=0.8, gt=0, le=30)
    # SQLite's PRAGMA synchronous: FULL (the default) makes every commit durable before the
    # answer (docs/security.md item 24). Only the test suite lowers it, to NORMAL, outside
    # its durability and backup tests.
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"

    # Signed audit checkpoints (docs/adr/0010): the private key and the witness directory live
    # outside the database. Unset: <data_dir>/keys/audit-ed25519.pem, its .pub next to it, and
    # <data_dir>/audit-witness.
    audit_signing_key_file: Path | None = None
    audit_public_key_file: Path | None = None
    audit_witness_dir: Path | None = None
    # Retention (SECURITY.md 23): `audit prune` removes whole checkpointed segments whose last
    # record is older than this.
    audit_retention_days: int = Field(default=1095, ge=1)
    # Queued audit records are chained by a sequencer in each serving process, woken by the
    # process's own commits and at least this often (docs/adr/0018).
    audit_sequence_seconds: float = Field(default=0.25, gt=0, le=60)

    # Handing the trail to the SOC (docs/adr/0037). soc_syslog_url: tls://host:port, RFC 5424
    # syslog over TLS with octet counting (RFC 5425); the server's certificate is checked
    # against soc_ca_file (else the system's CAs); soc_client_cert_file and soc_client_key_file
    # when the collector wants a client certificate. soc_jsonl_path: JSON lines appended to a
    # file rotated at soc_jsonl_rotate_bytes (soc_jsonl_keep rotated files kept, 0: all).
    soc_syslog_url: str = ""
    soc_ca_file: Path | None = None
    soc_client_cert_file: Path | None = None
    soc_client_key_file: Path | None = None
    soc_server_name: str = ""  # the name the certificate must carry (default: the URL's host)
    soc_jsonl_path: Path | None = None
    soc_jsonl_rotate_bytes: int = Field(default=100 * 1024 * 1024, ge=1024)
    soc_jsonl_keep: int = Field(default=0, ge=0, le=100_000)
    soc_include_detail: bool = False  # JSON lines only: the records' ``detail`` too
    soc_hostname: str = ""  # RFC 5424 HOSTNAME (default: this host's name)
    soc_facility: int = Field(default=13, ge=0, le=23)  # 13: log audit
    soc_enterprise_number: int = Field(default=32473, ge=1)  # 32473: IANA's documentation PEN
    soc_batch: int = Field(default=500, ge=1, le=10_000)
    soc_poll_seconds: float = Field(default=1.0, gt=0, le=3600)
    soc_connect_timeout_seconds: float = Field(default=10.0, gt=0, le=600)
    soc_write_timeout_seconds: float = Field(default=10.0, gt=0, le=600)
    soc_backoff_seconds: float = Field(default=1.0, gt=0, le=600)
    soc_backoff_max_seconds: float = Field(default=60.0, gt=0, le=3600)
    soc_failure_threshold: int = Field(default=5, ge=1, le=10_000)
    # Bytes re-sent after a broken syslog connection: what kernel buffers may have held
    # unread when it broke (syslog over TCP has no acknowledgement).
    soc_replay_bytes: int = Field(default=8 * 1024 * 1024, ge=0, le=1024**3)
    soc_lease_seconds: float = Field(default=30.0, gt=0, le=3600)

    @field_validator("label_levels", "categories", mode="before")
    @classmethod
    def _split_levels(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("label_levels", "categories")
    @classmethod
    def _check_levels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one value is required")
        if len(set(value)) != len(value):
            raise ValueError("values must be distinct")
        return value

    @field_validator("hub_announcers", mode="before")
    @classmethod
    def _split_codes(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("product_source_hosts", "product_source_networks", mode="before")
    @classmethod
    def _split_sources(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip().lower() for part in value.split(",") if part.strip())
        return value

    @field_validator("product_source_hosts")
    @classmethod
    def _check_source_hosts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for host in value:
            if not re.fullmatch(r"(\*\.)?[a-z0-9]([a-z0-9.-]*[a-z0-9])?|\[?[0-9a-f:.]+\]?", host):
                raise ValueError(f"{host!r} is not a host name, *.domain or an IP address")
        return tuple(h.strip("[]") for h in value)

    @field_validator("product_source_networks")
    @classmethod
    def _check_source_networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(f"{network!r} is not a network (CIDR)") from None
        return value

    @field_validator("metrics_allow", mode="before")
    @classmethod
    def _split_networks(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("metrics_allow")
    @classmethod
    def _check_networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for network in value:
            try:
                ipaddress.ip_network(network, strict=True)
            except ValueError:
                raise ValueError(f"{network!r} is not a network (CIDR, e.g. 10.0.0.0/8)") from None
        return value

    @property
    def metrics_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(ipaddress.ip_network(network) for network in self.metrics_allow)

    @field_validator("database_url", "database_owner_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        allowed = ("sqlite+aiosqlite://", "postgresql+asyncpg://")
        if value and not value.startswith(allowed):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @field_validator("nats_url")
    @classmethod
    def _check_nats_url(cls, value: str) -> str:
        servers = [part.strip() for part in value.split(",")]
        if not all(s.startswith(("nats://", "tls://")) and len(s) > 7 for s in servers):
            raise ValueError("must be nats:// or tls:// URLs, comma-separated")
        return ",".join(servers)

    @field_validator("soc_syslog_url")
    @classmethod
    def _check_soc_url(cls, value: str) -> str:
        if not value:
            return value
        parts = urlsplit(value)
        try:
            port = parts.port
        except ValueError:
            port = None
        if parts.scheme != "tls" or not parts.hostname or port is None:
            raise ValueError("must be tls://host:port (syslog over TLS, RFC 5425)")
        if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
            raise ValueError("must be tls://host:port, with nothing after the port")
        return value

    @model_validator(mode="after")
    def _check_soc_client(self) -> Settings:
        if (self.soc_client_cert_file is None) != (self.soc_client_key_file is None):
            raise ValueError(
                "HYPERVISION_SOC_CLIENT_CERT_FILE and HYPERVISION_SOC_CLIENT_KEY_FILE go "
                "together: set both or neither"
            )
        if self.soc_backoff_max_seconds < self.soc_backoff_seconds:
            raise ValueError(
                "HYPERVISION_SOC_BACKOFF_MAX_SECONDS must be at least "
                "HYPERVISION_SOC_BACKOFF_SECONDS"
            )
        return self

    @field_validator("addok_redis")
    @classmethod
    def _check_addok_redis(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value

    @property
    def addok_url(self) -> str | None:
        """Redis's URL when addok is the place search engine, else None."""
        return self.addok_redis if self.places_engine == "addok" else None

    @field_validator("nats_subject")
    @classmethod
    def _check_nats_subject(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*", value):
            raise ValueError("must be tokens of letters, digits, _ and -, joined by dots")
        return value

    @field_validator("map_tiles_url")
    @classmethod
    def _check_tiles(cls, value: str) -> str:
        if value and not (value.startswith(("https://", "http://")) and "{z}" in value):
            raise ValueError("must be an http(s) URL template with {z}, {x} and {y}")
        if any(c in value for c in " ;'\"\n"):
            raise ValueError("must not contain spaces, quotes or semicolons")
        return value

    @field_validator("label_ceiling")
    @classmethod
    def _check_ceiling(cls, value: str, info: ValidationInfo) -> str:
        levels = info.data.get("label_levels")
        if levels is not None and value not in levels:
            raise ValueError(f"{value!r} is not one of the label levels {','.join(levels)}")
        return value

    @field_validator("oidc_providers", mode="before")
    @classmethod
    def _read_providers(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return json.loads(value) if value.strip() else ()
            except json.JSONDecodeError as exc:
                raise ValueError(f"not valid JSON ({exc.msg}, character {exc.pos})") from None
        return value

    @field_validator("oidc_providers")
    @classmethod
    def _check_providers(
        cls, value: tuple[OidcProvider, ...], info: ValidationInfo
    ) -> tuple[OidcProvider, ...]:
        names = [p.name for p in value]
        if len(set(names)) != len(names):
            raise ValueError("provider names must be distinct")
        levels = info.data.get("label_levels") or ()
        for provider in value:
            rule = provider.clearance
            wrong = [v for v in [*rule.map.values(), rule.default] if v] if rule else []
            bad = [v for v in wrong if v not in levels]
            if bad:
                raise ValueError(
                    f"provider {provider.name}: clearance {bad[0]!r} is not one of the label "
                    f"levels {','.join(levels)}"
                )
        return value

    def oidc_provider(self, name: str) -> OidcProvider | None:
        return next((p for p in self.oidc_providers if p.name == name), None)

    @field_validator("argon2_parallelism")
    @classmethod
    def _check_argon2(cls, value: int, info: ValidationInfo) -> int:
        memory = info.data.get("argon2_memory_kib")
        if memory is not None and memory < 8 * value:
            raise ValueError("argon2 needs at least 8 KiB of memory per lane (argon2_memory_kib)")
        return value

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def audit_key_path(self) -> Path:
        return self.audit_signing_key_file or self.data_dir / "keys" / "audit-ed25519.pem"

    @property
    def audit_public_key_path(self) -> Path:
        return self.audit_public_key_file or self.audit_key_path.with_suffix(".pub")

    @property
    def audit_witness_path(self) -> Path:
        return self.audit_witness_dir or self.data_dir / "audit-witness"

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'hypervision.db').resolve()}"

    @property
    def nats_servers(self) -> list[str]:
        return self.nats_url.split(",")

    def level_rank(self, level: str) -> int:
        """Position of ``level`` in the ordered levels; ValueError when unknown."""
        return self.label_levels.index(level)

    @property
    def map_tile_origins(self) -> tuple[str, ...]:
        """The tile server's origin, allowed as an image source by the pages' CSP."""
        if not self.map_tiles_url:
            return ()
        parts = urlsplit(self.map_tiles_url.replace("{s}", "a"))
        origin = f"{parts.scheme}://{parts.netloc}"
        if "{s}" in self.map_tiles_url:
            origin = f"{parts.scheme}://*.{parts.netloc.split('.', 1)[-1]}"
        return (origin,)

    def marking(self, levels: Iterable[str]) -> str | None:
        """The protection marking for a page or document holding records of ``levels``: the
        highest one's, or None when everything is at the lowest level."""
        ranks = [self.level_rank(level) for level in levels if level in self.label_levels]
        if not ranks or max(ranks) == 0:
            return None
        top = self.label_levels[max(ranks)]
        return self.label_markings.get(top, top)


def load_settings(**overrides: Any) -> Settings:
    env_file = os.environ.get(f"{ENV_PREFIX}CONFIG_FILE") or None
    if env_file and not Path(env_file).is_file():
        raise ConfigError(f"{ENV_PREFIX}CONFIG_FILE: file {env_file!r} does not exist")
    try:
        return Settings(_env_file=env_file, **overrides)
    except ValidationError as exc:
        raise ConfigError(describe_error(exc)) from None


class ConfigError(Exception):
    """A setting is missing or invalid; the message is one line naming it."""


def describe_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    loc = first["loc"]
    name = f"{ENV_PREFIX}{str(loc[0]).upper()}" if loc else "configuration"
    if loc and loc[0] == "oidc_providers" and len(loc) > 1:
        # Which provider and which of its fields: "HYPERVISION_OIDC_PROVIDERS[0].issuer".
        name += "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc[1:])
    message = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "missing":
        message = "is required but not set"
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"invalid setting {name}: {message}{more}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
