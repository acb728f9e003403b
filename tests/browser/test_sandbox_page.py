"""Run on a code block of an answer, in real Chromium through the real sandbox: output streams,
a figure comes back, Stop ends a run, the editor changes the code, the result goes to the model,
and a reopened session shows each block's last run."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from playwright.sync_api import Page, expect

from chat import create_app
from settings import Sandbox as SandboxSettings
from tests.browser.conftest import open_app, shot
from tests.conftest import make_settings, serve
from tests.fakes import FakeChatEngine

pytestmark = pytest.mark.browser

ANSWER = """그래프를 그려 보겠습니다.

```python
import matplotlib.pyplot as plt
for i in range(3):
    print("줄", i)
plt.plot([1, 4, 9])
plt.title("squares")
plt.show()
```

그리고 오래 걸리는 코드입니다.

```python
import time
print("시작")
time.sleep(60)
```
"""


@pytest.fixture
def fake(isolated_data):
    fake = FakeChatEngine(replies=[[ANSWER], ["결과를 확인했습니다."]], token_seconds=0.0)
    settings = make_settings(isolated_data)
    settings.sandbox = SandboxSettings(timeout_s=120)
    with serve(create_app(settings, engines={"chat": fake})) as url:
        yield url, fake


def test_run_stop_edit_and_send_the_result(page: Page, fake):
    url, engine = fake
    open_app(page, url)
    page.fill("#chat-input", "그래프 코드 보여 줘")
    page.press("#chat-input", "Enter")
    blocks = page.locator(".message.assistant .code-block")
    expect(blocks).to_have_count(2)
    first, second = blocks.nth(0), blocks.nth(1)

    # Run: stdout streams into the panel, the figure comes back as a picture.
    first.locator(".run-button").click()
    expect(first.locator(".run-output")).to_contain_text("줄 2")
    expect(first.locator(".run-status")).to_contain_text("종료 코드 0")
    picture = first.locator(".run-images img")
    expect(picture).to_have_count(1)
    page.wait_for_function("img => img.complete && img.naturalWidth === 640", arg=picture.element_handle())
    shot(page, "sandbox-run-figure")

    # Stop: a 60 s sleep ends at once, marked as stopped.
    second.locator(".run-button").click()
    expect(second.locator(".run-output")).to_contain_text("시작")
    second.locator(".run-stop").click()
    expect(second.locator(".run-status")).to_contain_text("중지됨", timeout=5000)
    expect(second.locator(".run-stop")).to_be_hidden()

    # Edit, then run the edited code: an error shows its traceback in red (stderr).
    first.locator(".edit-code-button").click()
    first.locator(".code-editor").fill("print('편집됨')\n1 / 0")
    first.locator(".run-button").click()
    expect(first.locator(".run-output .stderr")).to_contain_text("ZeroDivisionError")
    expect(first.locator(".run-output .stdout")).to_have_text("편집됨\n")
    expect(first.locator(".run-status")).to_contain_text("종료 코드 1")
    shot(page, "sandbox-run-edited")

    # Send the result to the model: it is the next message, with the output and the edited code.
    first.locator(".run-send").click()
    expect(page.locator(".message.assistant").last.locator(".message-body")).to_have_text("결과를 확인했습니다.")
    sent = engine.prompts[-1][-1]["content"]
    assert "편집됨" in sent and "ZeroDivisionError" in sent and "1 / 0" in sent and "종료 코드 1" in sent

    # Reopened, each block shows its last run (the sleep was stopped; the edited run failed, and
    # its code is back in the editor): runs are kept by answer and block, not matched by code text.
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    blocks = page.locator(".message.assistant").first.locator(".code-block")
    expect(blocks.nth(1).locator(".run-status")).to_contain_text("중지됨")
    expect(blocks.nth(0).locator(".run-output .stderr")).to_contain_text("ZeroDivisionError")
    expect(blocks.nth(0).locator(".code-editor")).to_have_value("print('편집됨')\n1 / 0")
    shot(page, "sandbox-restored")


def test_two_blocks_with_the_same_code_keep_their_own_runs(page: Page, isolated_data):
    same = "```python\nimport random\nprint(random.random())\n```"
    engine = FakeChatEngine(replies=[[f"하나:\n\n{same}\n\n둘:\n\n{same}"]])
    with serve(create_app(make_settings(isolated_data), engines={"chat": engine})) as url:
        open_app(page, url)
        page.fill("#chat-input", "코드 두 개")
        page.press("#chat-input", "Enter")
        blocks = page.locator(".message.assistant .code-block")
        expect(blocks).to_have_count(2)
        blocks.nth(1).locator(".run-button").click()
        expect(blocks.nth(1).locator(".run-status")).to_contain_text("종료 코드 0")
        printed = blocks.nth(1).locator(".run-output").inner_text()
        page.reload()
        page.wait_for_selector("body[data-ready='1']")
        blocks = page.locator(".message.assistant .code-block")
        expect(blocks.nth(1).locator(".run-output")).to_have_text(printed)
        expect(blocks.nth(0).locator(".run-panel")).to_be_hidden()  # the first block never ran


@contextmanager
def code_answer_without_bubblewrap(page: Page, data, tmp_path, **sandbox) -> Iterator:
    """A server whose bwrap is missing, and an answer with a Python block on the page; yields its Run button."""
    settings = make_settings(data)
    settings.sandbox = SandboxSettings(bwrap_path=tmp_path / "no-bwrap", **sandbox)
    engine = FakeChatEngine(replies=[["```python\nprint(6 * 7)\n```"]])
    with serve(create_app(settings, engines={"chat": engine})) as url:
        open_app(page, url)
        page.fill("#chat-input", "코드")
        page.press("#chat-input", "Enter")
        yield page.locator(".message.assistant .run-button")


def test_run_button_off_with_the_reason(page: Page, isolated_data, tmp_path):
    with code_answer_without_bubblewrap(page, isolated_data, tmp_path) as run:
        expect(run).to_be_disabled()
        assert "bwrap not found" in (run.get_attribute("title") or "")


def test_an_unisolated_run_is_labelled_as_such(page: Page, isolated_data, tmp_path):
    with code_answer_without_bubblewrap(page, isolated_data, tmp_path, unsafe_allow_unisolated=True) as run:
        expect(run).to_have_text("⚠ 실행")
        assert "NOT ISOLATED" in (run.get_attribute("title") or "")
        run.click()
        expect(page.locator(".message.assistant .run-output")).to_have_text("42\n")
