"""Memories and personas in the page (the real embedded model and embedder): a fact saved by a
cue and undone, 기억 N개 사용 under an answer in a new chat, 기억하기 on a message, the 기억 ·
도우미 page (a proposal accepted, a memory turned off, a persona made), and a persona chosen
for a new chat shown in the header."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from chat import create_app
from settings import Memory
from tests.browser.conftest import open_app, shot
from tests.conftest import make_settings, serve

pytestmark = pytest.mark.browser


@pytest.fixture
def server(isolated_data):
    settings = make_settings(isolated_data, max_tokens=12)
    settings.memory = Memory(quiet_s=0.3)
    with serve(create_app(settings)) as url:
        yield url


def send(page: Page, text: str, answers: int) -> None:
    page.fill("#chat-input", text)
    page.press("#chat-input", "Enter")
    expect(page.locator(".message.assistant")).to_have_count(answers, timeout=60_000)
    expect(page.locator(".message.assistant").last).to_have_attribute("data-finish", re.compile("."), timeout=60_000)


def test_save_by_cue_undo_and_use_in_a_new_chat(page: Page, server: str):
    open_app(page, server)
    send(page, "기억해 줘: 나는 주말마다 북한산에 등산을 가", 1)
    note = page.locator(".memory-note")
    expect(note).to_contain_text("기억했습니다")
    expect(note).to_contain_text("나는 주말마다 북한산에 등산을 가")
    shot(page, "memory-saved-by-cue")
    note.locator(".memory-undo").click()
    expect(note).to_contain_text("되돌렸습니다")
    assert page.request.get(f"{server}/api/memories").json()["memories"] == []

    send(page, "기억해 줘: 나는 주말마다 북한산에 등산을 가", 2)
    page.click("#new-session")
    send(page, "내가 주말마다 뭐 한다고 했지?", 1)
    used = page.locator(".memories-used")
    expect(used).to_contain_text("기억 1개 사용")
    used.locator("summary").click()
    expect(used).to_contain_text("북한산")
    expect(page.locator("#memory-off-label")).to_be_visible()
    shot(page, "memory-used-in-a-new-chat")
    page.reload()  # kept with the answer: shown again
    page.wait_for_selector("body[data-ready='1']")
    expect(page.locator(".memories-used")).to_contain_text("기억 1개 사용")
    expect(page.locator(".sources")).to_have_count(0)  # a memory is not a document passage
    page.check("#memory-off")  # this chat without memories: saved, and shown so after a reload
    page.wait_for_timeout(300)
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    expect(page.locator("#memory-off")).to_be_checked()
    page.uncheck("#memory-off")
    page.wait_for_timeout(300)

    page.locator(".message.user .turn-remember").first.click()  # 기억하기 on a message
    expect(page.locator(".message.user .memory-note")).to_contain_text("기억했습니다")
    texts = [m["text"] for m in page.request.get(f"{server}/api/memories").json()["memories"]]
    assert "내가 주말마다 뭐 한다고 했지?" in texts


def test_the_memory_page_and_a_persona_for_a_new_chat(page: Page, server: str):
    obsidian = page.request.post(f"{server}/api/memories", data={"text": "I keep my notes in Obsidian"}).json()
    open_app(page, server)
    send(page, "저는 대전에 사는 초등학교 교사예요. 수업 아이디어 하나만 줘", 1)  # a proposal, once quiet
    page.goto(f"{server}/memory")
    page.wait_for_selector("body[data-ready='1']")
    expect(page.locator("#memory-list .memory-row")).to_have_count(1)
    for _ in range(40):  # the quiet timer and the model's pass
        if page.request.get(f"{server}/api/memories/proposals").json()["proposals"]:
            break
        page.wait_for_timeout(250)
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    proposal = page.locator("#proposal-list .proposal-row").first
    expect(proposal.locator(".memory-text")).to_have_value(re.compile("대전"))
    proposal.locator(".memory-text").fill("나는 대전의 초등학교 교사")
    proposal.locator(".proposal-accept").click()
    expect(page.locator("#memory-list .memory-row")).to_have_count(2)
    expect(page.locator("#proposals-section")).to_be_hidden()
    row = page.locator(f"#memory-list .memory-row[data-memory-id='{obsidian['id']}']")
    row.locator(".memory-on").uncheck()
    expect(row).to_have_class(re.compile("off"))
    page.fill("#memory-search", "대전")
    expect(page.locator("#memory-list .memory-row")).to_have_count(1)

    page.click("#persona-new")
    page.fill("#persona-form input[name=name]", "여행 플래너")
    page.fill("#persona-form input[name=icon]", "")
    page.fill("#persona-form textarea[name=system_prompt]", "너는 꼼꼼한 여행 계획 도우미다.")
    page.click("#persona-form button[type=submit]")
    expect(page.locator(".persona-row", has_text="여행 플래너")).to_have_count(1)
    shot(page, "memory-page")
    memories = page.request.get(f"{server}/api/memories").json()["memories"]
    assert {m["text"]: m["enabled"] for m in memories} == {"I keep my notes in Obsidian": False,
                                                          "나는 대전의 초등학교 교사": True}

    open_app(page, server)
    page.click("#new-session")
    page.select_option("#persona-choice", label="여행 플래너")
    expect(page.locator("#session-persona")).to_contain_text("여행 플래너")
    send(page, "부산 1박 2일 일정", 1)
    expect(page.locator("#session-persona")).to_contain_text("여행 플래너", timeout=10_000)
    session_id = page.evaluate("() => localStorage.getItem('aione.session') || ''") or None
    sessions = page.request.get(f"{server}/api/sessions").json()["sessions"]
    newest = sessions[0] if session_id is None else next(s for s in sessions if s["id"] == session_id)
    persona = next(p for p in page.request.get(f"{server}/api/personas").json()["personas"] if p["name"] == "여행 플래너")
    assert newest["persona_id"] == persona["id"]
    context = page.request.get(f"{server}/api/sessions/{newest['id']}/context").json()
    assert context["parts"][0]["text"] == "너는 꼼꼼한 여행 계획 도우미다."
    shot(page, "persona-chat-header")
    page.select_option("#persona-choice", label="보고서 작성")  # in an open chat: a new chat with it
    expect(page.locator(".message")).to_have_count(0)
    expect(page.locator("#session-persona")).to_contain_text("보고서 작성")
    page.click("#new-session")  # a new chat with the default helper: no badge
    page.select_option("#persona-choice", "default")
    expect(page.locator("#session-persona")).to_be_hidden()
