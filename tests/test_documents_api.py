"""The document library over HTTP: upload, ingest, search, answer with sources, bad uploads."""
from __future__ import annotations

import time

import httpx
import pytest

from chat import create_app
from tests.conftest import make_settings, read_frames, serve
from tests.doc_samples import docx_bytes, pdf_bytes, zip_bomb_docx

CHAT = "/chat_stream_sse_fetch"
GUIDE = ("# 사내 복지 안내\n\n"
         "직원은 매년 15일의 연차 휴가를 받는다. 연차 신청은 인사팀 포털에서 한다.\n\n"
         "## 식대\n\n점심 식대는 하루 만이천 원까지 지원된다.")


@pytest.fixture
def server(isolated_data):
    settings = make_settings(isolated_data, max_tokens=24)
    settings.rag.max_upload_mb = 1
    with serve(create_app(settings)) as url:
        yield url


def upload(url: str, name: str, data: bytes, session_id: str | None = None) -> httpx.Response:
    form = {"session_id": session_id} if session_id else None
    return httpx.post(url + "/api/documents", files={"file": (name, data)}, data=form, timeout=120)


def wait_ready(url: str, document_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        document = next(d for d in httpx.get(url + "/api/documents").json()["documents"] if d["id"] == document_id)
        if document["status"] != "ingesting":
            return document
        assert time.monotonic() < deadline, "ingest did not finish"
        time.sleep(0.1)


def chat(url: str, body: dict) -> list:
    with httpx.stream("POST", url + CHAT, json=body, timeout=120) as r:
        assert r.status_code == 200
        return read_frames(r)


def test_upload_search_answer_with_sources_and_restore(server: str, isolated_data):
    created = upload(server, "복지 안내.md", GUIDE.encode("cp949"))
    assert created.status_code == 201 and created.json()["status"] == "ingesting"
    document = wait_ready(server, created.json()["id"])
    assert document["status"] == "ready" and document["chunks"] >= 1 and document["name"] == "복지 안내.md"
    assert [p.name for p in (isolated_data / "uploads" / "documents").iterdir()] == [f"{document['id']}.md"]

    again = upload(server, "copy.md", GUIDE.encode("cp949"))
    assert again.status_code == 200 and again.json()["duplicate"] is True and again.json()["id"] == document["id"]
    assert len(httpx.get(server + "/api/documents").json()["documents"]) == 1

    hits = httpx.post(server + "/api/rag/search", json={"query": "연차는 며칠인가요?", "k": 3}).json()["hits"]
    assert hits[0]["document_id"] == document["id"] and "15일" in hits[0]["text"]

    frames = chat(server, {"message": "연차 휴가는 며칠이에요?"})
    sources = next(f for f in frames if isinstance(f, dict) and f["type"] == "sources")["sources"]
    assert sources[0]["n"] == 1 and sources[0]["name"] == "복지 안내.md" and "15일" in sources[0]["snippet"]
    assert frames[-2]["type"] == "done"
    session = frames[0]["session_id"]
    turns = httpx.get(f"{server}/api/sessions/{session}/turns").json()["turns"]
    assert turns[1]["sources"] == sources  # a restored session shows the same sources

    nothing = chat(server, {"message": "Explain quantum entanglement in one line."})
    assert {"type": "status", "state": "no_documents_matched"} in nothing
    assert not any(isinstance(f, dict) and f["type"] == "sources" for f in nothing)

    assert httpx.delete(f"{server}/api/documents/{document['id']}").status_code == 200
    assert httpx.post(server + "/api/rag/search", json={"query": "연차 휴가"}).json()["hits"] == []
    assert not any((isolated_data / "uploads" / "documents").glob("*.md"))


def test_session_scope_only_uses_attached_documents(server: str):
    session = httpx.post(server + "/api/sessions", json={}).json()["id"]
    other = httpx.post(server + "/api/sessions", json={}).json()["id"]
    pdf = upload(server, "fruit.pdf", pdf_bytes(["Apples grow in orchards in Daegu.", "Pears ripen in autumn."]),
                 session_id=session)
    wait_ready(server, pdf.json()["id"])
    assert pdf.json()["sessions"] == [session]
    word = upload(server, "회의록.docx", docx_bytes("회의", ["예산은 삼천만 원으로 정했다."]))
    wait_ready(server, word.json()["id"])
    scoped = chat(server, {"message": "Where do apples grow?", "session_id": session, "doc_scope": "session"})
    sources = next(f for f in scoped if isinstance(f, dict) and f["type"] == "sources")["sources"]
    assert {s["name"] for s in sources} == {"fruit.pdf"} and sources[0]["page"] == 1
    unattached = chat(server, {"message": "Where do apples grow?", "session_id": other, "doc_scope": "session"})
    assert not any(isinstance(f, dict) and f["type"] in ("sources",) for f in unattached)
    off = chat(server, {"message": "Where do apples grow?", "doc_scope": "none"})
    assert not any(isinstance(f, dict) and f["type"] == "sources" for f in off)
    attached = httpx.post(f"{server}/api/documents/{word.json()['id']}/attach", json={"session_id": other})
    assert attached.status_code == 200 and attached.json()["sessions"] == [other]


BAD_UPLOADS = [
    ("unsupported type", "anim.gif", b"GIF89a", 415, "unsupported_type"),
    ("broken picture", "photo.png", b"\x89PNG\r\n\x1a\n", 415, "not_an_image"),
    ("empty", "empty.txt", b"", 400, "empty_file"),
    ("corrupt pdf", "broken.pdf", b"%PDF-1.7 garbage", 400, "corrupt_file"),
    ("corrupt docx", "broken.docx", b"PK\x03\x04garbage", 400, "corrupt_file"),
    ("binary as txt", "program.txt", b"\x7fELF\x02\x01\x01\x00" * 20, 415, "not_text"),
    ("too large", "big.txt", b"a" * (1024 * 1024 + 10), 413, "file_too_large"),
    ("zip bomb", "bomb.docx", None, 413, "zip_bomb"),
    ("path traversal", "../../secret.txt", b"hello", 400, "bad_filename"),
    ("very long name", "n" * 400 + ".txt", b"hello", 400, "bad_filename"),
]


def test_bad_uploads_get_4xx_and_change_nothing(server: str, isolated_data):
    good = upload(server, "ok.txt", "남겨 둘 문서입니다. 고유한 단어 파란고래.".encode())
    wait_ready(server, good.json()["id"])
    for name, filename, data, status, code in BAD_UPLOADS:
        r = upload(server, filename, zip_bomb_docx() if data is None else data)
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), name
    # httpx percent-encodes control characters in file names; a raw body carries one as sent.
    raw = (b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="evil\x07name.txt"\r\n'
           b'Content-Type: text/plain\r\n\r\nhello\r\n--XyZ--\r\n')
    r = httpx.post(server + "/api/documents", content=raw, headers={"content-type": "multipart/form-data; boundary=XyZ"})
    assert (r.status_code, r.json()["error"]["code"]) == (400, "bad_filename")
    assert httpx.post(server + "/api/documents", content=b"x", headers={"content-type": "text/plain"}).status_code == 415
    assert httpx.post(server + "/api/documents", files={"other": ("a.txt", b"x")}).status_code == 400
    assert httpx.post(server + "/api/rag/search", json={"query": ""}).status_code == 422
    assert httpx.post(server + "/api/rag/search", json={"query": "x", "k": 0}).status_code == 422
    assert httpx.delete(server + "/api/documents/" + "0" * 32).status_code == 404
    documents = httpx.get(server + "/api/documents").json()["documents"]
    assert [d["name"] for d in documents] == ["ok.txt"]  # nothing else stored, the good one intact
    assert httpx.post(server + "/api/rag/search", json={"query": "파란고래"}).json()["hits"]
    assert len(list((isolated_data / "uploads" / "documents").iterdir())) == 1


def test_a_hwpx_document_is_found_by_a_korean_question(server: str):
    from tests.doc_samples import hwpx_bytes

    data = hwpx_bytes("사내 복지 규정", ["직원은 매년 15일의 연차 휴가를 받는다.", "경조사 휴가는 별도로 5일이다."],
                      [["항목", "지원 금액"], ["점심 식대", "하루 12,000원"], ["통신비", "월 50,000원"]],
                      "2026년 1월 개정")
    created = upload(server, "복지 규정.hwpx", data)
    assert created.status_code == 201, created.text
    document = wait_ready(server, created.json()["id"])
    assert document["status"] == "ready" and document["chunks"] >= 1
    hits = httpx.post(server + "/api/rag/search", json={"query": "통신비는 얼마나 지원되나요?", "k": 3}).json()["hits"]
    assert hits[0]["document_id"] == document["id"] and "월 50,000원" in hits[0]["text"]


def test_an_hwp_document_is_found_by_a_korean_question_and_a_distribution_copy_is_refused(server: str):
    from tests.doc_samples import hwp_bytes

    data = hwp_bytes("출장 규정", ["국내 출장은 하루 전까지 신청한다.", "해외 출장은 2주 전에 결재를 받는다."],
                     [["구분", "일비"], ["국내", "하루 30,000원"], ["해외", "하루 60달러"]], "2026년 3월 개정")
    created = upload(server, "출장 규정.hwp", data)
    assert created.status_code == 201, created.text
    document = wait_ready(server, created.json()["id"])
    assert document["status"] == "ready" and document["kind"] == "hwp"
    hits = httpx.post(server + "/api/rag/search", json={"query": "해외 출장 일비는 얼마인가요?", "k": 3}).json()["hits"]
    assert hits[0]["document_id"] == document["id"] and "하루 60달러" in hits[0]["text"]
    before = httpx.get(server + "/api/documents").json()
    refused = upload(server, "배포용.hwp", hwp_bytes("a", ["b"], [["c"]], "d", flags=0x1 | 0x4))
    assert refused.status_code == 422 and "배포용" in refused.json()["error"]["message"]
    assert httpx.get(server + "/api/documents").json() == before  # nothing stored


def test_a_misnamed_hwpx_and_a_suffixless_hwp_are_read_and_a_drm_wrapped_file_is_a_korean_422(server: str):
    from tests.doc_samples import HWPX_WILD_HEADER, hwp_bytes, hwpx_bytes, hwpx_wild_section

    package = hwpx_bytes("", ["-"], [["-"]], "-", section_xml=hwpx_wild_section(), header_xml=HWPX_WILD_HEADER)
    created = upload(server, "사업 공고.hwp", package)  # 한글 saved the HWPX under a .hwp name
    assert created.status_code == 201, created.text
    document = wait_ready(server, created.json()["id"])
    assert document["status"] == "ready" and document["kind"] == "hwpx"
    hits = httpx.post(server + "/api/rag/search", json={"query": "출장비 기준 표", "k": 3}).json()["hits"]
    assert any("표 1. 출장비 기준" in hit["text"] for hit in hits)  # a caption is found

    plain = upload(server, "출장규정", hwp_bytes("출장 규정", ["해외 출장은 2주 전에 결재를 받는다."], [["a"]], "d"))
    assert plain.status_code == 201 and wait_ready(server, plain.json()["id"])["kind"] == "hwp"

    before = httpx.get(server + "/api/documents").json()
    refused = upload(server, "대외비 보고.hwp", b"SCDSA004" + bytes(range(256)) * 8)
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "drm_protected"
    assert "문서 보안" in refused.json()["error"]["message"]
    assert httpx.get(server + "/api/documents").json() == before  # nothing stored, the server answers
