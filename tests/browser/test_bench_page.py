"""The model bench page in real Chromium: choose tasks, follow the run, see the charts, the
numbers and the recommendation, then find the run in the history."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from chat import create_app
from tests.browser.conftest import shot
from tests.conftest import make_settings, serve
from tests.fakes import FakeChatEngine

pytestmark = pytest.mark.browser


def test_a_quick_run_from_the_page(page: Page, isolated_data):
    engine = FakeChatEngine(token_seconds=0.01)
    with serve(create_app(make_settings(isolated_data), engines={"chat": engine})) as url:
        page.goto(url + "/bench")
        expect(page.locator("#bench-tasks input")).to_have_count(8)
        seeds = page.locator("#bench-seeds")
        expect(seeds).to_be_disabled()
        expect(seeds).to_have_value("1")  # a quick run has one seed, and the field says so
        page.uncheck("#bench-quick")
        expect(seeds).to_have_value("3")
        page.check("#bench-quick")
        for task in ("instruct", "summary", "documents", "code", "tools", "vision"):
            page.uncheck(f"#bench-tasks input[value='{task}']")
        page.click("#bench-start")
        expect(page.locator("#bench-result")).to_be_visible(timeout=60_000)
        expect(page.locator("#bench-meta")).to_contain_text("pkc-mark-1")
        expect(page.locator("#bench-table tr")).to_have_count(1 + 4)  # reasoning and JSON, Korean and English
        assert page.evaluate("Object.keys(window.benchCharts).sort()") == ["bench-bars", "bench-scatter"]
        expect(page.locator("#bench-history li")).to_have_count(1)
        expect(page.locator("#bench-csv")).to_have_attribute("href", re.compile(r"/api/bench/runs/.*format=csv"))
        shot(page, "bench-page")
