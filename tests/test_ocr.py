"""OCR of scanned PDFs, garbled PDFs and pictures of text, with the real tesseract (Debian
tesseract-ocr + tesseract-ocr-kor, installed by run_tests.sh): read in the background with
progress, found by a search, marked as OCR in the sources; and without OCR, a clear refusal
instead of an empty document."""
from __future__ import annotations

import io
import time

import httpx
import pytest

from chat import create_app
from documents.ocr import TesseractOcr
from settings import Ocr
from tests.conftest import make_settings, serve
from tests.doc_samples import garbled_pdf_bytes, pdf_bytes, scanned_page, scanned_pdf_bytes
from tests.test_documents_api import upload, wait_ready

PAGES = [  # (lines, point size, rotation in degrees, noise in grey levels)
    (["제주도의 한라산은 높이가 1,947미터로 남한에서 가장 높은 산이다.", "정상에는 백록담이라는 분화구 호수가 있다."], 10, 1.0, 8),
    (["부산 해운대 해수욕장은 매년 여름 백만 명이 넘게 찾는다.", "The beach festival opens on the first Friday of August."], 12, -1.5, 10),
    (["경주는 신라의 천년 수도로 불국사와 석굴암이 있다.", "석굴암은 1995년에 유네스코 세계유산이 되었다."], 16, 2.0, 12),
]


def png(image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def ocr_server(isolated_data):
    settings = make_settings(isolated_data, max_tokens=24)
    settings.ocr.dpi = 200  # the test pages are rendered at 300; 200 reads them as well, faster
    with serve(create_app(settings)) as url:
        yield url


def search(url: str, query: str) -> list[dict]:
    return httpx.post(url + "/api/rag/search", json={"query": query, "k": 3}).json()["hits"]


def test_the_engine_reads_korean_and_english_lines_of_a_clean_page():
    ocr = TesseractOcr(Ocr())
    assert ocr.status().available, ocr.status().reason
    lines = ["서울특별시는 대한민국의 수도이며 한강이 도시를 가로지른다.", "The Olympic Games were held in Seoul in 1988."]
    read = ocr.read(scanned_page(lines, 12), 300)
    assert "대한민국의 수도이며" in read.text and "Olympic Games" in read.text
    assert read.confidence > 60


def test_a_scanned_pdf_is_read_page_by_page_with_progress_and_found_by_a_search(ocr_server: str):
    data = scanned_pdf_bytes([scanned_page(lines, size, rotate, noise, seed=i)
                              for i, (lines, size, rotate, noise) in enumerate(PAGES)])
    created = upload(ocr_server, "관광 안내(스캔).pdf", data)
    assert created.status_code == 201, created.text
    seen = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        document = next(d for d in httpx.get(ocr_server + "/api/documents").json()["documents"]
                        if d["id"] == created.json()["id"])
        if document["status"] != "ingesting":
            break
        seen.append(document["stage"])
        time.sleep(0.05)
    assert document["status"] == "ready" and document["ocr_pages"] == 3 and document["chunks"] >= 3, document
    assert any(s and s["step"] == "ocr" and s["total"] == 3 for s in seen)  # the sidebar had pages to show
    for query, page, expected in [("한라산 정상에 있는 분화구 호수", 1, "백록담"),
                                  ("해운대 해수욕장은 몇 명이 찾나요", 2, "해수욕장"),
                                  ("석굴암이 세계유산이 된 해", 3, "1995")]:
        hits = search(ocr_server, query)
        assert hits and hits[0]["page"] == page and expected in hits[0]["text"] and hits[0]["ocr"] is True, hits


def test_a_garbled_pdf_and_a_picture_are_read_and_the_sources_say_ocr(ocr_server: str):
    garbled = upload(ocr_server, "깨진 글꼴.pdf", garbled_pdf_bytes(["국립중앙박물관은 용산에 있으며 입장료는 무료이다."]))
    picture = upload(ocr_server, "안내문.png", png(scanned_page(["도서관은 매주 월요일에 쉬고 평일에는 밤 열 시까지 연다."], 14)))
    assert garbled.status_code == picture.status_code == 201
    assert wait_ready(ocr_server, garbled.json()["id"])["ocr_pages"] == 1
    assert wait_ready(ocr_server, picture.json()["id"])["ocr_pages"] == 1
    hits = search(ocr_server, "국립중앙박물관 입장료")
    assert hits[0]["name"] == "깨진 글꼴.pdf" and "용산" in hits[0]["text"]
    hits = search(ocr_server, "도서관이 쉬는 요일")
    assert hits[0]["name"] == "안내문.png" and "월요일" in hits[0]["text"] and hits[0]["ocr"] is True
    # the chat's sources carry the mark too
    from tests.test_documents_api import chat

    frames = chat(ocr_server, {"message": "도서관은 무슨 요일에 쉬나요?"})
    sources = next(f for f in frames if isinstance(f, dict) and f.get("type") == "sources")["sources"]
    assert sources[0]["name"] == "안내문.png" and sources[0]["ocr"] is True


def test_a_picture_without_text_fails_clearly_instead_of_an_empty_ready_document(ocr_server: str):
    from PIL import Image

    created = upload(ocr_server, "빈 그림.png", png(Image.new("L", (800, 600), 255)))
    assert created.status_code == 201
    document = wait_ready(ocr_server, created.json()["id"])
    assert document["status"] == "failed" and document["chunks"] == 0 and "OCR로도" in document["error"]


def test_without_ocr_a_scan_is_refused_saying_what_is_missing_and_a_mixed_pdf_keeps_its_text(isolated_data):
    settings = make_settings(isolated_data, max_tokens=24)
    settings.ocr.tesseract_path = isolated_data / "no-such-tesseract"
    with serve(create_app(settings)) as url:
        assert httpx.get(url + "/health").json()["ocr"]["available"] is False
        refused = upload(url, "스캔.pdf", scanned_pdf_bytes([scanned_page(PAGES[0][0])]))
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "ocr_unavailable"
        assert "tesseract" in refused.json()["error"]["message"]
        assert httpx.get(url + "/api/documents").json()["documents"] == []  # nothing stored
        mixed = upload(url, "반반.pdf", pdf_bytes(["", "The warranty lasts two years"]))
        document = wait_ready(url, mixed.json()["id"])
        assert document["status"] == "ready" and document["ocr_pages"] == 0
        assert "1" in document["notice"] and "tesseract" in document["notice"]  # what was left out, and why
        assert search(url, "warranty years")[0]["page"] == 2
