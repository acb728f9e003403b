"""What an upload is, told by its content: 한글 saves an HWPX package under whatever name the user
typed (".hwp" included), and files come without a suffix; and documents wrapped by a company's
document security program (DRM) are named as such instead of "damaged".
"""
from __future__ import annotations

import io
import zipfile

from core.errors import BadUpload

OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP = b"PK\x03\x04"
HWPX_MIMETYPE = b"application/hwp+zip"
MAX_MIMETYPE = 256  # bytes; a longer "mimetype" entry is not 한글's
# Document security wrappers met in Korean companies and public offices, by the marks they put
# at the start of the file (the wrapper replaces the file; the name keeps the original suffix).
# Marks found anywhere in the first KB count only where the file is no known container, so a
# real PDF or package that mentions a vendor is never taken for a wrapped one.
LEADING_MARKS = ((b"\x9b DRMONE", "Fasoo DRM"), (b"\xef\xbb\xbfDRMONE", "Fasoo DRM"), (b"SCDSA0", "SoftCamp Document Security"),
                 (b"<## NASCA DRM", "NASCA DRM"))
INNER_MARKS = ((b"FASOO", "Fasoo DRM"), (b"DRMONE", "Fasoo DRM"), (b"MARKANY", "MarkAny Document SAFER"),
               (b"DOCUMENT SAFER", "MarkAny Document SAFER"), (b"DOCUMENTSAFER", "MarkAny Document SAFER"))


def drm_wrapper(data: bytes) -> str | None:
    """The document security program that wrapped this file, or None."""
    head = data[:1024]
    for mark, vendor in LEADING_MARKS:
        if head.startswith(mark):
            return vendor
    if head.startswith(OLE) and data[512:520] == b"FASOO   ":  # Fasoo's own compound file
        return "Fasoo DRM"
    if head.startswith((OLE, ZIP, b"%PDF-")):
        return None
    upper = head.upper()
    return next((vendor for mark, vendor in INNER_MARKS if mark in upper), None)


def refuse_drm(data: bytes, name: str) -> None:
    vendor = drm_wrapper(data)
    if vendor:
        raise BadUpload(f"{name}: 문서 보안 프로그램({vendor})으로 암호화된 파일이라 읽을 수 없습니다. 회사의 문서 "
                        "보안 뷰어에서 암호화를 해제(복호화)해 저장한 뒤 다시 올려 주세요.",
                        code="drm_protected", status=422)


def sniff(data: bytes) -> str | None:
    """The document kind the bytes say ("hwp", "hwpx", "docx", "pdf", "image"), or None."""
    if data.startswith(OLE):
        return "hwp"
    if data.startswith(b"%PDF-"):
        return "pdf"
    if data.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")):
        return "image"
    if data.startswith(ZIP):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = set(archive.namelist())
                if ("mimetype" in names and archive.getinfo("mimetype").file_size <= MAX_MIMETYPE
                        and archive.read("mimetype").strip() == HWPX_MIMETYPE):
                    return "hwpx"
                if any(n.startswith("Contents/section") for n in names):
                    return "hwpx"
                if "word/document.xml" in names:
                    return "docx"
        except (zipfile.BadZipFile, OSError, KeyError, ValueError):
            return None
    return None
