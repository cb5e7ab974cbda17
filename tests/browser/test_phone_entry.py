"""The new-entry form with a thumb (390×844): "Prendre une photo" opens the camera and its
photo joins the files already chosen, in the same upload; "Ma position" fills the location
through the browser's geolocation."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.async_api import expect

from tests.browser.web import PHONE, SQLITE_ONLY, Web, make_photo, screenshot, t

pytestmark = SQLITE_ONLY
NEW = "/main-courante/nouvelle"


async def test_a_photo_from_the_camera_and_my_position_on_a_phone(web: Web, tmp_path: Path) -> None:
    await web.org("PP")
    await web.user("hugo.faure", "PP")
    page = await web.signed_in("hugo.faure", NEW, viewport=PHONE)
    await page.context.grant_permissions(["geolocation"])
    await page.context.set_geolocation({"latitude": 48.9245, "longitude": 2.3602, "accuracy": 8})

    await page.fill("#title", "Malaise porte H")
    await page.select_option("#category", "health")
    locate = page.get_by_role("button", name=t("My position"))
    await locate.scroll_into_view_if_needed()
    await locate.tap()
    await expect(page.locator("#lat")).to_have_value("48.92450")
    await expect(page.locator("#lon")).to_have_value("2.36020")
    await expect(page.locator("[data-place-search] [role=status]")).to_have_text(
        t("Your position, to within %(m)s m.", m=8)
    )

    await page.set_input_files("#files", make_photo(tmp_path / "plan.png"))
    camera = page.get_by_role("button", name=t("Take a photo"))
    await expect(camera).to_have_text("Prendre une photo")
    box = await camera.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    async with page.expect_file_chooser() as chosen:
        await camera.tap()
    chooser = await chosen.value
    assert await chooser.element.get_attribute("capture") == "environment"
    assert await chooser.element.get_attribute("accept") == "image/*"
    await chooser.set_files(make_photo(tmp_path / "porte-h.jpg"))
    await expect(page.locator("#fichiers-choisis li")).to_have_text(
        [re.compile(r"^plan\.png"), re.compile(r"^porte-h\.jpg")]
    )
    assert await page.locator("#files").evaluate("i => i.files.length") == 2
    assert await page.locator("#photo").evaluate("i => i.files.length") == 0  # sent once
    await screenshot(page, "phone-new-entry-camera")
    await page.click("#enregistrer")

    await expect(page).to_have_url(re.compile(r"/main-courante\?entree=[0-9a-f-]{36}&cree=1$"))
    entry_id = page.url.split("entree=")[1].split("&")[0]
    stored = await web.api("hugo.faure", "GET", f"/entries/{entry_id}")
    assert stored["location"] == {"type": "Point", "coordinates": [2.3602, 48.9245]}
    files = await web.client.get(
        f"/api/v1/entries/{entry_id}/attachments", headers=await web.headers("hugo.faure")
    )
    assert sorted(f["content_type"] for f in files.json()) == ["image/jpeg", "image/png"]
    assert web.errors == []
