"""After an answer the page patches itself from the stream's events: the saved turns' ids and
places in the tree come in the `turn` and `done` frames, labels by one waiting request. Counted
in real Chromium on a fresh server with turn analysis on (the real classifiers)."""
from __future__ import annotations

import time
from urllib.parse import urlparse

import pytest
from playwright.sync_api import Page, expect

from chat import create_app
from tests.browser.conftest import open_app, shot
from tests.conftest import make_settings, serve
from tests.fakes import FakeChatEngine

pytestmark = pytest.mark.browser
WATCH_S = 6  # longer than the labeller needs here, and than the slot's idle poll is not (15 s)


@pytest.fixture
def analysed_server(isolated_data):
    fake = FakeChatEngine(replies=[["반가워요."], ["정말 기쁜 소식이네요!"], ["다시 써 본 답"]], token_seconds=0.01)
    with serve(create_app(make_settings(isolated_data, analysis=True), engines={"chat": fake})) as url:
        yield url


def send(page: Page, text: str) -> None:
    page.fill("#chat-input", text)
    page.press("#chat-input", "Enter")


def requests_during(page: Page, seconds: float, action) -> list[tuple[str, str]]:
    """(method, path) of every request the page makes from `action` on, for `seconds`."""
    seen: list[tuple[str, str]] = []
    listener = lambda request: seen.append((request.method, urlparse(request.url).path))  # noqa: E731
    page.on("request", listener)
    action()
    page.wait_for_timeout(seconds * 1000)
    page.remove_listener("request", listener)
    return seen


def test_a_plain_answer_needs_at_most_two_requests_after_done(page: Page, analysed_server: str):
    open_app(page, analysed_server)
    send(page, "안녕하세요")  # the first answer of a new session
    expect(page.locator(".message.assistant").last).to_have_attribute("data-finish", "done")
    # its own labels request is over (the first labels load the classifiers: seconds on a busy machine)
    expect(page.locator(".message.user .emotion-badge")).to_have_count(1, timeout=60_000)

    def ask() -> None:
        send(page, "드디어 합격했어요! 너무 기뻐요!")
        expect(page.locator(".message.assistant").last).to_have_attribute("data-finish", "done")

    started = time.monotonic()
    seen = requests_during(page, WATCH_S, ask)
    assert time.monotonic() - started >= WATCH_S
    after = [(method, path) for method, path in seen if path != "/chat_stream_sse_fetch"]
    assert len(after) <= 2, after
    assert not [path for _, path in after if path.endswith("/turns") or path == "/api/slot"], after
    assert {path.rsplit("/", 1)[-1] for _, path in after} <= {"sessions", "labels"}, after

    # What the re-fetches used to bring is there: ids, the controls, the badges, the sidebar.
    question, answer = page.locator(".message.user").last, page.locator(".message.assistant").last
    assert int(answer.get_attribute("data-turn-id")) > int(question.get_attribute("data-turn-id")) > 0
    expect(answer.locator(".turn-regenerate")).to_be_visible()
    expect(question.locator(".turn-edit")).to_be_visible()
    expect(question.locator(".emotion-badge")).to_have_attribute("data-emotion", "행복", timeout=30_000)
    expect(page.locator(".session-item.active")).to_contain_text("안녕하세요")
    shot(page, "patched-after-answer")


def test_a_regenerated_answer_shows_its_place_without_rereading_the_session(page: Page, analysed_server: str):
    open_app(page, analysed_server)
    send(page, "안녕하세요")
    expect(page.locator(".message.assistant").last).to_have_attribute("data-finish", "done")
    send(page, "오늘 좋은 일이 있었어요")
    first = page.locator(".message.assistant").last
    expect(first).to_have_attribute("data-finish", "done")

    def regenerate() -> None:
        first.locator(".turn-regenerate").click()
        expect(page.locator(".message.assistant").last.locator(".message-body")).to_have_text("다시 써 본 답")
        expect(page.locator(".message.assistant").last).to_have_attribute("data-finish", "done")

    seen = requests_during(page, 2, regenerate)
    assert not [path for _, path in seen if path.endswith(("/turns", "/branch"))], seen
    answer = page.locator(".message.assistant").last
    expect(answer.locator(".turn-pager-label")).to_have_text("2/2")
    expect(page.locator(".message")).to_have_count(4)  # two questions, two answers: nothing doubled
    answer.locator(".turn-prev").click()  # the first version is one click away, as after a reload
    expect(page.locator(".message.assistant").last.locator(".message-body")).to_have_text("정말 기쁜 소식이네요!")
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    expect(page.locator(".message.assistant").last.locator(".turn-pager-label")).to_have_text("1/2")
