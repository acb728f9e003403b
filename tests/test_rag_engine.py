"""Retrieval on the real embedded embedder and a real persistent Chroma (and a Chroma server)."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import keyword_index
from chunking import chunk_sections
from doc_parser import Section
from keyword_index import KeywordIndex
from rag_engine import RagEngine
from settings import Rag

DOCS = {
    "seoul": "# 서울\n\n서울은 대한민국의 수도이다. 경복궁과 남산타워가 있고, 가장 큰 전통시장은 광장시장이다.",
    "busan": "# 부산\n\n부산은 해운대 해수욕장으로 유명한 항구 도시이다. 대표 음식은 돼지국밥과 밀면이다.",
    "jeju": "# 제주\n\n제주도는 한라산과 오름이 많은 화산섬이다. 특산물은 감귤과 흑돼지이다.",
    "gyeongju": "# 경주\n\n경주는 신라의 천년 수도였다. 불국사와 석굴암이 세계유산으로 지정되었다.",
    "jeonju": "# 전주\n\n전주는 한옥마을과 비빔밥으로 이름난 도시이다. 매년 국제영화제가 열린다.",
    "incheon": "# 인천\n\n인천에는 국제공항과 차이나타운이 있다. 월미도에서 바다를 볼 수 있다.",
}
# Questions use other particles and endings than the documents ("서울은" -> "서울에서", "수도이다" -> "수도였나요").
QUESTIONS = {
    "서울에서 제일 큰 시장이 어디예요?": "seoul",
    "부산에 가면 무슨 음식을 먹어야 하나요?": "busan",
    "제주도의 특산물로는 뭐가 있죠?": "jeju",
    "신라의 수도였던 곳에는 어떤 유산이 있나요?": "gyeongju",
    "한옥마을로 유명한 도시에서 열리는 영화제는?": "jeonju",
    "인천의 공항에 대해 알려줘": "incheon",
    "해운대는 어느 도시에 있어요?": "busan",
    "불국사를 보려면 어디로 가야 하나요?": "gyeongju",
}


def fill(engine: RagEngine) -> None:
    for doc_id, text in DOCS.items():
        engine.ingest(doc_id, f"{doc_id}.md", chunk_sections([Section(text)], 200, 20))


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> RagEngine:
    rag = RagEngine(Rag(), tmp_path_factory.mktemp("rag") / "rag_db")
    fill(rag)
    return rag


def test_korean_questions_find_their_document_in_the_top_3(engine: RagEngine):
    for question, expected in QUESTIONS.items():
        hits = engine.search(question, k=3)
        assert expected in [h.document_id for h in hits], (question, hits)


def test_why_bigrams_whole_word_keywords_miss_inflected_korean(monkeypatch: pytest.MonkeyPatch):
    """The keyword path must carry Korean (the embedded embedder is English-only). Indexing whole
    words finds few of the questions; Hangul bigrams find them all."""
    def found_with(tokenize) -> int:
        monkeypatch.setattr(keyword_index, "tokenize", tokenize)
        index = KeywordIndex()
        for doc_id, text in DOCS.items():
            index.add(doc_id, doc_id, text)
        return sum(expected in [c for c, _, _ in index.search(q, 3)] for q, expected in QUESTIONS.items())

    bigrams = found_with(keyword_index.tokenize)
    whole_words = found_with(lambda text: keyword_index.WORD.findall(text.lower()))
    assert bigrams == len(QUESTIONS) and whole_words <= len(QUESTIONS) // 2


def test_unrelated_questions_find_nothing(engine: RagEngine):
    assert engine.search("양자역학의 불확정성 원리를 설명해 줘") == []
    assert engine.search("What is the weather tomorrow?") == []


def test_dedupe_delete_and_scope(engine: RagEngine):
    before = engine.count()
    engine.ingest("seoul", "seoul.md", chunk_sections([Section(DOCS["seoul"])], 200, 20))
    assert engine.count() == before  # same content, same ids: nothing new
    assert [h.document_id for h in engine.search("광장시장", documents={"busan"})] == []
    assert engine.search("광장시장", documents={"seoul"})[0].document_id == "seoul"
    engine.ingest("temp", "temp.md", chunk_sections([Section("# 임시\n\n삭제될 문서입니다. 고유어 퀘이사르")], 200, 20))
    assert engine.search("퀘이사르")[0].document_id == "temp"
    engine.delete("temp")
    assert engine.count() == before and engine.search("퀘이사르") == []


def test_the_library_survives_a_restart(tmp_path: Path):
    first = RagEngine(Rag(), tmp_path / "rag_db")
    first.ingest("jeju", "jeju.md", chunk_sections([Section(DOCS["jeju"])], 200, 20))
    again = RagEngine(Rag(), tmp_path / "rag_db")  # a new process would do the same
    hits = again.search("제주 특산물")
    assert hits and hits[0].document_id == "jeju" and hits[0].keyword_score  # keyword index rebuilt too


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_chroma_server_instead_of_the_embedded_store(tmp_path: Path):
    chroma = shutil.which("chroma", path=os.path.dirname(sys.executable))
    assert chroma, "the chroma command comes with the chromadb package"
    port = free_port()
    server = subprocess.Popen([chroma, "run", "--path", str(tmp_path / "server"), "--host", "127.0.0.1",
                               "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, "chroma server did not start"
            time.sleep(0.2)
        remote = RagEngine(Rag(chroma_url=f"http://127.0.0.1:{port}"), tmp_path / "unused")
        remote.ingest("gyeongju", "gyeongju.md", chunk_sections([Section(DOCS["gyeongju"])], 200, 20))
        assert remote.search("불국사와 석굴암")[0].document_id == "gyeongju"
        assert not (tmp_path / "unused").exists()  # nothing embedded locally
        assert RagEngine(Rag(chroma_url=f"http://127.0.0.1:{port}"), tmp_path / "x").count() == remote.count()
    finally:
        server.terminate()
        server.wait(20)
