"""Small real documents of each supported format, built in code."""
from __future__ import annotations

import io
import zipfile


def pdf_bytes(pages: list[str]) -> bytes:
    """A minimal valid PDF (Helvetica, one text line per page) with a correct xref table."""
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", None, "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    kids = []
    for text in pages:
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("latin-1")
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream.decode('latin-1')}\nendstream")
        content_ref = len(objects)
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {content_ref} 0 R "
                       f"/Resources << /Font << /F1 3 0 R >> >> >>")
        kids.append(f"{len(objects)} 0 R")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(pages)} >>"
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1"))
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def docx_bytes(heading: str, paragraphs: list[str]) -> bytes:
    import docx

    document = docx.Document()
    document.add_heading(heading, level=1)
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def zip_bomb_docx(expanded_mb: int = 60) -> bytes:
    """A .docx-named zip whose one entry expands ~60 MB from a few tens of kB."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b"\0" * (expanded_mb * 1024 * 1024))
    return out.getvalue()


HWPX_NS = ('xmlns:hp="http://www.hancom.co.kr/hwpml/2011/paragraph" '
           'xmlns:hs="http://www.hancom.co.kr/hwpml/2011/section" xmlns:hh="http://www.hancom.co.kr/hwpml/2011/head"')


def _hwpx_p(text: str, style: str = "0", inner: str = "") -> str:
    from xml.sax.saxutils import escape

    return f'<hp:p styleIDRef="{style}"><hp:run><hp:t>{escape(text)}</hp:t>{inner}</hp:run></hp:p>'


HWPX_WILD_HEADER = (
    '<hh:refList><hh:numberings><hh:numbering id="1" start="0">'
    '<hh:paraHead start="1" level="1" numFormat="DIGIT">제^1장</hh:paraHead>'
    '<hh:paraHead start="1" level="2" numFormat="HANGUL_SYLLABLE">^2.</hh:paraHead></hh:numbering>'
    '<hh:numbering id="2" start="0"><hh:paraHead start="1" level="1" numFormat="CIRCLED_DIGIT">^1</hh:paraHead>'
    '</hh:numbering></hh:numberings>'
    '<hh:paraProperties><hh:paraPr id="0"><hh:heading type="NONE" idRef="0" level="0"/></hh:paraPr>'
    '<hh:paraPr id="1"><hh:heading type="OUTLINE" idRef="0" level="0"/></hh:paraPr>'
    '<hh:paraPr id="2"><hh:heading type="OUTLINE" idRef="0" level="1"/></hh:paraPr>'
    '<hh:paraPr id="3"><hh:heading type="NUMBER" idRef="2" level="0"/></hh:paraPr></hh:paraProperties>'
    '<hh:styles><hh:style id="0" name="바탕글" engName="Normal" paraPrIDRef="0"/>'
    '<hh:style id="2" name="개요 1" engName="Outline 1" paraPrIDRef="1"/>'
    '<hh:style id="3" name="개요 2" engName="Outline 2" paraPrIDRef="2"/></hh:styles></hh:refList>')


def hwpx_wild_section() -> str:
    """A section as 한글 writes what real documents hold: outline numbering ("제1장", "가."),
    paragraph numbering (①), a tab and a line break inside a run, text boxes (a rectangle, and an
    ellipse grouped in a container), a captioned table and picture, an equation, a memo, and a
    header that must stay out."""
    def p(inner: str, para: str = "0", style: str = "0") -> str:
        return f'<hp:p paraPrIDRef="{para}" styleIDRef="{style}"><hp:run>{inner}</hp:run></hp:p>'

    def sub(text: str) -> str:
        return f"<hp:subList>{p(f'<hp:t>{text}</hp:t>')}</hp:subList>"

    rect = f'<hp:rect id="1"><hp:lineShape/><hp:drawText>{sub("상자 안의 제목")}</hp:drawText></hp:rect>'
    group = (f'<hp:container id="2"><hp:ellipse id="3"><hp:drawText>{sub("묶인 타원의 글")}</hp:drawText></hp:ellipse>'
             '<hp:line id="4"/></hp:container>')
    table = ('<hp:tbl><hp:caption side="TOP">' + sub("표 1. 출장비 기준") + '</hp:caption>'
             f'<hp:tr><hp:tc>{sub("구분")}</hp:tc><hp:tc>{sub("금액")}</hp:tc></hp:tr></hp:tbl>')
    picture = f'<hp:pic id="5"><hp:img binaryItemIDRef="image1"/><hp:caption>{sub("그림 1. 조직도")}</hp:caption></hp:pic>'
    equation = '<hp:equation id="6"><hp:script>{1} over {2} + x ^{2}</hp:script></hp:equation>'
    memo = ('<hp:ctrl><hp:fieldBegin type="MEMO"><hp:parameters><hp:stringParam name="Author">민지</hp:stringParam>'
            f'</hp:parameters>{sub("수치 확인 필요")}</hp:fieldBegin></hp:ctrl>')
    header = f'<hp:ctrl><hp:header>{sub("머리말은 빠진다")}</hp:header></hp:ctrl>'
    body = (p(header + "<hp:t>추진 배경</hp:t>", "1", "2") + p("<hp:t>현황</hp:t>", "2", "3")
            + p("<hp:t>식품의약품안전처<hp:tab/>고시</hp:t>") + p("<hp:t>제목 A<hp:tab/>1<hp:lineBreak/>제목 B<hp:tab/>2</hp:t>")
            + p("<hp:t>신청은 누리집에서 받는다.</hp:t>", "3") + p("<hp:t>결과는 문자로 알린다.</hp:t>" + memo, "3")
            + p("<hp:t>추진 계획</hp:t>", "1", "2") + p(rect + group + "<hp:t/>")
            + p("<hp:t>넓이는 다음과 같다.</hp:t>" + equation) + p(table) + p(picture))
    return f'<?xml version="1.0" encoding="UTF-8"?><hs:sec {HWPX_NS}>{body}</hs:sec>'


def hwpx_bytes(heading: str, paragraphs: list[str], table: list[list[str]], footnote: str,
               manifest: str = "<manifest/>", section_xml: str | None = None, header_xml: str | None = None) -> bytes:
    """A HWPX (OWPML) file as 한글 writes its parts: the outline style in header.xml, one section
    with a heading, paragraphs, a table in a run and a footnote in a control."""
    import io
    import zipfile
    from xml.sax.saxutils import escape

    cells = "".join("<hp:tr>" + "".join(f"<hp:tc><hp:subList>{_hwpx_p(cell)}</hp:subList></hp:tc>" for cell in row)
                    + "</hp:tr>" for row in table)
    note = f"<hp:ctrl><hp:footNote><hp:subList>{_hwpx_p(footnote)}</hp:subList></hp:footNote></hp:ctrl>"
    body = _hwpx_p(heading, style="2") + "".join(_hwpx_p(p) for p in paragraphs[:-1])
    body += f'<hp:p styleIDRef="0"><hp:run><hp:t>{escape(paragraphs[-1])}</hp:t>{note}</hp:run></hp:p>'
    body += f'<hp:p styleIDRef="0"><hp:run><hp:tbl>{cells}</hp:tbl></hp:run></hp:p>'
    section = section_xml or f'<?xml version="1.0" encoding="UTF-8"?><hs:sec {HWPX_NS}>{body}</hs:sec>'
    head = header_xml or ('<hh:refList><hh:styles><hh:style id="0" name="바탕글" engName="Normal"/>'
                          '<hh:style id="2" name="개요 1" engName="Outline 1"/></hh:styles></hh:refList>')
    header = f'<?xml version="1.0" encoding="UTF-8"?><hh:head {HWPX_NS}>{head}</hh:head>' 
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("mimetype", "application/hwp+zip")
        archive.writestr("META-INF/manifest.xml", manifest)
        archive.writestr("Contents/header.xml", header)
        archive.writestr("Contents/section0.xml", section)
    return buffer.getvalue()


def _hwp_record(tag: int, level: int, data: bytes) -> bytes:
    import struct

    if len(data) < 0xFFF:
        return struct.pack("<I", tag | level << 10 | len(data) << 20) + data
    return struct.pack("<II", tag | level << 10 | 0xFFF << 20, len(data)) + data


def _hwp_paragraph(text: str, level: int, style: int = 0, controls: list[tuple[str, bytes]] = (), shape: int = 0) -> bytes:
    """A paragraph as 한글 stores it: its header (paragraph shape, style), its text (controls as
    eight code units each, then the paragraph end) and each control's records one level deeper."""
    import struct

    codes = {"tbl ": 11, "fn  ": 17, "gso ": 11, "eqed": 11}
    tab = struct.pack("<H", 9) + b"\0" * 12 + struct.pack("<H", 9)  # a tab is an inline control: eight units
    units = b"".join(tab if ch == "\t" else ch.encode("utf-16-le") for ch in text)
    for kind, _ in controls:
        code = struct.pack("<H", codes[kind])
        units += code + kind[::-1].encode("ascii") + b"\0" * 8 + code
    units += struct.pack("<H", 13)
    header = struct.pack("<IIHBB", len(units) // 2, 0, shape, style, 0).ljust(22, b"\0")
    out = _hwp_record(0x10 + 50, level, header) + _hwp_record(0x10 + 51, level + 1, units)
    for kind, body in controls:
        out += _hwp_record(0x10 + 55, level + 1, kind[::-1].encode("ascii")) + body
    return out


def _hwp_style(local: str, english: str, shape: int = 0) -> bytes:
    import struct

    return (struct.pack("<H", len(local)) + local.encode("utf-16-le") + struct.pack("<H", len(english))
            + english.encode("utf-16-le") + struct.pack("<BBhHH", 0, 0, 1042, shape, 0))


def _hwp_document(docinfo: bytes, body: bytes, flags: int, compress: bool, streams: dict[str, bytes] | None) -> bytes:
    import struct
    import zlib

    from tests.cfb_writer import compound_file

    def deflate(data: bytes) -> bytes:
        if not compress:
            return data
        packer = zlib.compressobj(9, zlib.DEFLATED, -15)
        return packer.compress(data) + packer.flush()

    header = b"HWP Document File".ljust(32, b"\0") + struct.pack("<II", 0x05000300, flags)
    files = {"FileHeader": header.ljust(256, b"\0"), "DocInfo": deflate(docinfo), "BodyText/Section0": deflate(body)}
    files.update(streams or {})
    return compound_file({path: data for path, data in files.items() if data is not None})


def hwp_bytes(heading: str, paragraphs: list[str], table: list[list[str]], footnote: str,
              flags: int = 0x1, compress: bool = True, streams: dict[str, bytes | None] | None = None) -> bytes:
    """An HWP 5.0 file (compound file + records, as 한글 writes it): an outline-styled heading,
    paragraphs, a footnote on the last one and a table. flags: the FileHeader's properties
    (bit 0 compressed, 1 password, 2 distribution, 4 DRM, 14 track changes); a stream given
    as None is left out."""
    import struct

    docinfo = _hwp_record(0x10 + 10, 1, _hwp_style("바탕글", "Normal")) + _hwp_record(0x10 + 10, 1, _hwp_style("개요 1", "Outline 1"))
    table_body = _hwp_table(table)
    note_body = _hwp_record(0x10 + 56, 2, struct.pack("<HHI", 1, 0, 0)) + _hwp_paragraph(footnote, 2)
    body = _hwp_paragraph(heading, 0, style=1)
    body += b"".join(_hwp_paragraph(p, 0) for p in paragraphs[:-1])
    body += _hwp_paragraph(paragraphs[-1], 0, controls=[("fn  ", note_body)])
    body += _hwp_paragraph("", 0, controls=[("tbl ", table_body)])
    return _hwp_document(docinfo, body, flags, compress, streams)


def _hwp_table(table: list[list[str]], caption: str = "") -> bytes:
    """A table control's records: a caption's list (before the TABLE record), then the cells."""
    import struct

    out = b""
    if caption:
        out += _hwp_record(0x10 + 56, 2, struct.pack("<HHI", 1, 0, 0).ljust(34, b"\0")) + _hwp_paragraph(caption, 2)
    out += _hwp_record(0x10 + 61, 2, struct.pack("<IHH", 0, len(table), len(table[0])))
    for row_index, row in enumerate(table):
        for column, cell in enumerate(row):
            out += _hwp_record(0x10 + 56, 2, struct.pack("<HHIHHHH", 1, 0, 0, column, row_index, 1, 1).ljust(34, b"\0"))
            out += _hwp_paragraph(cell, 2)
    return out


def _hwp_numbering(levels: list[tuple[str, int]]) -> bytes:
    """A NUMBERING record: seven levels of (format string, number style code), starts at 1."""
    import struct

    out = b""
    for template, style in (levels + [("", 0)] * 7)[:7]:
        out += struct.pack("<IHHI", style << 5, 0, 0, 0) + struct.pack("<H", len(template)) + template.encode("utf-16-le")
    return out + struct.pack("<H", 1) + struct.pack("<7I", *[1] * 7)


def _hwp_para_shape(head: int, level: int, head_id: int) -> bytes:
    import struct

    return struct.pack("<I", head << 23 | level << 25) + b"\0" * 24 + struct.pack("<HH", 0, head_id) + b"\0" * 24


def hwp_wild_bytes(flags: int = 0x1, streams: dict[str, bytes | None] | None = None) -> bytes:
    """An HWP 5.0 document with what real ones hold: outline numbering (개요: "1." / "가."),
    paragraph numbering ("1)" / "①") and a bullet, an equation, a captioned table and a text box.
    Paragraph shapes: 0 plain, 1 outline level 1, 2 outline level 2, 3 numbered level 1,
    4 numbered level 2, 5 bullet."""
    import struct

    docinfo = b"".join(_hwp_record(0x10 + 9, 1, _hwp_para_shape(head, level, head_id)) for head, level, head_id in
                       [(0, 0, 0), (1, 0, 1), (1, 1, 1), (2, 0, 2), (2, 1, 2), (3, 0, 1)])
    docinfo += _hwp_record(0x10 + 7, 1, _hwp_numbering([("^1.", 0), ("^2.", 8), ("^3)", 0)]))  # 1. / 가. / 1)
    docinfo += _hwp_record(0x10 + 7, 1, _hwp_numbering([("^1)", 0), ("\x02", 1)]))  # 1) / ① (code unit 2 = ^2)
    docinfo += _hwp_record(0x10 + 8, 1, struct.pack("<IHHI", 0, 0, 0, 0) + "□".encode("utf-16-le"))
    docinfo += _hwp_record(0x10 + 10, 1, _hwp_style("바탕글", "Normal", shape=0))
    docinfo += _hwp_record(0x10 + 10, 1, _hwp_style("개요 1", "Outline 1", shape=1))
    docinfo += _hwp_record(0x10 + 10, 1, _hwp_style("개요 2", "Outline 2", shape=2))
    equation = _hwp_record(0x10 + 72, 2, struct.pack("<I", 0) + struct.pack("<H", 14) + "1 over 2 + x^2".encode("utf-16-le"))
    box = _hwp_record(0x10 + 76, 2, b"\0" * 8)  # the shape component, its text box list nested under it
    box += _hwp_record(0x10 + 56, 3, struct.pack("<HHI", 1, 0, 0)) + _hwp_paragraph("상자 안의 제목", 3)
    body = _hwp_paragraph("추진 배경", 0, style=1, shape=1)
    body += _hwp_paragraph("현황", 0, style=2, shape=2)
    body += _hwp_paragraph("신청은 누리집에서 받는다.", 0, shape=3)
    body += _hwp_paragraph("서류는 두 가지다.", 0, shape=4)
    body += _hwp_paragraph("서류는 세 가지다.", 0, shape=4)
    body += _hwp_paragraph("결과는 문자로 알린다.", 0, shape=3)
    body += _hwp_paragraph("준비물 확인", 0, shape=5)
    body += _hwp_paragraph("추진 계획", 0, style=1, shape=1)
    body += _hwp_paragraph("넓이는 다음과 같다.", 0, controls=[("eqed", equation)])
    body += _hwp_paragraph("", 0, controls=[("tbl ", _hwp_table([["구분", "금액"], ["숙박", "7만 원"]], "표 1. 출장비 기준"))])
    body += _hwp_paragraph("", 0, controls=[("gso ", box)])
    return _hwp_document(docinfo, body, flags, True, streams)


CJK_FONT = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"  # Debian fonts-noto-cjk
KOREAN_FACE = 1  # the .ttc's Korean face (Noto Sans CJK KR)


def scanned_page(lines: list[str], size_pt: float = 12, rotate: float = 0.0, noise: float = 0.0, dpi: int = 300,
                 seed: int = 0):
    """A white A4 page with the lines set in Noto Sans CJK KR at size_pt, as a scanner gives it:
    grey, turned by `rotate` degrees, with Gaussian noise of `noise` grey levels."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    width, height = int(8.27 * dpi), int(11.69 * dpi)
    page = Image.new("L", (width, height), 255)
    font = ImageFont.truetype(CJK_FONT, int(size_pt * dpi / 72), index=KOREAN_FACE)
    draw = ImageDraw.Draw(page)
    y = dpi  # one-inch margins
    for line in lines:
        draw.text((dpi, y), line, font=font, fill=20)
        y += int(size_pt * dpi / 72 * 1.8)
    if rotate:
        page = page.rotate(rotate, resample=Image.BICUBIC, fillcolor=255, expand=False)
    if noise:
        pixels = np.asarray(page, dtype=np.float32)
        pixels += np.random.default_rng(seed).normal(0, noise, pixels.shape)
        page = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    return page


def scanned_pdf_bytes(pages, dpi: int = 300) -> bytes:
    """An image-only PDF (no text layer), one scanned picture a page."""
    out = io.BytesIO()
    first, *rest = pages
    first.save(out, format="PDF", resolution=dpi, save_all=True, append_images=rest)
    return out.getvalue()


def korean_pdf_bytes(pages: list[list[str]], to_unicode: bool = True) -> bytes:
    """A PDF of Korean text lines in an embedded CID font (Noto Sans CJK KR via matplotlib), a page
    per list. to_unicode=False drops the fonts' ToUnicode maps, as some Korean PDFs lack them: the
    page looks right, but its text layer extracts as control characters."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.font_manager import FontProperties
    from pypdf import PdfWriter

    made = io.BytesIO()
    with matplotlib.rc_context({"pdf.fonttype": 42}), PdfPages(made) as pdf:
        for lines in pages:
            figure = plt.figure(figsize=(8.27, 11.69))
            for index, line in enumerate(lines):
                figure.text(0.1, 0.9 - index * 0.04, line, fontproperties=FontProperties(fname=CJK_FONT), fontsize=12)
            pdf.savefig(figure)
            plt.close(figure)
    if to_unicode:
        return made.getvalue()
    writer = PdfWriter(clone_from=io.BytesIO(made.getvalue()))
    for page in writer.pages:
        for font in page["/Resources"]["/Font"].values():
            font.get_object().pop("/ToUnicode", None)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def garbled_pdf_bytes(lines: list[str]) -> bytes:
    """One page of Korean text whose fonts have no ToUnicode map (see korean_pdf_bytes)."""
    return korean_pdf_bytes([lines], to_unicode=False)
