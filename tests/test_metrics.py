"""``/metrics`` (docs/adr/0032), both engines: the Prometheus text format with real figures for
the monitoring network, a 404 for anyone else; requests by route template, open streams, live
deliveries, sign-in failures without the name, imports; the Grafana dashboard asks only for
metrics the application exports."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from hypervision.app import create_app
from hypervision.audit.sequencer import queued
from hypervision.config import Settings
from hypervision.policy.roles import Role
from tests.conftest import TEST_SECRET, make_settings
from tests.factories import ENTRY, make_org, make_user, officer, sequenced, sign_in, tx
from tests.live.server import open_stream, serve
from tests.products.test_products_api import CSV, create, upload

DASHBOARD = Path(__file__).resolve().parent.parent / "deploy/grafana/hypervision-dashboard.json"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
async def monitor(app: FastAPI) -> AsyncIterator[AsyncClient]:
    """A client on loopback: the default monitoring network."""
    transport = ASGITransport(app=app, client=("127.0.0.1", 40000))
    async with AsyncClient(transport=transport, base_url="https://testserver") as http:
        yield http


async def scrape(monitor: AsyncClient) -> tuple[str, Samples]:
    response = await monitor.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return response.text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def settles(monitor: AsyncClient, name: str, expected: float) -> Samples:
    """Scrape until ``name`` reads ``expected`` (the hub ends its round, a stream is noticed
    gone, a NOTIFY that arrived mid-round is taken by the next one), for up to 5 seconds."""
    for _ in range(100):
        _, samples = await scrape(monitor)
        if value(samples, name) == expected:
            return samples
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name} = {value(samples, name)}, never {expected}")


async def test_requests_by_route_template_with_real_values(
    app: FastAPI, client: AsyncClient, monitor: AsyncClient
) -> None:
    author = await officer(app, client, "author", "PP")
    entry = (await client.post("/api/v1/entries", json=ENTRY, headers=author)).json()
    for _ in range(3):
        got = await client.get(f"/api/v1/entries/{entry['id']}", headers=author)
        assert got.status_code == 200
    missing = uuid.uuid4()
    assert (await client.get(f"/api/v1/entries/{missing}", headers=author)).status_code == 404
    assert (await client.get("/nothing/here/12345")).status_code == 404

    text, samples = await scrape(monitor)
    template = "/api/v1/entries/{entry_id}"
    total = "hypervision_http_requests_total"
    assert value(samples, total, method="GET", route=template, status="2xx") == 3
    assert value(samples, total, method="GET", route=template, status="4xx") == 1
    assert value(samples, total, method="POST", route="/api/v1/entries", status="2xx") == 1
    assert value(samples, total, method="GET", route="unmatched", status="4xx") == 1
    count = "hypervision_http_request_duration_seconds_count"
    assert value(samples, count, route=template) == 4
    assert value(samples, "hypervision_http_request_duration_seconds_sum", route=template) > 0
    assert (
        entry["id"] not in text and str(missing) not in text and "12345" not in text
    )  # templates, never raw paths
    assert value(samples, "process_resident_memory_bytes") > 0
    assert value(samples, "process_open_fds") > 0
    async with tx(app) as session:  # no sequencer runs here: the sign-in's record waits
        waiting, _ = await queued(session)
    assert waiting > 0
    assert value(samples, "hypervision_audit_queue_depth") == waiting
    await sequenced(app)
    _, chained = await scrape(monitor)
    assert value(chained, "hypervision_audit_queue_depth") == 0
    assert value(samples, "hypervision_live_hub_lag_seconds") == 0  # no hub running here
    assert value(samples, "hypervision_live_streams_open") == 0
    # Each scrape is counted by the next; it is not audited (no protected data).
    assert value(chained, total, method="GET", route="/metrics", status="2xx") == 1
    async with tx(app) as session:
        assert (await queued(session))[0] == 0


async def test_hidden_from_other_addresses(app: FastAPI, client: AsyncClient) -> None:
    transport = ASGITransport(app=app, client=("10.1.2.3", 1234))
    async with AsyncClient(transport=transport, base_url="https://testserver") as outsider:
        unknown = await outsider.get("/no-such-page")
        for headers in ({}, {"x-forwarded-for": "127.0.0.1"}, {"x-real-ip": "127.0.0.1"}):
            hidden = await outsider.get("/metrics", headers=headers)
            assert hidden.status_code == 404
            # The very page of a path that does not exist (which names the path).
            assert hidden.text == unknown.text.replace("/no-such-page", "/metrics")
            assert hidden.headers["content-type"] == unknown.headers["content-type"]
    assert (await client.get("/metrics")).status_code == 404  # 203.0.113.7: not allowed
    schema = (await client.get("/api/openapi.json")).json()
    assert "/metrics" not in schema["paths"]


async def test_behind_a_trusted_proxy_the_forwarded_address_decides(app: FastAPI) -> None:
    """Served as ``hypervision serve`` does (proxy headers from forwarded_allow_ips only): a
    request relayed by the loopback proxy for an outside client is that client's, refused;
    the proxy's own request, or one forwarded for a loopback client, is let in."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", lifespan="off",
        proxy_headers=False,  # the application applies forwarded_allow_ips (core.proxies)
    )  # fmt: skip
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                raise AssertionError("the server stopped during start-up")
            await asyncio.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        async with AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            outside = {"x-forwarded-for": "198.51.100.4"}
            assert (await http.get("/metrics", headers=outside)).status_code == 404
            assert (await http.get("/metrics")).status_code == 200
            inside = {"x-forwarded-for": "127.0.0.1"}
            assert (await http.get("/metrics", headers=inside)).status_code == 200
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def test_networks_and_switch_off(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, database_url, metrics_allow="10.0.0.0/8, 2001:db8::/32")
    for metrics_allow, address, status in (
        (settings.metrics_allow, "10.200.0.1", 200),
        (settings.metrics_allow, "2001:db8::7", 200),
        (settings.metrics_allow, "127.0.0.1", 404),  # loopback no longer listed
        ((), "127.0.0.1", 404),  # empty: /metrics is off
    ):
        app = create_app(make_settings(tmp_path, database_url, metrics_allow=metrics_allow))
        transport = ASGITransport(app=app, client=(address, 1234))
        try:
            async with AsyncClient(transport=transport, base_url="https://testserver") as http:
                assert (await http.get("/metrics")).status_code == status, (metrics_allow, address)
        finally:
            await app.state.engine.dispose()


def test_metrics_allow_setting() -> None:
    settings = Settings(secret_key=TEST_SECRET)
    assert settings.metrics_allow == ("127.0.0.0/8", "::1/128")
    assert Settings(secret_key=TEST_SECRET, metrics_allow="").metrics_allow == ()
    for wrong in ("10.0.0.1/8", "monitoring", "10.0.0.0/33"):
        with pytest.raises(ValidationError, match="is not a network"):
            Settings(secret_key=TEST_SECRET, metrics_allow=wrong)


async def test_open_streams_deliveries_and_the_stream_counted_once(
    app: FastAPI, client: AsyncClient, monitor: AsyncClient
) -> None:
    author = await officer(app, client, "author", "PP")
    reader = await officer(app, client, "reader", "SAMU")
    async with serve(app) as base:
        async with open_stream(base, reader) as stream:
            _, opened = await scrape(monitor)
            assert value(opened, "hypervision_live_streams_open") == 1
            assert value(opened, "hypervision_live_hub_running") == 1
            route = {"method": "GET", "route": "/api/v1/stream", "status": "2xx"}
            assert value(opened, "hypervision_http_requests_total", **route) == 1
            await client.post(
                "/api/v1/entries", json={**ENTRY, "label": {"level": "NP"}}, headers=author
            )
            await stream.wait_for(lambda s: len(s.of("entry.create")) == 1)
            delivered = await settles(monitor, "hypervision_live_hub_lag_seconds", 0)
            assert value(delivered, "hypervision_live_deliveries_total", path="live") == 1
            reads = value(delivered, "hypervision_live_outbox_reads_total", result="settled")
            assert reads >= 1
            assert value(delivered, "hypervision_http_requests_total", **route) == 1  # once
        await settles(monitor, "hypervision_live_streams_open", 0)  # the client has gone


async def test_hub_lag_grows_while_events_wait(
    app: FastAPI, client: AsyncClient, monitor: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    author = await officer(app, client, "author", "PP")
    reader = await officer(app, client, "reader", "SAMU")
    hub = app.state.hub
    dispatch = hub.dispatch

    async def broken() -> bool:
        raise OSError("database unreachable")

    async with serve(app) as base, open_stream(base, reader) as stream:
        monkeypatch.setattr(hub, "dispatch", broken)  # committed events cannot go out
        await client.post(
            "/api/v1/entries", json={**ENTRY, "label": {"level": "NP"}}, headers=author
        )
        await asyncio.sleep(0.3)
        _, stuck = await scrape(monitor)
        assert 0.2 < value(stuck, "hypervision_live_hub_lag_seconds") < 5
        _, later = await scrape(monitor)
        assert value(later, "hypervision_live_hub_lag_seconds") > value(
            stuck, "hypervision_live_hub_lag_seconds"
        )
        monkeypatch.setattr(hub, "dispatch", dispatch)
        hub.wake()  # as the next commit would
        await stream.wait_for(lambda s: len(s.of("entry.create")) == 1)
        await settles(monitor, "hypervision_live_hub_lag_seconds", 0)  # caught up


async def test_sign_in_failures_counted_without_the_name(
    app: FastAPI, client: AsyncClient, monitor: AsyncClient
) -> None:
    await make_org(app, "PP")
    await make_user(app, "jeanne.secrete", "PP")
    for name in ("jeanne.secrete", "personne.inconnue"):
        form = {"username": name, "password": "pas le bon mot de passe"}
        assert (await client.post("/api/v1/auth/token", data=form)).status_code == 401
    await sign_in(client, "jeanne.secrete")  # a success is no failure
    text, samples = await scrape(monitor)
    failures = "hypervision_sign_in_failures_total"
    assert value(samples, failures, reason="credentials") == 2
    assert value(samples, failures, reason="otp") == 0
    assert value(samples, failures, reason="throttled") == 0
    assert "jeanne" not in text and "personne" not in text and "secrete" not in text
    form = {"username": "personne.inconnue", "password": "encore faux"}
    answers = [(await client.post("/api/v1/auth/token", data=form)).status_code for _ in range(6)]
    assert 429 in answers  # login_max_failures (5) reached: throttled
    _, later = await scrape(monitor)
    assert value(later, failures, reason="credentials") == 2 + answers.count(401)
    assert value(later, failures, reason="throttled") == answers.count(429)


async def test_imports_counted_by_outcome(
    app: FastAPI, client: AsyncClient, monitor: AsyncClient
) -> None:
    await make_org(app, "SANTE")
    await make_user(app, "steward", "SANTE", roles=[Role.DATA_STEWARD], clearance="DR")
    steward = await sign_in(client, "steward")
    product = await create(client, steward, "", rules={})
    assert product.status_code == 201, product.text
    pid = product.json()["id"]
    assert (await upload(client, steward, pid, CSV)).status_code == 201
    bad = CSV + "Cochin;75;Urgences;beaucoup;1;0,5\n".encode("cp1252")
    assert (await upload(client, steward, pid, bad)).status_code == 422
    _, samples = await scrape(monitor)
    imports = "hypervision_product_imports_total"
    assert value(samples, imports, outcome="done") == 1
    assert value(samples, imports, outcome="refused") == 1
    assert value(samples, imports, outcome="failed") == 0
    assert value(samples, "hypervision_product_import_duration_seconds_count") == 2
    assert value(samples, "hypervision_product_import_duration_seconds_sum") > 0


# --- the dashboard ----------------------------------------------------------------------------

PROMQL_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset"})  # not functions


def expressions(node: object) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        for key, item in node.items():
            if key == "expr" and isinstance(item, str):
                found.append(item)
            else:
                found.extend(expressions(item))
    elif isinstance(node, list):
        for item in node:
            found.extend(expressions(item))
    return found


def label_names(expr: str) -> set[str]:
    """The label names an expression matches or groups by."""
    found: set[str] = set()
    for matchers in re.findall(r"\{([^}]*)\}", expr):
        found |= set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", re.sub(r'"[^"]*"', "", matchers)))
    for grouping in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", expr):
        found |= {name.strip() for name in grouping.split(",") if name.strip()}
    return found


def metric_names(expr: str) -> set[str]:
    """The metric names an expression reads: identifiers that are not functions (followed by
    a parenthesis), keywords, label names (inside braces or ``by (…)``), label values,
    durations, nor Grafana variables."""
    expr = re.sub(r'"[^"]*"', '""', expr)  # label values
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)  # grouping labels
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges ([5m], [$__rate_interval])
    names = set(re.findall(r"(?<![\w$.:])[a-zA-Z_:][\w:]*(?![\w:]|\s*\()", expr))
    return names - PROMQL_KEYWORDS


async def test_dashboard_asks_only_for_exported_metrics(
    app: FastAPI, client: AsyncClient, monitor: AsyncClient
) -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["schemaVersion"] >= 39
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    panels = dashboard["panels"]
    for panel in panels:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
    assert (await client.get("/healthz")).status_code == 200  # a labelled latency series
    _, samples = await scrape(monitor)
    exported = {name for name, _ in samples}
    labels = {label for _, pairs in samples for label, _ in pairs} | {"job", "instance"}
    exprs = expressions(panels)
    assert len(exprs) >= 10
    asked: set[str] = set()
    for expr in exprs:
        names = metric_names(expr)
        assert names, expr
        assert names <= exported, (expr, names - exported)
        assert label_names(expr) <= labels, (expr, label_names(expr) - labels)
        asked |= names
    for wanted in (
        "hypervision_http_requests_total",
        "hypervision_http_request_duration_seconds_bucket",
        "hypervision_live_streams_open",
        "hypervision_live_hub_lag_seconds",
        "hypervision_audit_queue_depth",
        "hypervision_product_imports_total",
        "hypervision_sign_in_failures_total",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
    ):
        assert wanted in asked, f"no panel reads {wanted}"
