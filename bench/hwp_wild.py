"""한글 files as found in the wild: reads every .hwp/.hwpx under the folders given and prints

(1) what happened to each format: read, refused (by code), crashed (anything that is not a
    BadUpload); wrong refusals: "distribution" for a file whose FileHeader says it is not one;
(2) HWPX text recall against a full walk of the document's XML (every hp:t of the sections,
    tabs and line breaks as spaces; headers and footers aside): the share of those words found
    in the reader's output (multiset), over all files, and the HWPX files refused as empty
    although their walk has text;
(3) numbering: for every paragraph that 한글's own preview text (PrvText) shows with a number
    or bullet in front (found as a PrvText line = prefix + the paragraph's text as read with
    numbering off), whether the output holds that prefix before the text;
(4) parsing time per file (median, p95, max), and a generated 1,000-page HWP.

The samples are not in the repository (licences vary): fetch public repositories that ship
한글 files (e.g. hwplib, hwpxlib, hwp2hwpx, python-hwpx, hwp-rs) and pass their folders.

    .venv/bin/python -m bench.hwp_wild FOLDER [FOLDER ...]
"""
from __future__ import annotations

import collections
import io
import re
import statistics
import struct
import sys
import time
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

from core.errors import BadUpload
from documents import hwp5, hwp5_docinfo, hwpx
from documents.parsing import parse

HP = hwpx.HP
WORD = re.compile(r"\S+")


def xml_walk_words(data: bytes) -> list[str]:
    """Every word of the sections' paragraphs (each hp:p's own runs' hp:t joined, as runs split
    words anywhere), headers and footers left out."""
    words: list[str] = []
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for part in archive.namelist():
            if not hwpx.SECTION.fullmatch(part):
                continue
            root = ET.fromstring(archive.read(part))
            skipped = {id(node) for tag in ("header", "footer") for holder in root.iter(f"{HP}{tag}")
                       for node in holder.iter()}
            for paragraph in root.iter(f"{HP}p"):
                if id(paragraph) not in skipped:
                    own = "".join(_t_text(t) for t in paragraph.findall(f"{HP}run/{HP}t"))
                    words.extend(WORD.findall(own.replace("\t", " ")))
    return words


def _t_text(t: ET.Element) -> str:
    """An hp:t's characters, with a space for each element inside it (tabs, line breaks, marks)."""
    return (t.text or "") + "".join(" " + (child.tail or "") for child in t)


def recall(reference: list[str], output: str) -> tuple[int, int]:
    have = collections.Counter(WORD.findall(output))
    found = 0
    for word, count in collections.Counter(reference).items():
        found += min(count, have[word])
    return found, len(reference)


def preview_text(data: bytes, suffix: str) -> str:
    try:
        if suffix == "hwpx":
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                return archive.read("Preview/PrvText.txt").decode("utf-8", "replace")
        import olefile

        with olefile.OleFileIO(io.BytesIO(data)) as ole:
            return ole.openstream("PrvText").read().decode("utf-16-le", "replace") if ole.exists("PrvText") else ""
    except (KeyError, OSError, zipfile.BadZipFile):
        return ""


def without_numbers(data: bytes, name: str) -> str:
    """The reader's output with automatic numbering turned off (for finding numbered lines)."""
    saved = hwpx._Body._number, hwp5_docinfo.DocInfo.number
    hwpx._Body._number = lambda self, paragraph: ""  # type: ignore[method-assign]
    hwp5_docinfo.DocInfo.number = lambda self, counters, shape, style: ""  # type: ignore[method-assign]
    try:
        return parse(data, name)[0].text
    finally:
        hwpx._Body._number, hwp5_docinfo.DocInfo.number = saved  # type: ignore[method-assign]


def numbered_paragraphs(preview: str, plain: str) -> list[tuple[str, str]]:
    """(shown prefix, paragraph text) for preview lines that are a short prefix + a paragraph."""
    lines = [line.strip() for line in preview.replace("\r", "\n").split("\n") if line.strip()]
    paragraphs = {p.lstrip("#").strip() for p in plain.split("\n\n") if len(p.lstrip("#").strip()) >= 4}
    found = []
    for line in lines:
        for text in paragraphs:
            head = text[:30]
            at = line.find(head)
            if at > 0 and at <= 12 and line[:at].strip() and not line[:at].strip().startswith("<"):
                found.append((line[:at].strip(), head))
                break
    return found


def corpus(folders: list[Path]) -> None:
    outcome: collections.Counter[tuple[str, str]] = collections.Counter()
    times: list[float] = []
    words_found = words_all = 0
    empty_with_text: list[str] = []
    numbered = numbered_right = 0
    wrong_refusals: list[str] = []
    for path in sorted(p for folder in folders for p in folder.rglob("*") if p.suffix.lower() in (".hwp", ".hwpx")):
        data = path.read_bytes()
        if not data:
            continue
        suffix = path.suffix.lower().lstrip(".")
        began = time.perf_counter()
        try:
            text = parse(data, path.name)[0].text
            outcome[(suffix, "read")] += 1
        except BadUpload as exc:
            text = ""
            outcome[(suffix, exc.code)] += 1
            if exc.code == "distribution_document" and not _distribution_by_header(data):
                wrong_refusals.append(f"{path}")
        except Exception as exc:
            text = ""
            outcome[(suffix, "CRASH")] += 1
            print(f"  crash: {path}: {exc!r}")
        times.append(time.perf_counter() - began)
        if data.startswith(b"PK"):
            try:
                reference = xml_walk_words(data)
            except (ET.ParseError, zipfile.BadZipFile, KeyError):
                reference = []
            found, total = recall(reference, text)
            words_found, words_all = words_found + found, words_all + total
            if total and not text:
                empty_with_text.append(str(path))
            elif total and found / total < 0.95:
                print(f"  recall {found / total:.3f}: {path}")
        preview = preview_text(data, "hwpx" if data.startswith(b"PK") else "hwp")
        if text and preview:
            for prefix, head in numbered_paragraphs(preview, without_numbers(data, path.name)):
                numbered += 1
                if re.search(re.escape(prefix) + r"\s*" + re.escape(head), text):
                    numbered_right += 1
                else:
                    print(f"  numbering: expected {prefix!r} before {head!r} in {path.name}")
    print("(1) outcome by format:", dict(sorted(outcome.items())))
    print(f"    wrong 'distribution' refusals: {len(wrong_refusals)} {wrong_refusals}")
    print(f"(2) HWPX recall vs the XML walk: {words_found}/{words_all} words = {words_found / max(1, words_all):.4f}; "
          f"HWPX with text refused as empty: {len(empty_with_text)} {empty_with_text}")
    print(f"(3) numbered paragraphs (by PrvText): {numbered_right}/{numbered} = "
          f"{numbered_right / max(1, numbered):.3f}")
    times.sort()
    print(f"(4) parse time per file over {len(times)} files: median {statistics.median(times) * 1000:.2f} ms, "
          f"p95 {times[int(0.95 * (len(times) - 1))] * 1000:.2f} ms, max {times[-1] * 1000:.1f} ms")


def _distribution_by_header(data: bytes) -> bool:
    import olefile

    try:
        with olefile.OleFileIO(io.BytesIO(data)) as ole:
            header = ole.openstream("FileHeader").read(40)
        return bool(struct.unpack_from("<I", header, 36)[0] & hwp5.DISTRIBUTION)
    except (OSError, struct.error):
        return False


def thousand_pages() -> None:
    from tests.doc_samples import hwp_bytes

    paragraph = "제1조(목적) 이 규정은 회사의 출장\t업무 처리에 필요한 사항을 정함을 목적으로 한다. " * 4  # ~190 chars
    data = hwp_bytes("규정집", [paragraph] * 10_000, [["구분", "금액"], ["숙박", "10만 원"]], "주석")
    runs = []
    for _ in range(3):
        began = time.perf_counter()
        text = parse(data, "규정집.hwp")[0].text
        runs.append(time.perf_counter() - began)
    print(f"(4) generated HWP, 10,000 paragraphs, {len(text) / 1e6:.2f} M characters (~{len(text) // 1800} pages at 1,800 "
          f"a page; {len(data) / 1e3:.0f} KB compressed): median of 3 {statistics.median(runs):.2f} s")


if __name__ == "__main__":
    corpus([Path(folder) for folder in sys.argv[1:]])
    thousand_pages()
