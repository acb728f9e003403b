"""Headless Debian Chromium driven by Playwright's Python package (no browser download)."""
from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

ARTIFACTS = Path(__file__).resolve().parent.parent / ".artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]


def chromium_path() -> str:
    path = os.environ.get("AIONE_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail("Debian chromium is missing: ./run_tests.sh installs it (apt-get install chromium)")
    return path


@pytest.fixture(scope="module")  # Playwright's sync API holds an event loop; end it with the module
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(locale="ko-KR", viewport={"width": 1200, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # The server's Content-Security-Policy must never block the page's own code.
    page.on("console", lambda msg: "Content Security Policy" in msg.text and errors.append(f"CSP: {msg.text}"))
    expected_dialogs: list[str] = []  # a test appends a message it expects; anything else is an error

    def on_dialog(dialog) -> None:
        if expected_dialogs and expected_dialogs[0] in dialog.message:
            expected_dialogs.pop(0)
            dialog.accept()
        else:
            errors.append(f"unexpected dialog: {dialog.message}")
            dialog.dismiss()

    page.on("dialog", on_dialog)
    page.expected_dialogs = expected_dialogs  # type: ignore[attr-defined]
    yield page
    # Errors raised while the context closes (a fetch still in flight reports "Failed to fetch")
    # are the test's ending, not the page's fault: judge what happened before.
    seen = list(errors)
    context.close()
    assert not seen, seen


def shot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def open_app(page: Page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']")
