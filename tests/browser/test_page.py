"""The page in real headless Chromium: streaming, Stop, restore, safety, IME, sessions, layout."""
from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

from chat import create_app
from tests.browser.conftest import open_app, shot
from tests.conftest import make_settings, serve
from tests.fakes import FakeChatEngine

pytestmark = pytest.mark.browser


@pytest.fixture
def fake_chat() -> FakeChatEngine:
    return FakeChatEngine(token_seconds=0.02)


@pytest.fixture
def fake_server(isolated_data, fake_chat):
    with serve(create_app(make_settings(isolated_data), engines={"chat": fake_chat})) as url:
        yield url


def send(page: Page, text: str) -> None:
    page.fill("#chat-input", text)
    page.press("#chat-input", "Enter")


def last_answer(page: Page):
    return page.locator(".message.assistant").last


def test_chat_with_the_real_model_and_reload_restores_it(page: Page, live_server: str):
    open_app(page, live_server)
    expect(page.locator("#status-line")).to_contain_text("모델")
    send(page, "안녕하세요! Say hello in one sentence.")
    expect(last_answer(page)).to_have_attribute("data-finish", "done", timeout=60_000)
    answer = last_answer(page).locator(".message-body").inner_text()
    assert answer.strip()
    expect(page.locator(".session-item")).to_have_count(1)
    expect(page.locator(".session-item.active .session-open")).to_have_text("안녕하세요! Say hello in one sentence.")
    expect(page.locator("#slot-indicator")).to_contain_text("GPU: chat")
    expect(page.locator("#slot-indicator")).to_contain_text("/8.0 GB")
    shot(page, "chat-desktop")
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    expect(page.locator(".message")).to_have_count(2)
    assert last_answer(page).locator(".message-body").inner_text() == answer
    expect(page.locator(".message.user .message-body")).to_have_text("안녕하세요! Say hello in one sentence.")


def test_tokens_appear_while_streaming(page: Page, fake_server: str, fake_chat: FakeChatEngine):
    fake_chat.token_seconds = 0.1
    fake_chat.enqueue([f"word{i} " for i in range(20)])
    open_app(page, fake_server)
    send(page, "stream please")
    body = last_answer(page).locator(".message-body")
    expect(body).to_contain_text("word2", timeout=10_000)
    partial = body.inner_text()
    assert "word19" not in partial  # seen before the answer was complete
    expect(page.locator("#stop-button")).to_be_visible()
    expect(body).to_contain_text("word19", timeout=10_000)
    expect(last_answer(page)).to_have_attribute("data-finish", "done")
    expect(page.locator("#send-button")).to_be_visible()


def test_stop_aborts_and_the_server_frees_the_slot(page: Page, fake_server: str, fake_chat: FakeChatEngine):
    fake_chat.token_seconds = 0.1
    fake_chat.enqueue([f"t{i} " for i in range(200)])
    open_app(page, fake_server)
    send(page, "long answer")
    expect(last_answer(page).locator(".message-body")).to_contain_text("t3", timeout=10_000)
    page.click("#stop-button")
    expect(last_answer(page)).to_have_attribute("data-finish", "stopped")
    expect(page.locator("#send-button")).to_be_visible()
    for _ in range(100):
        if not httpx.get(fake_server + "/api/slot").json()["busy"]:
            break
        page.wait_for_timeout(50)
    assert httpx.get(fake_server + "/api/slot").json()["busy"] is False
    session_id = page.evaluate("localStorage.getItem('aione.sessionId')")
    turns = httpx.get(f"{fake_server}/api/sessions/{session_id}/turns").json()["turns"]
    assert turns[-1]["finish_reason"] == "stopped" and turns[-1]["text"].startswith("t0 t1 t2 t3")
    assert len(turns[-1]["text"].split()) < 200


def test_model_output_is_inert_text_and_markdown_is_rendered(page: Page, fake_server: str, fake_chat: FakeChatEngine):
    hostile = ("Look: <img src=x onerror=alert(1)> and <script>window.__pwned = 1</script> "
               "[click](javascript:alert(2)) **bold** `code`\n\n```python\nprint('<b>hi</b>')\n```\n- item")
    fake_chat.enqueue([hostile[i:i + 7] for i in range(0, len(hostile), 7)])
    open_app(page, fake_server)
    send(page, "<img src=y onerror=alert(3)>")
    answer = last_answer(page)
    expect(answer).to_have_attribute("data-finish", "done")
    messages = page.locator("#messages")
    assert messages.locator("img").count() == 0 and messages.locator("script").count() == 0
    assert messages.locator("a[href^='javascript']").count() == 0
    assert page.evaluate("window.__pwned") is None
    expect(answer.locator(".message-body")).to_contain_text("<img src=x onerror=alert(1)>")
    expect(answer.locator("strong")).to_have_text("bold")
    expect(answer.locator(".code-block pre")).to_have_text("print('<b>hi</b>')")
    expect(answer.locator(".code-block .copy-button")).to_be_visible()
    expect(answer.locator("li")).to_have_text("item")
    expect(page.locator(".message.user .message-body")).to_have_text("<img src=y onerror=alert(3)>")
    shot(page, "markdown-and-xss")


def test_enter_while_composing_hangul_does_not_send(page: Page, fake_server: str, fake_chat: FakeChatEngine):
    open_app(page, fake_server)
    page.focus("#chat-input")
    page.evaluate("""() => {
        const input = document.getElementById('chat-input');
        input.dispatchEvent(new CompositionEvent('compositionstart', {data: ''}));
        input.value = '안녕하세요';
        input.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', isComposing: true, bubbles: true, cancelable: true}));
    }""")
    page.wait_for_timeout(300)
    assert page.locator(".message").count() == 0 and fake_chat.prompts == []
    # The IME commits the syllable, and the browser may report one more composing Enter.
    page.evaluate("""() => {
        const input = document.getElementById('chat-input');
        input.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', bubbles: true, cancelable: true}));
        input.dispatchEvent(new CompositionEvent('compositionend', {data: '요'}));
    }""")
    page.wait_for_timeout(300)
    assert page.locator(".message").count() == 0  # still composing when that Enter came
    page.keyboard.press("Shift+Enter")
    assert page.input_value("#chat-input") == "안녕하세요\n" and page.locator(".message").count() == 0
    page.keyboard.press("Enter")
    expect(page.locator(".message.user .message-body")).to_have_text("안녕하세요")
    expect(page.locator(".message.user")).to_have_count(1)
    expect(last_answer(page)).to_have_attribute("data-finish", "done")
    assert len(fake_chat.prompts) == 1 and fake_chat.prompts[0][-1]["content"] == "안녕하세요"


def test_sessions_new_switch_rename_delete(page: Page, fake_server: str, fake_chat: FakeChatEngine):
    fake_chat.enqueue(["answer A"])
    fake_chat.enqueue(["answer B"])
    open_app(page, fake_server)
    send(page, "first topic")
    expect(last_answer(page)).to_have_attribute("data-finish", "done")
    page.click("#new-session")
    expect(page.locator(".message")).to_have_count(0)
    send(page, "second topic")
    expect(last_answer(page)).to_have_attribute("data-finish", "done")
    expect(page.locator(".session-item")).to_have_count(2)

    page.locator(".session-item", has_text="first topic").locator(".session-open").click()
    expect(last_answer(page).locator(".message-body")).to_have_text("answer A")
    expect(page.locator("#session-title")).to_have_text("first topic")

    page.locator(".session-item", has_text="first topic").locator(".session-rename").click()
    page.fill(".session-rename-input", "여행 계획")
    page.press(".session-rename-input", "Enter")
    expect(page.locator(".session-item.active .session-open")).to_have_text("여행 계획")
    expect(page.locator("#session-title")).to_have_text("여행 계획")
    titles = [s["title"] for s in httpx.get(fake_server + "/api/sessions").json()["sessions"]]
    assert "여행 계획" in titles

    page.expected_dialogs.append("삭제")  # type: ignore[attr-defined]  # the confirm() before deleting
    page.locator(".session-item", has_text="second topic").locator(".session-delete").click()
    expect(page.locator(".session-item")).to_have_count(1)
    assert [s["title"] for s in httpx.get(fake_server + "/api/sessions").json()["sessions"]] == ["여행 계획"]


def test_usable_at_360_pixels(page: Page, fake_server: str, fake_chat: FakeChatEngine):
    fake_chat.enqueue(["짧은 답변입니다. " * 6])
    page.set_viewport_size({"width": 360, "height": 740})
    open_app(page, fake_server)
    send(page, "모바일에서도 잘 보이나요? 아주 긴 메시지를 보내서 줄바꿈이 되는지 확인합니다.")
    expect(last_answer(page)).to_have_attribute("data-finish", "done")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    for selector in ("#chat-input", "#send-button", "#menu-toggle"):
        box = page.locator(selector).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 360, selector
    expect(page.locator("#sidebar")).not_to_be_in_viewport()
    shot(page, "chat-360")
    page.click("#menu-toggle")
    expect(page.locator("#new-session")).to_be_in_viewport()
    page.wait_for_timeout(300)  # the drawer slides in
    shot(page, "chat-360-menu")


def test_loading_progress_shows_in_the_answer_while_the_model_loads(page: Page, fake_server: str, fake_chat: FakeChatEngine):
    fake_chat.load_seconds = 1.2
    open_app(page, fake_server)
    send(page, "first message loads the model")
    status = last_answer(page).locator(".message-status")
    expect(status).to_contain_text("모델 불러오는 중", timeout=5_000)
    expect(status).to_contain_text("%")
    expect(page.locator("#status-line")).to_contain_text("불러오는 중")
    expect(last_answer(page)).to_have_attribute("data-finish", "done", timeout=10_000)
    expect(status).to_be_hidden()
    expect(page.locator("#slot-indicator")).to_contain_text("GPU: chat")


def test_a_remote_chat_model_is_named_and_answers_in_the_page(page: Page, isolated_data, tmp_path):
    """The chat role on another OpenAI-compatible server (here another PKC AI-ONE's /v1 with a
    fake model): the status line says it is remote, and the answer streams into the page."""
    upstream = FakeChatEngine(replies=[["먼 ", "곳에서 ", "왔어요"]], token_seconds=0.05)
    with serve(create_app(make_settings(tmp_path / "far"), engines={"chat": upstream})) as far:
        settings = make_settings(isolated_data)
        settings.chat.base_url, settings.chat.remote_model = far + "/v1", "chat"
        with serve(create_app(settings)) as url:
            open_app(page, url)
            expect(page.locator("#status-line")).to_contain_text("chat @ 127.0.0.1")
            expect(page.locator("#status-line")).to_contain_text("(원격)")
            expect(page.locator("#slot-indicator")).to_contain_text("원격: chat")
            send(page, "어디서 왔어요?")
            expect(last_answer(page)).to_have_attribute("data-finish", "done")
            expect(last_answer(page).locator(".message-body")).to_have_text("먼 곳에서 왔어요")
            shot(page, "chat-remote")
    assert upstream.prompts[-1][-1] == {"role": "user", "content": "어디서 왔어요?"}


def test_a_server_error_is_told_in_the_pages_language_with_the_servers_detail(page: Page, isolated_data, tmp_path):
    """The page translates an error by its code (ko here); the server's message stays as the detail."""
    settings = make_settings(isolated_data)
    settings.chat.model_path = tmp_path / "없는-모델.gguf"
    settings.server.preload_chat = False
    with serve(create_app(settings)) as url:
        open_app(page, url)
        send(page, "안녕")
        error = page.locator(".message.assistant .message-error")
        expect(error).to_contain_text("모델 파일이 없거나 설정되지 않았습니다", timeout=20_000)
        expect(error).to_contain_text("없는-모델.gguf")  # the detail: which file, which setting
        shot(page, "error-in-korean")
