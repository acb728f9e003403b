"""Every supported format parsed for real, and every way an upload can be wrong."""
from __future__ import annotations

import itertools
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
    shared = [a for a, b in itertools.pairwise(chunks) if body(a)[-30:] in body(b)]
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
    ({"flags": 0x1, "streams": {"BodyText/Section0": None, "ViewText/Section0": b"\x01" * 64}}, 422,
     "distribution_document"),  # a body only in ViewText
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


# 한글 files as found in the wild (boxes, captions, tabs, numbering, equations, names, track
# changes, DRM, damaged bodies).

def _wild_hwpx() -> bytes:
    from tests.doc_samples import HWPX_WILD_HEADER, hwpx_bytes, hwpx_wild_section

    return hwpx_bytes("", ["-"], [["-"]], "-", section_xml=hwpx_wild_section(), header_xml=HWPX_WILD_HEADER)


def test_hwpx_boxes_captions_tabs_equations_memos_and_numbering_as_hangul_shows_them():
    (section,) = parse(_wild_hwpx(), "공고.hwpx")
    blocks = section.text.split("\n\n")
    assert blocks[:2] == ["## 제1장 추진 배경", "### 가. 현황"]  # outline numbering, from header.xml
    assert blocks[2] == "식품의약품안전처 고시"  # a tab inside a run no longer glues the words
    assert blocks[3] == "제목 A 1\n제목 B 2"  # a line break stays a line
    assert blocks[4:7] == ["① 신청은 누리집에서 받는다.", "② 결과는 문자로 알린다.", "[메모] 수치 확인 필요"]
    assert blocks[7] == "## 제2장 추진 계획"
    assert blocks[8:10] == ["상자 안의 제목", "묶인 타원의 글"]  # a rectangle's box, an ellipse in a container
    assert blocks[10:12] == ["넓이는 다음과 같다.", "[수식] {1} over {2} + x ^{2}"]
    assert blocks[12:] == ["표 1. 출장비 기준", "구분 | 금액", "그림 1. 조직도"]  # captions of a table and a picture
    assert "머리말" not in section.text  # headers stay out


def test_an_hwpx_whose_only_text_sits_in_boxes_and_captions_is_read_not_refused_as_empty():
    from tests.doc_samples import hwpx_bytes

    section = ('<?xml version="1.0" encoding="UTF-8"?><hs:sec xmlns:hp="http://www.hancom.co.kr/hwpml/2011/paragraph" '
               'xmlns:hs="http://www.hancom.co.kr/hwpml/2011/section"><hp:p><hp:run><hp:rect><hp:drawText><hp:subList>'
               '<hp:p><hp:run><hp:t>보도자료</hp:t></hp:run></hp:p></hp:subList></hp:drawText><hp:caption><hp:subList>'
               '<hp:p><hp:run><hp:t>붙임 1</hp:t></hp:run></hp:p></hp:subList></hp:caption></hp:rect><hp:t/></hp:run></hp:p></hs:sec>')
    (read,) = parse(hwpx_bytes("", ["-"], [["-"]], "-", section_xml=section), "보도.hwpx")
    assert read.text == "보도자료\n\n붙임 1"


def test_hwp5_numbering_equations_captions_and_boxes():
    from tests.doc_samples import hwp_wild_bytes

    (section,) = parse(hwp_wild_bytes(), "계획.hwp")
    blocks = section.text.split("\n\n")
    assert blocks[:2] == ["## 1. 추진 배경", "### 가. 현황"]  # outline numbering through the style's shape
    assert blocks[2:7] == ["1) 신청은 누리집에서 받는다.", "① 서류는 두 가지다.", "② 서류는 세 가지다.",
                           "2) 결과는 문자로 알린다.", "□ 준비물 확인"]  # levels count on, deeper ones restart
    assert blocks[7] == "## 2. 추진 계획"
    assert blocks[8:10] == ["넓이는 다음과 같다.", "[수식] 1 over 2 + x^2"]
    assert blocks[10:13] == ["표 1. 출장비 기준", "구분 | 금액", "숙박 | 7만 원"]  # the caption is not a row
    assert blocks[13] == "상자 안의 제목"


@pytest.mark.parametrize("name", ["공고.hwp", "공고.hwpx", "공고"])
def test_the_reader_is_picked_by_the_content_whatever_the_name(name):
    from tests.doc_samples import hwp_bytes

    hwpx = parse(_wild_hwpx(), name)[0].text  # an HWPX package saved under any name
    assert hwpx.startswith("## 제1장 추진 배경")
    hwp = parse(hwp_bytes("출장 규정", ["국내 출장은 하루 전까지 신청한다."], [["a"]], "주석"), name)[0].text
    assert hwp.startswith("## 출장 규정")
    from documents.parsing import kind_of

    assert kind_of(name, _wild_hwpx()) == "hwpx" and kind_of(name, hwp_bytes("a", ["b"], [["c"]], "d")) == "hwp"


def test_a_file_without_a_suffix_that_is_no_known_document_is_415():
    from core.errors import BadUpload

    with pytest.raises(BadUpload) as refused:
        parse(b"just some bytes \x00\x01", "보고서")
    assert refused.value.status == 415


def test_track_changes_keep_a_viewtext_storage_but_are_read_not_refused_as_distribution():
    from core.errors import BadUpload
    from tests.doc_samples import hwp_bytes

    track_changes = 0x1 | 1 << 14
    data = hwp_bytes("변경 추적", ["고친 문장이 보인다."], [["a"]], "주석", flags=track_changes,
                     streams={"ViewText/Section0": b"\x01" * 64})
    assert "고친 문장이 보인다." in parse(data, "추적.hwp")[0].text
    for refused_data in (hwp_bytes("a", ["b"], [["c"]], "d", flags=0x1 | 0x4),  # the distribution bit
                         hwp_bytes("a", ["b"], [["c"]], "d", streams={"BodyText/Section0": None,
                                                                      "ViewText/Section0": b"\x01" * 64})):
        with pytest.raises(BadUpload) as refused:
            parse(refused_data, "배포.hwp")
        assert refused.value.code == "distribution_document"


@pytest.mark.parametrize("data,vendor", [
    (b"SCDSA002\x00\x00\xf0\x06" + bytes(range(256)) * 4, "SoftCamp"),
    (b"\x9b DRMONE  This Document is encrypted" + b"\x00" * 600, "Fasoo"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504 + b"FASOO   " + b"\x00" * 100, "Fasoo"),
    (b"\x00\x01<MARKANY DOCUMENT SAFER HEADER>" + b"\x07" * 600, "MarkAny"),
])
@pytest.mark.parametrize("name", ["사내 보고.hwp", "사내 보고.hwpx", "사내 보고.docx", "사내 보고.pdf"])
def test_a_drm_wrapped_file_is_refused_saying_it_is_protected_not_damaged(data, vendor, name):
    from core.errors import BadUpload

    with pytest.raises(BadUpload) as refused:
        parse(data, name)
    assert (refused.value.status, refused.value.code) == (422, "drm_protected")
    assert vendor in refused.value.message and "문서 보안" in refused.value.message and "복호화" in refused.value.message


def test_hangul_own_drm_bit_is_refused_as_protected():
    from core.errors import BadUpload
    from tests.doc_samples import hwp_bytes

    with pytest.raises(BadUpload) as refused:
        parse(hwp_bytes("a", ["b"], [["c"]], "d", flags=0x1 | 0x10), "보안.hwp")
    assert refused.value.code == "drm_protected"


def test_a_text_file_that_mentions_a_drm_vendor_is_still_text():
    (section,) = parse("Fasoo DRM 사용 안내: DOCUMENT SAFER 설치 방법".encode(), "안내.txt")
    assert section.text.startswith("Fasoo DRM")


@pytest.mark.parametrize("body", [b"", b"\x00\x00"])
def test_an_hwp_whose_body_reads_as_empty_is_damaged_not_textless(body):
    from core.errors import BadUpload
    from tests.doc_samples import hwp_bytes

    with pytest.raises(BadUpload) as refused:
        parse(hwp_bytes("a", ["b"], [["c"]], "d", flags=0, compress=False, streams={"BodyText/Section0": body}), "빈.hwp")
    assert (refused.value.status, refused.value.code) == (400, "corrupt_file") and "손상" in refused.value.message


def test_an_hwpx_whose_section_holds_no_paragraph_is_damaged():
    from core.errors import BadUpload
    from tests.doc_samples import HWPX_NS, hwpx_bytes

    with pytest.raises(BadUpload) as refused:
        parse(hwpx_bytes("", ["-"], [["-"]], "-", section_xml=f"<hs:sec {HWPX_NS}></hs:sec>"), "빈.hwpx")
    assert refused.value.code == "corrupt_file" and "손상" in refused.value.message


@pytest.mark.parametrize("value,style,shown", [
    (1, "DIGIT", "1"), (3, "HANGUL_SYLLABLE", "다"), (15, "hangul_syllable", "가"), (2, "CIRCLED_DIGIT", "②"),
    (4, "ROMAN_CAPITAL", "IV"), (9, "roman_small", "ix"), (27, "LATIN_CAPITAL", "A"), (2, "HANGUL_JAMO", "ㄴ"),
    (11, "hangul_digit", "십일"), (20, "ideograph", "二十"), (1, "CIRCLED_HANGUL_SYLLABLE", "㉮"), (3, "unknown", "3"),
])
def test_number_styles_as_hangul_writes_them(value, style, shown):
    from documents.numbering import number_text

    assert number_text(value, style) == shown


def test_numbering_counters_restart_deeper_levels_and_start_missing_upper_ones():
    from documents.numbering import Counters, Level

    levels = [Level("^1.", "digit"), Level("^1.^2.", "digit"), Level("(^3)", "hangul_syllable", start=3)]
    counters = Counters()
    shown = [counters.next("n", levels, level) for level in (1, 0, 1, 1, 2, 0, 2)]
    assert shown == ["1.1.", "2.", "2.1.", "2.2.", "(다)", "3.", "(다)"]
