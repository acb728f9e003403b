"""Backing up with pictures and restoring them, in the page: export a zip with 사진 포함, import
it on a fresh server, and the conversation comes back with its pictures."""
from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import open_app, shot
from tests.conftest import fake_image_app, read_frames, serve
from tests.tiny_models import png_data_url

pytestmark = pytest.mark.browser


def test_export_with_pictures_then_import_on_a_fresh_server(page: Page, isolated_data, tmp_path):
    with serve(fake_image_app(isolated_data, tmp_path)) as url:
        body = {"prompt": "노란 별", "width": 64, "height": 64, "steps": 1, "seed": 9,
                "init_image": png_data_url(40, 40, (250, 200, 10))}
        with httpx.stream("POST", url + "/api/images/generate", json=body, timeout=60) as response:
            session_id = read_frames(response)[0]["session_id"]
        open_app(page, url)
        page.locator(".export-box summary").click()
        page.check("#export-images")
        with page.expect_download() as download:
            page.click("#export-download")
        saved = tmp_path / "backup.zip"
        download.value.save_as(saved)
    assert saved.read_bytes()[:2] == b"PK"

    with serve(fake_image_app(tmp_path / "fresh", tmp_path)) as url:
        open_app(page, url)
        page.locator(".export-box summary").click()
        page.set_input_files("#import-input", str(saved))
        expect(page.locator("#import-note")).to_contain_text("가져옴 1")
        expect(page.locator("#import-note")).to_contain_text("사진 2")
        page.locator(f'.session-item[data-session-id="{session_id}"] .session-open').click()
        pictures = page.locator(".message img")
        expect(pictures).to_have_count(2)  # the uploaded init picture and the one made
        for index in range(2):
            expect(pictures.nth(index)).to_have_js_property("complete", True)
            assert pictures.nth(index).evaluate("img => img.naturalWidth") > 0  # served from the restored files
        shot(page, "imported-with-pictures")
