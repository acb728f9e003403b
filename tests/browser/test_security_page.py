"""The page behind a token (a server shared on a LAN): sign in, then chat; CSP holds throughout
(the page fixture fails a test on any CSP violation in the console)."""
from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from pydantic import SecretStr

from chat import create_app
from tests.browser.conftest import open_app, shot
from tests.conftest import make_settings, serve
from tests.fakes import FakeChatEngine

pytestmark = pytest.mark.browser
TOKEN = "a-token-for-the-lan-0123456789"


def test_the_page_signs_in_then_chats(page: Page, isolated_data):
    settings = make_settings(isolated_data)
    settings.server.api_token = SecretStr(TOKEN)
    chat = FakeChatEngine(replies=[["안녕", "하세요"]])
    with serve(create_app(settings, engines={"chat": chat})) as url:
        page.goto(url)
        page.wait_for_selector("body[data-signin='1']")
        expect(page.locator(".signin-title")).to_have_text("PKC AI-ONE 로그인")
        page.fill("#signin-token", "not-the-token-at-all")
        page.press("#signin-token", "Enter")
        expect(page.locator("#signin-error")).to_have_text("토큰이 맞지 않습니다")
        shot(page, "signin-wrong-token")
        page.fill("#signin-token", TOKEN)
        page.click("#signin-form button[type=submit]")
        page.wait_for_selector("body[data-ready='1']")
        cookies = page.context.cookies()
        assert [(c["name"], c["httpOnly"], c["sameSite"]) for c in cookies] == [("aione_auth", True, "Strict")]
        assert page.evaluate("document.cookie") == ""  # invisible to scripts
        page.fill("#chat-input", "hello")
        page.press("#chat-input", "Enter")
        expect(page.locator(".message.assistant").last).to_have_attribute("data-finish", "done")
        expect(page.locator(".message.assistant .message-body").last).to_have_text("안녕하세요")


def test_the_page_runs_under_the_csp_without_a_token(page: Page, isolated_data):
    with serve(create_app(make_settings(isolated_data), engines={"chat": FakeChatEngine()})) as url:
        response = page.goto(url)
        assert response is not None and "script-src 'self'" in response.headers["content-security-policy"]
        open_app(page, url)
        expect(page.locator("#chat-input")).to_be_visible()
