"""The analytics dashboard and the chat's emotion badges in real Chromium, on labels the real
pipeline made (the embedded classifier over the multilingual embedder)."""
from __future__ import annotations

import time

import httpx
import pytest
from playwright.sync_api import Page, expect

from chat import create_app
from tests.browser.conftest import open_app, shot
from tests.conftest import make_settings, serve
from tests.history_fixture import write_history_sync

pytestmark = pytest.mark.browser


@pytest.fixture
def labelled_server(isolated_data):
    """The fixture history, labelled in the background by the real classifiers before the test."""
    isolated_data.mkdir(parents=True)
    ids = write_history_sync(isolated_data)
    with serve(create_app(make_settings(isolated_data, analysis=True))) as url:
        deadline = time.monotonic() + 90
        while httpx.get(f"{url}/api/analysis").json()["unlabelled"]:
            assert time.monotonic() < deadline, "history not labelled"
            time.sleep(0.3)
        yield url, ids


def chart_data(page: Page, canvas: str):
    return page.evaluate(f"window.dashboardCharts['{canvas}'].data.datasets.map(d => d.data)")


def test_dashboard_draws_the_stored_labels_and_clicks_through_to_a_session(page: Page, labelled_server):
    url, ids = labelled_server
    stats = httpx.get(f"{url}/api/stats", params={"from": "2026-11-01", "to": "2026-11-30"}).json()
    page.goto(f"{url}/dashboard")
    page.wait_for_selector("body[data-ready='1']")
    page.fill("#dash-from", "2026-11-01")
    page.fill("#dash-to", "2026-11-30")
    page.click("button[type=submit]")
    page.wait_for_function("window.dashboardCharts['chart-activity'].data.datasets[0].data.some(p => p.v)")

    # Every chart is drawn from /api/stats (the real labels), not from anything of its own.
    assert sum(chart_data(page, "chart-emotion-share")[0]) == sum(stats["emotion_share"]["user"].values()) == 5
    busy_days = {p["day"]: p["v"] for p in chart_data(page, "chart-activity")[0] if p["v"]}
    assert busy_days == stats["activity"] == {"2026-11-02": 2, "2026-11-09": 1, "2026-11-16": 2}
    assert sum(sum(d) for d in chart_data(page, "chart-emotion-time")) == 5
    # the emotions come from the server (the classifier's labels, in its order), one dataset each
    assert stats["emotions"] == stats["analysis"]["emotions"] and len(stats["emotions"]) == 7
    assert page.evaluate("window.dashboardCharts['chart-emotion-time'].data.datasets.map(d => d.emotion)") == stats["emotions"]
    assert sum(chart_data(page, "chart-intent")[0]) == sum(stats["intent_share"].values()) == 5
    keywords = page.evaluate("window.dashboardCharts['chart-keywords'].data.labels")
    assert keywords == [k["term"] for k in stats["top_keywords"][:15]] and "강아지" in keywords
    assert chart_data(page, "chart-model")[0] == [51.0, 51.0, 51.0]
    expect(page.locator("#dash-classifier")).to_contain_text("seed-emotion-")
    expect(page.locator("#dash-classifier")).to_contain_text("보류 세트 정확도")
    expect(page.locator("#dash-classifier")).to_contain_text("라벨 완료 10/10")

    page.screenshot(path=str(shot(page, "dashboard-all")), full_page=True)

    # A session's emotion timeline beside its messages.
    page.select_option("#dash-session", ids["강아지"])
    expect(page.locator("#timeline-messages li")).to_have_count(2)
    expect(page.locator("#timeline-messages li").first).to_contain_text("강아지가 하늘나라로")
    shot(page, "dashboard")

    # Click a day in the heatmap: the sessions of that day; one opens in the chat with its badges.
    page.select_option("#dash-session", "")
    expect(page.locator("#timeline-split")).to_be_hidden()  # redrawn for all sessions
    page.locator("#chart-activity").scroll_into_view_if_needed()
    where = page.evaluate("""() => {
        const chart = window.dashboardCharts['chart-activity'];
        const index = chart.data.datasets[0].data.findIndex(p => p.day === '2026-11-02');
        const point = chart.getDatasetMeta(0).data[index];
        const box = chart.canvas.getBoundingClientRect();
        return {x: box.left + point.x, y: box.top + point.y};
    }""")
    page.mouse.click(where["x"], where["y"])
    expect(page.locator("#drill-list li")).to_have_count(2)
    expect(page.locator("#drill-title")).to_contain_text("2026-11-02")
    page.locator("#drill-list a", has_text="강아지").click()
    page.wait_for_selector("body[data-ready='1']")
    expect(page.locator("#session-title")).to_have_text("강아지")
    badges = page.locator(".message .emotion-badge")
    expect(badges).to_have_count(2)
    expect(badges.first).to_be_visible()
    assert page.locator(".message.user").first.locator(".emotion-badge").get_attribute("data-emotion") in (
        "공포", "놀람", "분노", "슬픔", "중립", "행복", "혐오")
    shot(page, "chat-emotion-badges")


def test_badges_appear_after_a_live_answer_and_the_setting_hides_them(page: Page, labelled_server):
    url, _ = labelled_server
    open_app(page, url)
    page.fill("#chat-input", "드디어 합격했어요! 너무 기뻐요!")
    page.press("#chat-input", "Enter")
    answer = page.locator(".message.assistant").last
    expect(answer).to_have_attribute("data-finish", "done", timeout=60_000)
    question = page.locator(".message.user").last
    expect(question.locator(".emotion-badge")).to_have_attribute("data-emotion", "행복", timeout=20_000)
    expect(answer.locator(".emotion-badge")).to_have_count(1, timeout=20_000)

    page.goto(f"{url}/dashboard")
    page.wait_for_selector("body[data-ready='1']")
    page.uncheck("#badge-toggle")
    open_app(page, url)
    expect(page.locator(".message").first).to_be_visible()
    assert page.locator(".message .emotion-badge").count() >= 2  # still there, only hidden
    expect(page.locator(".message .emotion-badge").first).to_be_hidden()
