"""The model library page in real Chromium: the models found, how each fits the GPU, the broken
one with its reason, "대화에 사용", a setting saved, and the chat answering from the chosen file."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from chat import create_app
from settings import embedded_chat_model_path
from tests.browser.conftest import open_app, shot
from tests.conftest import make_settings, serve
from tests.test_model_library import link

pytestmark = pytest.mark.browser


def test_choose_a_model_in_the_page_and_chat_with_it(page: Page, isolated_data, tmp_path, tiny_mmproj):
    folder = tmp_path / "models"
    smol = embedded_chat_model_path()
    link(smol, folder / "EXAONE 흉내" / "my-chat-Q4_1.gguf")
    link(smol, folder / "vision" / "smol-vl.gguf")
    link(tiny_mmproj, folder / "vision" / "mmproj-smol-vl.gguf")
    (folder / "깨진 파일.gguf").write_text("not a model", encoding="utf-8")
    settings = make_settings(isolated_data, max_tokens=8)
    settings.models.dirs = [folder]
    with serve(create_app(settings)) as url:
        page.goto(url + "/models")
        card = page.locator(".model-card", has_text="my-chat-Q4_1")
        expect(card.locator(".model-badges")).to_contain_text("대화")
        expect(card.locator(".model-badges")).to_contain_text("Q4_1")
        expect(card.locator(".model-fit")).to_contain_text("CPU")  # no GPU here: the estimate says so
        expect(page.locator("#models-budget")).to_contain_text("GPU")
        expect(page.locator(".model-card.broken")).to_contain_text("쓸 수 없음")
        expect(page.locator(".model-card", has_text="smol-vl")).to_contain_text("그림 질문")
        listings = []
        page.on("request", lambda r: listings.append(r.url) if r.url.endswith("/api/models") else None)
        card.locator("button[data-role='chat']").click()
        expect(card.locator(".badge.active")).to_contain_text("사용 중")
        expect(card.locator("button[data-role='chat']")).to_be_disabled()
        expect(page.locator("#models-active")).to_contain_text("대화: my-chat-Q4_1")
        assert listings == []  # patched from the PUT's answer, not read again
        card.locator(".model-settings summary").click()
        card.locator("input[name='n_ctx']").fill("1024")
        card.locator(".model-settings-form button[type='submit']").click()
        expect(card.locator(".model-applied")).to_contain_text("저장됨")
        shot(page, "models-page")

        open_app(page, url)
        page.fill("#chat-input", "Hello!")
        page.press("#chat-input", "Enter")
        answer = page.locator(".message.assistant").last
        expect(answer).to_have_attribute("data-finish", re.compile("^(done|trimmed)$"), timeout=60_000)
        page.goto(url + "/models")
        expect(page.locator(".model-card", has_text="my-chat-Q4_1")).to_contain_text("불러온 컨텍스트: 1024")
