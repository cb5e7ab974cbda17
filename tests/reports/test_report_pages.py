"""A space's report schedules on the web, on both engines: its editors list, add and stop
them from ``/espaces/{id}/rapports`` (bad input shown again in French with what was typed);
its readers who may not edit are refused; the reports delivered to me are in my inbox."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from httpx import AsyncClient

from hypervision.db import utcnow
from hypervision.reports import schedules
from tests.factories import officer
from tests.reports.helpers import crisis
from tests.web.conftest import Browser, new_client  # noqa: F401 - the browsers fixture
from tests.web.pages import browse_as, csrf_of


async def test_editors_schedule_and_stop_reports_from_the_space(
    app: FastAPI,
    client: AsyncClient,
    new_client: Browser,  # noqa: F811
) -> None:
    room = await crisis(app, client)
    url = f"/espaces/{room.space_id}/rapports"
    chef = await new_client()
    await browse_as(chef, "chef")
    space = await chef.get(f"/espaces/{room.space_id}")
    assert f'href="{url}" id="rapports-programmes"' in space.text
    page = await chef.get(url)
    assert page.status_code == 200 and 'id="aucun-programme"' in page.text
    token = csrf_of(page)
    form = {
        "csrf_token": token, "name": "Point transport", "times": "07:00, 19:00",
        "modules": ["fil", "compte"], "organisations": ["SANTE"], "users": "voisin",
    }  # fmt: skip

    late = await chef.post(url, data={**form, "times": "7h"})
    assert late.status_code == 422
    assert "HH:MM" in late.text and 'value="Point transport"' in late.text  # kept
    ghost = await chef.post(url, data={**form, "users": "voisin, fantome"})
    assert ghost.status_code == 422
    assert "Destinataire(s) inconnu(s) : fantome." in ghost.text
    assert 'value="voisin, fantome"' in ghost.text and 'value="fil" checked' in ghost.text

    made = await chef.post(url, data=form)
    assert made.status_code == 303 and made.headers["location"] == url
    listed = (await client.get(f"/api/v1/spaces/{room.space_id}/report-schedules",
                               headers=room.chef)).json()  # fmt: skip
    assert [(s["name"], s["times"], s["modules"], s["recipients"]) for s in listed] == [
        ("Point transport", ["07:00", "19:00"], ["fil", "compte"],
         {"users": ["voisin"], "organisations": ["SANTE"]}),
    ]  # fmt: skip
    page = await chef.get(url)
    assert "Point transport" in page.text and "07:00, 19:00" in page.text

    await officer(app, client, "autre", "SDIS")
    for reader in ("medecin", "autre"):  # they read the space, may not edit it
        browser = await new_client()
        await browse_as(browser, reader)
        refused = await browser.get(url)
        assert refused.status_code == 403 and "rédacteurs" in refused.text
        stop = await browser.post(
            f"{url}/{listed[0]['id']}/arreter",
            data={"csrf_token": csrf_of(await browser.get("/aide"))},
        )
        assert stop.status_code == 403

    stopped = await chef.post(f"{url}/{listed[0]['id']}/arreter", data={"csrf_token": token})
    assert stopped.status_code == 303
    assert 'id="aucun-programme"' in (await chef.get(url)).text
    assert (await chef.post(f"{url}/{listed[0]['id']}/arreter", data={"csrf_token": token})
            ).status_code == 404  # fmt: skip


async def test_reports_delivered_to_me_are_in_my_inbox(
    app: FastAPI,
    client: AsyncClient,
    new_client: Browser,  # noqa: F811
) -> None:
    room = await crisis(app, client)
    made = await client.post(
        f"/api/v1/spaces/{room.space_id}/report-schedules",
        json={"name": "Point du soir", "times": ["19:00"], "modules": ["fil"],
              "recipients": {"users": ["medecin"]}},
        headers=room.chef,
    )  # fmt: skip
    assert made.status_code == 201, made.text
    medecin = await new_client()
    await browse_as(medecin, "medecin")
    assert 'id="rapports-recus"' not in (await medecin.get("/boite")).text
    sessions, settings = app.state.system_sessions, app.state.settings
    assert len(await schedules.run_due(sessions, settings, now=utcnow() + timedelta(days=1))) == 1
    inbox = await medecin.get("/boite")
    assert inbox.status_code == 200 and 'id="rapports-recus"' in inbox.text
    link = f"/api/v1/spaces/{room.space_id}/report.pdf?module=fil"
    assert f'href="{link}">Point du soir</a>' in inbox.text
    assert (await medecin.get(link)).headers["content-type"] == "application/pdf"
    voisin = await new_client()  # not a recipient
    await browse_as(voisin, "voisin")
    assert "Point du soir" not in (await voisin.get("/boite")).text
