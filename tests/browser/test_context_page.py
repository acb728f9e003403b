"""A conversation longer than the context, in the page: the meter by the composer, the marker
where the model's window starts, its summary on click, and the parts of the next prompt."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from chat import create_app
from tests.browser.conftest import open_app, shot
from tests.conftest import make_settings, serve

pytestmark = pytest.mark.browser
FACT = "내 이름은 민지고 회사에서 파이썬으로 데이터 분석을 해."


@pytest.fixture
def small_context_server(isolated_data):
    settings = make_settings(isolated_data, n_ctx=1024, max_tokens=16)
    settings.context.summaries = False
    with serve(create_app(settings)) as url:
        yield url


def test_the_meter_the_window_marker_and_the_summary(page: Page, small_context_server: str):
    open_app(page, small_context_server)
    meter = page.locator("#context-meter")
    expect(meter).to_be_hidden()  # a new chat: nothing to measure yet
    for turn in range(9):
        text = (FACT + " ") if turn == 0 else f"{turn}번째 이야기야. "
        page.fill("#chat-input", text + "오늘 날씨와 산책 이야기를 길게 해 줘. " * 3)
        page.press("#chat-input", "Enter")
        expect(page.locator(".message.assistant").nth(turn)).to_have_attribute(
            "data-finish", re.compile("^(done|trimmed)$"), timeout=60_000)
        expect(meter).to_contain_text(re.compile(r"문맥 [\d,]+ / 1,024"))
        page.wait_for_timeout(300)
    marker = page.locator(".window-marker")
    expect(marker).to_have_count(1, timeout=30_000)
    expect(marker).to_contain_text("이전 대화는 요약되어 전달됩니다")
    assert marker.evaluate("(m) => m.nextElementSibling.classList.contains('message')")
    marker.locator(".window-summary-button").click()
    expect(marker.locator(".window-summary")).to_contain_text(FACT)
    meter.click()
    panel = page.locator("#context-panel")
    expect(panel).to_be_visible()
    expect(panel.locator(".context-summary")).to_contain_text(FACT)
    assert panel.locator(".context-turn").count() >= 2
    shot(page, "context-meter-and-marker")

    page.reload()  # the marker and the meter come back from the server
    page.wait_for_selector("body[data-ready='1']")
    expect(page.locator(".window-marker")).to_have_count(1)
    expect(meter).to_contain_text(re.compile(r"문맥 [\d,]+ / 1,024"))
