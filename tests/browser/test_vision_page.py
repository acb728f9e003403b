"""Images in the page, in real Chromium, answered by the real vision path (SmolLM2 + tiny projector)."""
from __future__ import annotations

import base64
import re

import pytest
from playwright.sync_api import Page, expect

from chat import create_app
from tests.browser.conftest import open_app, shot
from tests.conftest import make_settings, serve, vision_settings
from tests.tiny_models import png_data_url

pytestmark = pytest.mark.browser

PASTE = """(b64) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const data = new DataTransfer();
    data.items.add(new File([bytes], "pasted.png", {type: "image/png"}));
    const input = document.getElementById("chat-input");
    input.dispatchEvent(new ClipboardEvent("paste", {clipboardData: data, bubbles: true, cancelable: true}));
}"""


DROP = """(b64) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const data = new DataTransfer();
    data.items.add(new File([bytes], "dropped.png", {type: "image/png"}));
    document.getElementById("chat").dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true, cancelable: true}));
}"""


def png_b64(color) -> str:
    return png_data_url(160, 120, color).split(",", 1)[1]


def test_paste_an_image_see_the_answer_and_find_it_after_reload(page: Page, isolated_data, tiny_mmproj, tmp_path):
    with serve(create_app(vision_settings(isolated_data, tiny_mmproj))) as url:
        open_app(page, url)
        page.evaluate(PASTE, png_b64((20, 90, 200)))
        page.evaluate(PASTE, png_b64((200, 30, 30)))
        expect(page.locator("#attachments .attachment")).to_have_count(2)
        page.locator("#attachments .attachment-remove").nth(1).click()
        expect(page.locator("#attachments .attachment")).to_have_count(1)
        picked = tmp_path / "picked.png"
        picked.write_bytes(base64.b64decode(png_b64((30, 160, 40))))
        page.set_input_files("#file-input", str(picked))
        expect(page.locator("#attachments .attachment")).to_have_count(2)
        page.evaluate(DROP, png_b64((250, 200, 0)))
        expect(page.locator("#attachments .attachment")).to_have_count(3)
        page.locator("#attachments .attachment-remove").nth(2).click()
        expect(page.locator("#attachments .attachment")).to_have_count(2)
        shot(page, "vision-attachments")

        page.fill("#chat-input", "이 사진에 무엇이 있나요?")
        page.press("#chat-input", "Enter")
        expect(page.locator("#attachments")).to_be_hidden()
        user = page.locator(".message.user").last
        expect(user.locator(".message-images img")).to_have_count(2)
        answer = page.locator(".message.assistant").last
        expect(answer).to_have_attribute("data-finish", re.compile("^(done|trimmed)$"), timeout=60_000)
        answer_text = answer.locator(".message-body").inner_text()
        assert answer_text.strip()
        expect(page.locator("#image-followup")).to_be_visible()
        shot(page, "vision-answer")

        page.reload()
        page.wait_for_selector("body[data-ready='1']")
        restored = page.locator(".message.user .message-images img")
        expect(restored).to_have_count(2)
        assert restored.first.get_attribute("src").startswith("/api/images/")
        page.wait_for_function("[...document.querySelectorAll('.message-images img')].every(i => i.complete && i.naturalWidth === 160)")
        assert page.locator(".message.assistant .message-body").inner_text() == answer_text
        shot(page, "vision-restored")


def test_attach_is_off_without_a_vision_model(page: Page, isolated_data):
    with serve(create_app(make_settings(isolated_data))) as url:
        open_app(page, url)
        expect(page.locator("#attach-button")).to_be_disabled()
        page.evaluate(PASTE, png_b64((1, 2, 3)))
        expect(page.locator("#composer-error")).to_contain_text("AIONE_VISION__MODEL_PATH")
        expect(page.locator("#attachments .attachment")).to_have_count(0)
