"""Image mode in real Chromium: the real routes, slot and stores with a fake generator (the
library itself: tests/test_image_engine.py and the chat -> image -> chat API test)."""
from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

from chat import create_app
from tests.browser.conftest import open_app, shot
from tests.conftest import fake_image_app, make_settings, serve


@pytest.fixture
def image_server(isolated_data, tmp_path):
    with serve(fake_image_app(isolated_data, tmp_path, step_seconds=0.15)) as url:
        yield url


def test_generate_see_progress_and_picture_then_find_it_in_the_gallery(page: Page, image_server: str):
    open_app(page, image_server)
    page.click("#image-mode-toggle")
    expect(page.locator("#image-panel")).to_be_visible()
    expect(page.locator("#img-width")).to_have_value("256")  # family default 512, capped by the limit
    page.fill("#img-steps", "4")
    page.fill("#img-batch", "2")
    page.fill("#chat-input", "빨간 사과 한 개")
    page.keyboard.press("Enter")

    bar = page.locator(".message.assistant progress.image-progress")
    expect(bar).to_be_attached(timeout=60_000)
    expect(page.locator(".image-progress-text")).to_contain_text("스텝")
    assert int(bar.get_attribute("max") or 0) == 4
    pictures = page.locator(".message.assistant .picture img")
    expect(pictures).to_have_count(2, timeout=120_000)
    expect(page.locator("#send-button")).to_be_visible(timeout=30_000)  # finished
    assert page.evaluate("document.querySelector('.picture img').naturalWidth") == 256
    expect(bar).to_have_count(0)
    expect(page.locator(".picture figcaption").first).to_contain_text("seed")
    shot(page, "image-generated")

    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    expect(page.locator("#gallery-grid .gallery-item")).to_have_count(2)
    expect(page.locator(".message.assistant .picture img")).to_have_count(2)  # restored in the chat
    expect(page.locator(".message.image-request")).to_contain_text("빨간 사과 한 개")
    expect(page.locator(".picture figcaption").first).to_contain_text("seed")
    assert page.evaluate("document.querySelector('.picture img').naturalWidth") == 256
    shot(page, "image-gallery-after-reload")


def test_slash_command_and_use_as_input(page: Page, image_server: str):
    open_app(page, image_server)
    page.fill("#chat-input", "/image 작은 집")
    page.keyboard.press("Enter")
    expect(page.locator(".message.assistant .picture img")).to_have_count(1, timeout=120_000)
    expect(page.locator("#send-button")).to_be_visible(timeout=30_000)
    first_id = page.locator(".picture").first.get_attribute("data-image-id")

    page.locator(".picture button").first.click()  # "use as input"
    expect(page.locator("#img-init")).to_be_visible()
    expect(page.locator("#image-mode-toggle")).to_have_attribute("aria-pressed", "true")
    page.fill("#chat-input", "밤의 작은 집")
    page.keyboard.press("Enter")
    expect(page.locator(".message.assistant .picture img")).to_have_count(2, timeout=120_000)
    expect(page.locator("#send-button")).to_be_visible(timeout=30_000)

    session_id = page.evaluate("localStorage.getItem('aione.sessionId')")
    gallery = httpx.get(f"{image_server}/api/sessions/{session_id}/images").json()["images"]
    assert gallery[0]["id"] == first_id and gallery[0]["params"]["prompt"] == "작은 집"
    assert gallery[1]["params"]["init_image_id"] == first_id
    shot(page, "image-img2img")


def test_image_mode_off_without_a_model_says_why(page: Page, isolated_data):
    with serve(create_app(make_settings(isolated_data))) as url:
        open_app(page, url)
        page.click("#image-mode-toggle")
        expect(page.locator("#image-panel")).to_be_hidden()
        expect(page.locator("#composer-error")).to_contain_text("AIONE_IMAGE__MODEL_PATH")


def test_answering_again_before_a_picture_takes_the_picture_off_the_screen_as_the_server_does(page: Page,
                                                                                            image_server: str):
    """The page finds the turns after the one answered again in its state (the branch on show),
    pictures drawn in this visit included, not by walking the DOM."""
    open_app(page, image_server)
    page.fill("#chat-input", "안녕")
    page.keyboard.press("Enter")
    answer = page.locator(".message.assistant").first
    expect(answer.locator(".turn-regenerate")).to_be_visible(timeout=30_000)
    page.fill("#chat-input", "/image 작은 집")
    page.keyboard.press("Enter")
    expect(page.locator(".message.assistant .picture img")).to_have_count(1, timeout=120_000)
    expect(page.locator("#send-button")).to_be_visible(timeout=30_000)
    assert page.locator(".message.image-request").get_attribute("data-turn-id")  # placed from the stream

    answer.locator(".turn-regenerate").click()
    expect(page.locator(".message.assistant .message-body").last).not_to_be_empty(timeout=30_000)
    expect(page.locator("#send-button")).to_be_visible(timeout=30_000)
    expect(page.locator(".message.image-request")).to_have_count(0)
    expect(page.locator(".picture")).to_have_count(0)
    expect(page.locator(".message")).to_have_count(2)
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    expect(page.locator(".message")).to_have_count(2)  # the server's branch on show is the same
    expect(page.locator(".picture")).to_have_count(0)
