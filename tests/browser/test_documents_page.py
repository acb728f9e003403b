"""The document library in real Chromium with the real embedder, Chroma and SmolLM2."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import open_app, shot

pytestmark = pytest.mark.browser

NOTES = ("# 사내 복지 안내\n\n직원은 매년 15일의 연차 휴가를 받는다. 연차 신청은 인사팀 포털에서 한다.\n\n"
         "## 식대\n\n점심 식대는 하루 만이천 원까지 지원된다.\n")


def test_upload_ask_and_see_the_sources(page: Page, live_server: str, tmp_path):
    notes = tmp_path / "복지 안내.md"
    notes.write_text(NOTES, encoding="utf-8")
    open_app(page, live_server)
    expect(page.locator("#doc-empty")).to_be_visible()
    page.set_input_files("#doc-input", str(notes))
    item = page.locator(".doc-item").first
    expect(item.locator(".doc-name")).to_have_text("복지 안내.md")
    expect(item).to_have_class(re.compile(r"\bready\b"), timeout=60_000)
    expect(item.locator(".doc-status")).to_contain_text("md")
    page.set_input_files("#doc-input", str(notes))  # the same content again: one document, and it says so
    expect(page.locator("#composer-error")).to_contain_text("이미 보관함에 있는 문서")
    expect(page.locator(".doc-item")).to_have_count(1)

    page.fill("#chat-input", "연차 휴가는 며칠인가요?")
    page.press("#chat-input", "Enter")
    answer = page.locator(".message.assistant").last
    expect(answer).to_have_attribute("data-finish", re.compile("^(done|trimmed)$"), timeout=60_000)
    source = answer.locator(".source").first
    expect(source.locator("summary")).to_have_text("[1] 복지 안내.md")
    expect(source.locator(".source-passage")).to_be_hidden()
    source.locator("summary").click()
    expect(source.locator(".source-passage")).to_contain_text("15일의 연차 휴가")
    shot(page, "documents-sources")

    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    expect(page.locator(".message.assistant .source summary").first).to_have_text("[1] 복지 안내.md")

    page.select_option("#doc-scope", "none")
    page.fill("#chat-input", "연차 휴가는 며칠인가요?")
    page.press("#chat-input", "Enter")
    last = page.locator(".message.assistant").last
    expect(last).to_have_attribute("data-finish", re.compile("^(done|trimmed)$"), timeout=60_000)
    assert last.locator(".source").count() == 0
