"""A product's HTTP source from its page (both engines), against a real local HTTP server:
a steward sets it, runs it now and reads the runs; a refused address says why; others get
no section and may not act."""

from __future__ import annotations

from pathlib import Path

import pytest
from httpx import AsyncClient

from hypervision.config import Settings
from tests.conftest import make_settings
from tests.products.http_source import Page, Site, site
from tests.products.test_products_api import CSV
from tests.web.pages import browse_as
from tests.web.test_product_pages import product

__all__ = ["product", "site"]


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path, database_url, product_source_hosts=("127.0.0.1",), product_source_poll_seconds=0
    )


async def test_a_steward_sets_runs_and_removes_a_source(
    client: AsyncClient, product: str, site: Site
) -> None:
    csrf = await browse_as(client, "steward")
    page = await client.get(f"/donnees/{product}")
    assert 'id="form-source"' in page.text and 'value="run"' not in page.text
    site.pages["/lits.csv"] = Page(CSV.replace(b"Bichat", b"Cochin"))
    form = {"csrf_token": csrf, "url": site.url("/lits.csv"), "format": "csv",
            "mode": "upsert", "interval_minutes": "30"}  # fmt: skip
    saved = await client.post(f"/donnees/{product}/source", data={**form, "action": "save"})
    assert saved.status_code == 303, saved.text
    run = {"csrf_token": csrf, "action": "run"}
    ran = await client.post(f"/donnees/{product}/source", data=run)
    assert ran.status_code == 303
    page = await client.get(f"/donnees/{product}")
    runs = page.text.split('id="table-executions"')[1]
    assert "importé" in runs and "<td>200</td><td>5</td><td>2</td>" in runs
    assert f'value="{site.url("/lits.csv")}"' in page.text and 'value="30"' in page.text

    refused = await client.post(
        f"/donnees/{product}/source",
        data={**form, "url": "http://169.254.169.254/latest/meta-data", "action": "save"},
    )
    assert refused.status_code == 422
    assert 'id="source-erreur"' in refused.text and "n&#39;est pas autorisé" in refused.text

    removed = await client.post(
        f"/donnees/{product}/source", data={"csrf_token": csrf, "action": "remove"}
    )
    assert removed.status_code == 303
    page = await client.get(f"/donnees/{product}")
    assert 'value="run"' not in page.text and 'id="table-executions"' in page.text  # runs stay


async def test_others_see_no_source_and_may_not_act(
    client: AsyncClient, product: str, site: Site
) -> None:
    csrf = await browse_as(client, "prefet")
    page = await client.get(f"/donnees/{product}")
    assert 'id="source"' not in page.text
    refused = await client.post(
        f"/donnees/{product}/source",
        data={"csrf_token": csrf, "action": "save", "url": site.url("/x.csv"),
              "interval_minutes": "5"},
    )  # fmt: skip
    assert refused.status_code == 403
    assert site.hits == {}
