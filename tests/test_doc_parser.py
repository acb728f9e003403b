"""Every supported format parsed for real, and every way an upload can be wrong."""
from __future__ import annotations

import re

import pytest

from documents.chunking import chunk_sections
from documents.parsing import BadUpload, Section, clean_filename, parse
from tests.doc_samples import docx_bytes, pdf_bytes, zip_bomb_docx

KOREAN = "서울은 대한민국의 수도이다. 한강이 도시를 가로지른다."


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp949", "euc-kr"])
def test_korean_text_in_every_common_encoding(encoding: str):
    assert parse(KOREAN.encode(encoding), "메모.txt") == [Section(KOREAN)]


def test_markdown_html_pdf_docx():
    assert parse("# 제목\n\n본문 *강조*".encode(), "a.md")[0].text.startswith("# 제목")
    html = "<html><head><title>t</title><style>p{color:red}</style></head><body><h1>안내</h1>" \
           "<p>첫 문단&amp;끝</p><script>alert('x')</script><p>둘째</p></body></html>"
    text = parse(html.encode(), "page.html")[0].text
    assert "안내" in text and "첫 문단&끝" in text and "둘째" in text and "alert" not in text and "color" not in text
    pages = parse(pdf_bytes(["First page about apples", "Second page about pears"]), "fruit.pdf")
    assert [(p.page, "apples" in p.text, "pears" in p.text) for p in pages] == [(1, True, False), (2, False, True)]
    text = parse(docx_bytes("회의록", ["예산은 삼천만 원으로 정했다.", "다음 회의는 금요일이다."]), "notes.docx")[0].text
    assert text.startswith("## 회의록") and "삼천만 원" in text and "금요일" in text


@pytest.mark.parametrize("name,data,code,status", [
    ("empty.txt", b"", "empty_file", 400),
    ("image.png", b"\x89PNG....", "not_an_image", 415),
    ("anim.gif", b"GIF89a", "unsupported_type", 415),
    ("noext", b"hello", "unsupported_type", 415),
    ("binary.txt", b"\x7fELF\x02\x01\x01\x00\x00\x00", "not_text", 415),
    ("latin1.txt", "café".encode("latin-1") + b"\xff\xfe\xfd", "unknown_encoding", 415),
    ("broken.pdf", b"%PDF-1.4\nthis is not really a pdf", "corrupt_file", 400),
    ("broken.docx", b"PK\x03\x04 not a zip at all", "corrupt_file", 400),
    ("bomb.docx", None, "zip_bomb", 413),
    ("blank.txt", b" \n\t\n", "no_text", 400),
])
def test_bad_documents_are_refused_with_a_reason(name, data, code, status):
    if name == "bomb.docx":
        data = zip_bomb_docx()
    with pytest.raises(BadUpload) as info:
        parse(data, name)
    assert (info.value.code, info.value.status) == (code, status) and info.value.message


@pytest.mark.parametrize("name", ["../../etc/passwd.txt", "C:\\\\Windows\\\\x.txt", "a\x00b.txt", "tab\there.txt",
                                  ".hidden.txt", "x" * 300 + ".txt", "", "   "])
def test_malicious_file_names_are_refused(name: str):
    with pytest.raises(BadUpload) as info:
        clean_filename(name)
    assert info.value.code == "bad_filename"


def test_ordinary_names_stay_as_given():
    assert clean_filename("  2026 예산안 (최종).docx ") == "2026 예산안 (최종).docx"


def test_chunks_follow_headings_paragraphs_and_korean_sentences():
    sentences = [f"이것은 {i}번째 문장입니다." for i in range(60)]
    text = "# 첫 장\n\n" + " ".join(sentences[:30]) + "\n\n## 둘째 장\n\n" + " ".join(sentences[30:])
    chunks = chunk_sections([Section(text, page=4)], size=300, overlap=60)
    assert len(chunks) >= 4 and all(len(c.text) <= 300 + 60 + 20 for c in chunks)
    assert [c.index for c in chunks] == list(range(len(chunks))) and {c.page for c in chunks} == {4}
    assert all(c.text.startswith(("# 첫 장", "## 둘째 장")) for c in chunks)  # each reads on its own
    assert all(c.text.rstrip().endswith("다.") for c in chunks)  # cut at sentence ends
    second = [c for c in chunks if c.text.startswith("# 첫 장")][1].text
    assert "이것은" in second.split("\n")[1][:10]  # the overlap starts at a sentence boundary
    body = lambda c: c.text.split("\n", 1)[1]  # noqa: E731
    shared = [a for a, b in zip(chunks, chunks[1:]) if body(a)[-30:] in body(b)]
    assert shared  # neighbours overlap


def test_hwpx_body_heading_table_and_footnote_in_reading_order():
    from tests.doc_samples import hwpx_bytes

    data = hwpx_bytes("제주 여행 안내", ["한라산 등반은 새벽에 시작합니다.", "성산일출봉의 해돋이는 여섯 시쯤입니다."],
                      [["장소", "입장료"], ["한라산", "무료"], ["만장굴", "4,000원"]], "출처: 제주관광공사 2026년 자료")
    (section,) = parse(data, "제주.hwpx")
    lines = section.text.split("\n\n")
    assert lines[0] == "## 제주 여행 안내"  # the outline style is a heading for the chunker
    assert lines[1:3] == ["한라산 등반은 새벽에 시작합니다.", "성산일출봉의 해돋이는 여섯 시쯤입니다."]
    assert lines[3] == "[주석] 출처: 제주관광공사 2026년 자료"  # beside the paragraph that cites it
    assert lines[4:] == ["장소 | 입장료", "한라산 | 무료", "만장굴 | 4,000원"]  # a row per line
    chunks = chunk_sections([section], 200, 20)
    assert any(c.text.startswith("## 제주 여행 안내") for c in chunks)


@pytest.mark.parametrize("change,status,code", [
    ({"manifest": '<manifest><file-entry><encryption-data algorithm="x"/></file-entry></manifest>'}, 422,
     "encrypted_document"),
    ({"section_xml": "<hs:sec><hp:p>not closed"}, 400, "corrupt_file"),
])
def test_a_protected_or_broken_hwpx_is_a_clear_error(change, status, code):
    from core.errors import BadUpload
    from tests.doc_samples import hwpx_bytes

    data = hwpx_bytes("제목", ["본문"], [["a"]], "주석", **change)
    with pytest.raises(BadUpload) as refused:
        parse(data, "문서.hwpx")
    assert (refused.value.status, refused.value.code) == (status, code)
    assert "문서" in refused.value.message  # in Korean, naming the file


def test_non_zip_hwpx_is_refused_clearly():
    from core.errors import BadUpload

    with pytest.raises(BadUpload) as broken:
        parse(b"not a zip at all", "보고서.hwpx")
    assert broken.value.code == "corrupt_file"


@pytest.mark.parametrize("compress", [True, False])
def test_hwp5_body_heading_table_and_footnote_in_reading_order(compress):
    from tests.doc_samples import hwp_bytes

    data = hwp_bytes("제주 여행 안내", ["한라산 등반은\t새벽에 시작합니다.", "성산일출봉의 해돋이는 여섯 시쯤입니다."],
                     [["장소", "입장료"], ["한라산", "무료"], ["만장굴", "4,000원"]], "출처: 제주관광공사 2026년 자료",
                     flags=0x1 if compress else 0x0, compress=compress)
    (section,) = parse(data, "제주.hwp")
    lines = section.text.split("\n\n")
    assert lines[0] == "## 제주 여행 안내"  # the outline style of DocInfo is a heading
    # a tab is an eight-unit control: read as a space, its six data units never leak as text
    assert lines[1:3] == ["한라산 등반은 새벽에 시작합니다.", "성산일출봉의 해돋이는 여섯 시쯤입니다."]
    assert lines[3] == "[주석] 출처: 제주관광공사 2026년 자료"
    assert lines[4:] == ["장소 | 입장료", "한라산 | 무료", "만장굴 | 4,000원"]


@pytest.mark.parametrize("change,status,code", [
    ({"flags": 0x1 | 0x4}, 422, "distribution_document"),
    ({"flags": 0x1, "streams": {"ViewText/Section0": b"\x01" * 64}}, 422, "distribution_document"),
    ({"flags": 0x1 | 0x2}, 422, "encrypted_document"),
    ({"flags": 0x1, "streams": {"BodyText/Section0": b"not deflate data at all \xff\xfe"}}, 400, "corrupt_file"),
    ({"streams": {"BodyText/Section0": b"\x42\x00\x60\x01" + b"\0" * 10}, "compress": False, "flags": 0}, 400,
     "corrupt_file"),  # a record that says 22 bytes and has 10
    ({"streams": {"FileHeader": b"HWP Document File V3.00".ljust(256, b"\0")}}, 400, "corrupt_file"),
])
def test_a_protected_or_broken_hwp_is_a_clear_korean_error(change, status, code):
    from core.errors import BadUpload
    from tests.doc_samples import hwp_bytes

    data = hwp_bytes("제목", ["본문"], [["a"]], "주석", **change)
    with pytest.raises(BadUpload) as refused:
        parse(data, "문서.hwp")
    assert (refused.value.status, refused.value.code) == (status, code)
    assert "문서" in refused.value.message and re.search("[가-힣]{2}", refused.value.message.replace("문서", ""))


@pytest.mark.parametrize("data", [b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 504, b"plain text, not OLE", b"PK\x03\x04"])
def test_a_file_that_is_not_an_hwp_is_refused_not_crashed(data):
    from core.errors import BadUpload

    with pytest.raises(BadUpload) as refused:
        parse(data, "보고서.hwp")
    assert refused.value.status == 400 and refused.value.code == "corrupt_file"


def test_an_hwp_section_inflating_past_the_cap_is_a_bomb(monkeypatch):
    import zlib

    from core.errors import BadUpload
    from documents import hwp5
    from tests.doc_samples import hwp_bytes

    monkeypatch.setattr(hwp5, "MAX_STREAM", 1024 * 1024)
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = packer.compress(b"\0" * (4 * 1024 * 1024)) + packer.flush()
    with pytest.raises(BadUpload) as refused:
        parse(hwp_bytes("a", ["b"], [["c"]], "d", streams={"BodyText/Section0": bomb}), "폭탄.hwp")
    assert refused.value.status == 413


def test_pdf_pages_without_a_usable_text_layer_are_left_for_ocr_and_their_garbage_dropped():
    from tests.doc_samples import garbled_pdf_bytes

    blank, text = parse(pdf_bytes(["", "Seoul is the capital"]), "mixed.pdf")
    assert (blank.text, blank.needs_ocr, blank.page) == ("", "no_text_layer", 1)
    assert (text.text, text.needs_ocr) == ("Seoul is the capital", None)
    (garbled,) = parse(garbled_pdf_bytes(["서울특별시는 대한민국의 수도이다."]), "cid.pdf")
    assert (garbled.text, garbled.needs_ocr) == ("", "garbled")  # a CID font without ToUnicode: never stored


@pytest.mark.parametrize("text,problem", [
    ("서울특별시는 대한민국의 수도이다. Seoul, 1988.", None),
    ("표 1 | 2 | 3 — 가격: 4,000원 (부가세 포함)", None),
    ("", "no_text_layer"), (" \n ", "no_text_layer"),
    ("(cid:12)(cid:40)(cid:7) (cid:99)(cid:3)", "garbled"),
    ("\x01\x02\x03 \x04\x05 . \x06\x07", "garbled"),
    ("\ue000\ue001\ue002\ue003 가나", "garbled"),  # private-use glyph codes
    ("... --- ,,, ;;; ::: ---", "garbled"),
])
def test_text_layer_problems(text, problem):
    from documents.page_checks import text_layer_problem

    assert text_layer_problem(text) == problem


def test_a_picture_of_text_is_checked_then_left_for_ocr():
    import io

    from PIL import Image

    picture = io.BytesIO()
    Image.new("RGB", (40, 20), "white").save(picture, format="PNG")
    (section,) = parse(picture.getvalue(), "영수증.jpg")  # the suffix is a hint: the picture decides
    assert (section.text, section.needs_ocr) == ("", "picture")
    with pytest.raises(BadUpload) as huge:
        parse(picture.getvalue(), "큰 그림.png", max_image_pixels=100)
    assert huge.value.status == 413
