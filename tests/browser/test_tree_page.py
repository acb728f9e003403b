"""Regenerate, edit, switch branch, thumbs, search and jump, export and import — in real Chromium."""
from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from chat import create_app
from tests.browser.conftest import open_app, shot
from tests.conftest import make_settings, serve
from tests.fakes import FakeChatEngine

pytestmark = pytest.mark.browser


@pytest.fixture
def fake_server(isolated_data):
    fake = FakeChatEngine(replies=[["첫 번째 답변"], ["두 번째 답변"], ["부산 이야기"], ["다른 대화의 답"]],
                          token_seconds=0.01)
    with serve(create_app(make_settings(isolated_data), engines={"chat": fake})) as url:
        yield url


def send(page: Page, text: str) -> None:
    page.fill("#chat-input", text)
    page.press("#chat-input", "Enter")


def test_regenerate_edit_switch_rate_search_and_export(page: Page, fake_server: str, tmp_path):
    open_app(page, fake_server)
    send(page, "서울에서 열린 축제 이야기")
    answer = page.locator(".message.assistant").last
    expect(answer.locator(".message-body")).to_have_text("첫 번째 답변")
    expect(answer.locator(".turn-regenerate")).to_be_visible()

    # Regenerate: a second version, shown as 2/2; ‹ goes back to the first.
    answer.locator(".turn-regenerate").click()
    expect(page.locator(".message.assistant").last.locator(".message-body")).to_have_text("두 번째 답변")
    expect(page.locator(".message.assistant .turn-pager-label")).to_have_text("2/2")
    page.locator(".message.assistant .turn-prev").click()
    expect(page.locator(".message.assistant .message-body")).to_have_text("첫 번째 답변")
    expect(page.locator(".message.assistant .turn-pager-label")).to_have_text("1/2")

    # Thumbs: pressed state is kept by the server.
    page.locator(".message.assistant .rate-up").click()
    expect(page.locator(".message.assistant .rate-up")).to_have_attribute("aria-pressed", "true")

    # Edit the question: a sibling message and its answer; the old question is 1/2.
    page.locator(".message.user .turn-edit").click()
    page.fill(".turn-edit-input", "부산 이야기 해 줘")
    page.click(".turn-edit-save")
    expect(page.locator(".message.assistant .message-body")).to_have_text("부산 이야기")
    expect(page.locator(".message.user .message-body")).to_have_text("부산 이야기 해 줘")
    expect(page.locator(".message.user .turn-pager-label")).to_have_text("2/2")
    shot(page, "tree-edited")
    page.locator(".message.user .turn-prev").click()
    expect(page.locator(".message.user .message-body")).to_have_text("서울에서 열린 축제 이야기")
    expect(page.locator(".message.assistant .turn-pager-label")).to_have_text("2/2")  # its latest answer
    page.locator(".message.assistant .turn-prev").click()
    expect(page.locator(".message.assistant .rate-up")).to_have_attribute("aria-pressed", "true")

    # Another conversation, then search for the first one's word with a particle attached and jump.
    page.click("#new-session")
    send(page, "오늘 날씨")
    expect(page.locator(".message.assistant .message-body")).to_have_text("다른 대화의 답")
    page.fill("#search-input", "축제")
    hit = page.locator(".search-hit").first
    expect(hit.locator("mark")).to_have_text("축제")
    expect(hit.locator(".search-title")).to_have_text("서울에서 열린 축제 이야기")
    shot(page, "search-results")
    hit.click()
    expect(page.locator("#session-title")).to_have_text("서울에서 열린 축제 이야기")
    expect(page.locator(".message.user.focused")).to_have_count(1)

    # Export: the download is the server's SFT file; import the JSON export back (already here).
    page.click(".export-box summary")
    page.select_option("#export-format", "openai")
    with page.expect_download() as download_info:
        page.click("#export-download")
    download = download_info.value
    lines = [json.loads(line) for line in Path(download.path()).read_text(encoding="utf-8").splitlines()]
    assert {line["messages"][0]["content"] for line in lines} == {"서울에서 열린 축제 이야기", "오늘 날씨"}
    exported = tmp_path / "export.json"
    exported.write_bytes(httpx.get(f"{fake_server}/api/export", params={"format": "json"}).content)
    page.set_input_files("#import-input", str(exported))
    expect(page.locator("#import-note")).to_contain_text("가져옴 0 · 이미 있음 2")
    shot(page, "export-import")
