"""The chat's own tools in real Chromium, with a scripted model (tests.fakes) that calls
search_documents and run_python: the steps while the answer streams, the code run confirmed in
the page, the steps again after a reload."""
from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Page, expect

from chat import create_app
from tests.browser.conftest import open_app, shot
from tests.conftest import make_settings, serve
from tests.fakes import FakeChatEngine
from tests.test_chat_tools import call

pytestmark = pytest.mark.browser


def test_tool_steps_confirmation_and_reload(page: Page, isolated_data):
    engine = FakeChatEngine(token_seconds=0.02)
    with serve(create_app(make_settings(isolated_data), engines={"chat": engine})) as url:
        httpx.post(url + "/api/documents", files={"file": ("규정.md", "# 휴가\n\n연차 휴가는 매년 15일이다.".encode())})
        open_app(page, url)
        expect(page.locator(".doc-item.ready")).to_have_count(1, timeout=60_000)
        page.locator("#tools-menu summary").click()
        page.check("#tools-menu input[value='search_documents']")
        page.check("#tools-menu input[value='run_python']")
        expect(page.locator("#tools-count")).to_have_text(" (2)")
        page.locator("#tools-menu summary").click()

        engine.enqueue(["규정을 찾아볼게요.\n", call("search_documents", query="연차 휴가")])
        engine.enqueue([call("run_python", code="print(15 * 8)")])
        engine.enqueue(["연차는 ", "15일이고, ", "시간으로는 120시간입니다 [1]."])
        page.fill("#chat-input", "연차는 며칠이고 몇 시간이야?")
        page.press("#chat-input", "Enter")
        answer = page.locator(".message.assistant").last
        run_step = answer.locator(".tool-step[data-tool='run_python']")
        expect(run_step.locator(".tool-confirm")).to_be_visible(timeout=30_000)  # waits for the user
        expect(run_step.locator(".tool-args")).to_contain_text("print(15 * 8)")
        expect(answer.locator(".tool-step[data-tool='search_documents'] summary")).to_contain_text("문서 검색: 연차 휴가")
        shot(page, "chat-tools-confirm")
        run_step.locator(".tool-run").click()
        expect(answer).to_have_attribute("data-finish", re.compile("^(done|trimmed)$"), timeout=60_000)
        expect(run_step.locator(".tool-result")).to_contain_text("120")
        expect(answer.locator(".message-body")).to_contain_text("120시간입니다")
        expect(answer.locator(".message-body")).not_to_contain_text("tool_call")
        expect(answer.locator(".source summary").first).to_contain_text("규정.md")
        answer.locator(".tool-step[data-tool='search_documents'] summary").click()
        shot(page, "chat-tools-done")

        page.reload()
        page.wait_for_selector("body[data-ready='1']")
        again = page.locator(".message.assistant").last
        expect(again.locator(".tool-step")).to_have_count(2)
        expect(again.locator(".tool-step[data-tool='run_python'] .tool-result")).to_contain_text("120")
        expect(page.locator("#tools-count")).to_have_text(" (2)")  # remembered for this conversation


def test_the_model_asks_for_a_picture_and_it_is_drawn_after_its_answer(page: Page, isolated_data, tmp_path):
    from tests.conftest import image_settings
    from tests.fakes import FakeImageEngine

    checkpoint = tmp_path / "fake-sdxs.safetensors"
    checkpoint.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    settings = image_settings(isolated_data, checkpoint)
    engine = FakeChatEngine(token_seconds=0.02)
    with serve(create_app(settings, engines={"chat": engine, "image": FakeImageEngine(settings.image)})) as url:
        open_app(page, url)
        page.locator("#tools-menu summary").click()
        expect(page.locator("#tool-image-choice")).to_be_visible()  # an image model is there
        page.check("#tools-menu input[value='generate_image']")
        page.locator("#tools-menu summary").click()
        engine.enqueue([call("generate_image", prompt="a red lighthouse at dusk")])
        engine.enqueue(["아래에 그려 드릴게요."])
        page.fill("#chat-input", "등대 그림 그려 줘")
        page.press("#chat-input", "Enter")
        picture = page.locator(".message.image-answer img").first
        expect(picture).to_be_visible(timeout=60_000)
        expect(page.locator(".message.image-request").last).to_contain_text("a red lighthouse at dusk")
        expect(page.locator(".tool-step[data-tool='generate_image'] .tool-result")).to_contain_text("after this answer")
        shot(page, "chat-tools-picture")
