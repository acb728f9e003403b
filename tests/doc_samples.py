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


def hwpx_bytes(heading: str, paragraphs: list[str], table: list[list[str]], footnote: str,
               manifest: str = "<manifest/>", section_xml: str | None = None) -> bytes:
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
    header = (f'<?xml version="1.0" encoding="UTF-8"?><hh:head {HWPX_NS}><hh:refList><hh:styles>'
              '<hh:style id="0" name="바탕글" engName="Normal"/><hh:style id="2" name="개요 1" engName="Outline 1"/>'
              '</hh:styles></hh:refList></hh:head>')
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("mimetype", "application/hwp+zip")
        archive.writestr("META-INF/manifest.xml", manifest)
        archive.writestr("Contents/header.xml", header)
        archive.writestr("Contents/section0.xml", section)
    return buffer.getvalue()
