"""``hypervision products import`` and ``products poll``, run as real processes (both engines)
against a real local HTTP server: an import in a steward's name, then the product's source
run by its identifier, a failing one (exit 1), nothing due."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fastapi import FastAPI
from httpx import AsyncClient

from tests.conftest import TEST_SECRET, once_across_engines
from tests.factories import sign_in
from tests.products.http_source import Page, Site, site
from tests.products.test_products_api import CSV, create, health
from tests.products.test_sources import settings

__all__ = ["health", "settings", "site"]


def cli(url: str, owner: str, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYPERVISION_")}
    env |= {
        "HYPERVISION_DATABASE_URL": url,
        "HYPERVISION_DATABASE_OWNER_URL": owner if owner != url else "",
        "HYPERVISION_SECRET_KEY": TEST_SECRET,
        "HYPERVISION_DATA_DIR": str(tmp),
        "HYPERVISION_PRODUCT_SOURCE_HOSTS": "127.0.0.1",
    }
    return subprocess.run(
        [sys.executable, "-m", "hypervision", "products", *args],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


async def test_import_and_poll_from_the_command_line(
    app: FastAPI,
    client: AsyncClient,
    health: str,
    site: Site,
    database_url: str,
    owner_database_url: str,
    tmp_path: Path,
) -> None:
    once_across_engines(database_url)  # a process per command: slow to drive
    headers = await sign_in(client, "steward")
    pid = (await create(client, headers, health)).json()["id"]
    data = tmp_path / "capacite.csv"
    data.write_bytes(CSV)
    done = cli(database_url, owner_database_url, tmp_path,
               "import", "capacite-hopitaux", str(data), "--as", "steward")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "capacite-hopitaux : version 1 — 5 ajoutée(s)" in done.stdout

    site.pages["/lits.csv"] = Page(CSV.replace(b"Bichat", b"Cochin"))
    body = {"url": site.url("/lits.csv"), "mode": "upsert", "interval_minutes": 60}
    assert (
        await client.put(f"/api/v1/products/{pid}/source", json=body, headers=headers)
    ).status_code == 200
    ran = cli(database_url, owner_database_url, tmp_path, "poll", "capacite-hopitaux")
    assert ran.returncode == 0, ran.stderr
    assert "capacite-hopitaux : imported (HTTP 200" in ran.stdout and "version 2" in ran.stdout
    idle = cli(database_url, owner_database_url, tmp_path, "poll")
    assert idle.returncode == 0 and "0 source(s) exécutée(s)" in idle.stdout  # not due

    del site.pages["/lits.csv"]
    failed = cli(database_url, owner_database_url, tmp_path, "poll", "capacite-hopitaux")
    assert failed.returncode == 1
    assert "failed (HTTP 404" in failed.stdout and "Le serveur a répondu 404" in failed.stdout
    unknown = cli(database_url, owner_database_url, tmp_path, "poll", "inconnu")
    assert unknown.returncode == 1 and "n'a pas de source" in unknown.stderr
    runs = (await client.get(f"/api/v1/products/{pid}/source", headers=headers)).json()["runs"]
    assert [(r["trigger"], r["status"]) for r in runs] == [("cli", "failed"), ("cli", "imported")]
