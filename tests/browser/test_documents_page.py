"""The document library in real Chromium with the real embedder, Chroma and SmolLM2."""
from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import open_app, shot

pytestmark = pytest.mark.browser

NOTES = ("# 사내 복지 안내\n\n직원은 매년 15일의 연차 휴가를 받는다. 연차 신청은 인사팀 포털에서 한다.\n\n"
         "## 식대\n\n점심 식대는 하루 만이천 원까지 지원된다.\n")


def test_upload_ask_and_see_the_sources(page: Page, live_server: str, tmp_path):
    notes = tmp_path / "복지 안내.md"
    notes.write_text(NOTES, encoding="utf-8")
    open_app(page, live_server)
    expect(page.locator("#doc-empty")).to_be_visible()
    page.set_input_files("#doc-input", str(notes))
    item = page.locator(".doc-item").first
    expect(item.locator(".doc-name")).to_have_text("복지 안내.md")
    expect(item).to_have_class(re.compile(r"\bready\b"), timeout=60_000)
    expect(item.locator(".doc-status")).to_contain_text("md")
    page.set_input_files("#doc-input", str(notes))  # the same content again: one document, and it says so
    expect(page.locator("#composer-error")).to_contain_text("이미 보관함에 있는 문서")
    expect(page.locator(".doc-item")).to_have_count(1)

    page.fill("#chat-input", "연차 휴가는 며칠인가요?")
    page.press("#chat-input", "Enter")
    answer = page.locator(".message.assistant").last
    expect(answer).to_have_attribute("data-finish", re.compile("^(done|trimmed)$"), timeout=60_000)
    source = answer.locator(".source").first
    expect(source.locator("summary")).to_have_text("[1] 복지 안내.md")
    expect(source.locator(".source-passage")).to_be_hidden()
    source.locator("summary").click()
    expect(source.locator(".source-passage")).to_contain_text("15일의 연차 휴가")
    shot(page, "documents-sources")

    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    expect(page.locator(".message.assistant .source summary").first).to_have_text("[1] 복지 안내.md")

    page.select_option("#doc-scope", "none")
    page.fill("#chat-input", "연차 휴가는 며칠인가요?")
    page.press("#chat-input", "Enter")
    last = page.locator(".message.assistant").last
    expect(last).to_have_attribute("data-finish", re.compile("^(done|trimmed)$"), timeout=60_000)
    assert last.locator(".source").count() == 0


def test_changing_the_embedder_shows_the_re_indexing_and_keeps_search(page: Page, isolated_data, tmp_path):
    """A library built with one embedder, the server restarted with the default one: the sidebar
    shows the re-embedding's progress, and the document stays searchable throughout."""
    import httpx

    from chat import create_app
    from settings import Rag
    from tests.conftest import make_settings, serve
    from tests.test_rag_engine import minilm_folder

    big = "\n\n".join(f"## 항목 {i}\n\n제{i}조 규정: 직원 복지 포인트는 연 {i}만 원이며 사내 포털에서 신청한다."
                      for i in range(1, 800))
    old = make_settings(isolated_data)
    old.rag = Rag(embedder="sentence-transformers", embedding_model=minilm_folder(), chunk_chars=200)
    with serve(create_app(old)) as url:
        created = httpx.post(url + "/api/documents", files={"file": ("규정.md", big.encode())}, timeout=60).json()
        deadline = time.monotonic() + 120
        while httpx.get(url + "/api/documents").json()["documents"][0]["status"] != "ready":
            assert time.monotonic() < deadline
            time.sleep(0.2)

    new = make_settings(isolated_data)  # the default embedder now
    new.rag.chunk_chars = 200
    with serve(create_app(new)) as url:
        open_app(page, url)
        line = page.locator("#doc-reindex")
        expect(line).to_be_visible(timeout=30_000)
        expect(line).to_contain_text("다시 색인")
        shot(page, "documents-reindexing")
        hits = httpx.post(url + "/api/rag/search", json={"query": "복지 포인트 신청"}).json()["hits"]
        assert hits and hits[0]["document_id"] == created["id"]  # searchable while it re-embeds
        expect(line).to_be_hidden(timeout=120_000)
        expect(page.locator(".doc-item")).to_have_count(1)


def test_a_scan_and_a_hwp_in_the_sidebar_ocr_progress_then_an_ocr_source(page: Page, live_server: str, tmp_path):
    """A scanned two-page Korean PDF: the sidebar shows "OCR로 읽는 중 n/2쪽", then the pages read by
    OCR; an HWP file beside it; the answer's source says OCR."""
    from tests.doc_samples import hwp_bytes, scanned_page, scanned_pdf_bytes

    scan = tmp_path / "공지(스캔).pdf"
    scan.write_bytes(scanned_pdf_bytes([
        scanned_page(["주민센터는 토요일 오전 아홉 시부터 열두 시까지 민원 업무를 본다."], 14, 1.0, 8),
        scanned_page(["여권 발급에는 사진 한 장과 신분증이 필요하다."], 14, -1.0, 8),
    ]))
    report = tmp_path / "주간 보고.hwp"
    report.write_bytes(hwp_bytes("주간 보고", ["이번 주에는 서버 이전을 마쳤다."], [["항목", "상태"], ["서버 이전", "완료"]],
                                 "담당: 운영팀"))
    open_app(page, live_server)
    page.set_input_files("#doc-input", str(scan))
    item = page.locator(".doc-item", has_text="공지(스캔).pdf")
    expect(item.locator(".doc-status")).to_contain_text(re.compile(r"OCR로 읽는 중 [0-2]/2쪽"), timeout=30_000)
    shot(page, "documents-ocr-progress")
    expect(item).to_have_class(re.compile(r"\bready\b"), timeout=120_000)
    expect(item.locator(".doc-status")).to_contain_text("2쪽 OCR")
    page.set_input_files("#doc-input", str(report))
    hwp_item = page.locator(".doc-item", has_text="주간 보고.hwp")
    expect(hwp_item).to_have_class(re.compile(r"\bready\b"), timeout=60_000)
    expect(hwp_item.locator(".doc-status")).to_contain_text("hwp")

    page.fill("#chat-input", "주민센터는 토요일에 몇 시까지 여나요?")
    page.press("#chat-input", "Enter")
    answer = page.locator(".message.assistant").last
    expect(answer).to_have_attribute("data-finish", re.compile("^(done|trimmed)$"), timeout=60_000)
    expect(answer.locator(".source summary").first).to_have_text("[1] 공지(스캔).pdf (1쪽, OCR)")
    shot(page, "documents-ocr-source")


def test_hangul_files_as_found_in_the_wild_from_the_page(page: Page, live_server: str, tmp_path):
    """An HWPX saved under a .hwp name is read (kind hwpx, its numbering and boxes found), and a
    file wrapped by a document security program is refused saying so, in Korean."""
    from tests.doc_samples import HWPX_WILD_HEADER, hwpx_bytes, hwpx_wild_section

    notice = tmp_path / "사업 공고.hwp"
    notice.write_bytes(hwpx_bytes("", ["-"], [["-"]], "-", section_xml=hwpx_wild_section(), header_xml=HWPX_WILD_HEADER))
    locked = tmp_path / "대외비 보고.hwpx"
    locked.write_bytes(b"SCDSA004" + bytes(range(256)) * 8)
    open_app(page, live_server)
    page.set_input_files("#doc-input", str(notice))
    item = page.locator(".doc-item", has_text="사업 공고.hwp")
    expect(item).to_have_class(re.compile(r"\bready\b"), timeout=60_000)
    expect(item.locator(".doc-status")).to_contain_text("hwpx")
    page.set_input_files("#doc-input", str(locked))
    expect(page.locator("#composer-error")).to_contain_text("문서 보안 프로그램")
    assert page.locator("#composer-error").inner_text().count("대외비 보고.hwpx") == 1  # named once
    expect(page.locator(".doc-item")).to_have_count(1)
    shot(page, "documents-hangul-wild")
