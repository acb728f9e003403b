"""Text from pictures of text, with tesseract (Apache-2.0) on the CPU.

Tesseract is a program the OS ships (Debian: tesseract-ocr + tesseract-ocr-kor; Windows: the
UB Mannheim installer with the Korean data), called once per page: the picture goes in as PGM on
stdin, words come back as TSV with their confidence. It runs at the lowest CPU priority and with
one OpenMP thread, so a page being read never slows a user's tokens. Without the program or
its language data, `status()` says exactly what is missing, for the page to show.
"""
from __future__ import annotations

import csv
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from settings import Ocr, env_name

WINDOWS_DEFAULT = Path("C:/Program Files/Tesseract-OCR/tesseract.exe")
INSTALL_HINT = ("Linux: sudo apt install tesseract-ocr tesseract-ocr-kor · Windows: install Tesseract "
                f"(UB Mannheim build) with the Korean language data, or set {env_name('ocr', 'tesseract_path')}")


@dataclass(frozen=True)
class OcrStatus:
    available: bool
    engine: str  # "tesseract 5.3.0", or "" when missing
    languages: str
    reason: str | None  # why not available, in words a user can act on


@dataclass(frozen=True)
class OcrText:
    text: str
    confidence: float  # mean word confidence, 0..100 (-1: no words)


class TesseractOcr:
    def __init__(self, cfg: Ocr) -> None:
        self.cfg = cfg
        self._status: OcrStatus | None = None
        self._lock = threading.Lock()

    def program(self) -> str | None:
        if self.cfg.tesseract_path is not None:
            return str(self.cfg.tesseract_path) if self.cfg.tesseract_path.is_file() else None
        found = shutil.which("tesseract")
        if found is None and sys.platform == "win32" and WINDOWS_DEFAULT.is_file():
            found = str(WINDOWS_DEFAULT)
        return found

    def status(self) -> OcrStatus:
        """Probed once (two short runs of the program), then kept."""
        with self._lock:
            if self._status is None:
                self._status = self._probe()
            return self._status

    def _probe(self) -> OcrStatus:
        wanted = self.cfg.languages
        if not self.cfg.enabled:
            return OcrStatus(False, "", wanted, f"OCR is switched off ({env_name('ocr', 'enabled')}=false)")
        program = self.program()
        if program is None:
            where = f"at {self.cfg.tesseract_path}" if self.cfg.tesseract_path else "on this PC"
            return OcrStatus(False, "", wanted, f"tesseract is not installed {where}. {INSTALL_HINT}")
        try:
            version = self._run(program, ["--version"], b"", 20).stdout.decode(errors="replace").splitlines()
            listed = self._run(program, ["--list-langs"], b"", 20).stdout.decode(errors="replace").split()
        except (OSError, subprocess.SubprocessError) as exc:
            return OcrStatus(False, "", wanted, f"tesseract at {program} does not run ({exc})")
        missing = [lang for lang in wanted.split("+") if lang not in listed]
        engine = version[0].strip() if version else "tesseract"
        if missing:
            return OcrStatus(False, engine, wanted, f"tesseract has no language data for {', '.join(missing)}. "
                             f"{INSTALL_HINT}")
        return OcrStatus(True, engine, wanted, None)

    def read(self, image: Image.Image, dpi: int | None = None) -> OcrText:
        """The picture's text: paragraphs separated by blank lines, lines of a paragraph joined."""
        program = self.program()
        if program is None or not self.status().available:
            raise RuntimeError(self.status().reason or "OCR is not available")
        picture = io.BytesIO()
        image.convert("L").save(picture, format="PPM")  # uncompressed grey (PGM): no encoding work here
        with tempfile.TemporaryDirectory(prefix="aione-ocr-") as folder:
            base = Path(folder) / "page"
            args = ["stdin", str(base), "-l", self.cfg.languages, "--psm", str(self.cfg.page_mode)]
            if dpi:
                args += ["--dpi", str(dpi)]
            done = self._run(program, [*args, "txt", "tsv"], picture.getvalue(), self.cfg.page_timeout_s)
            if done.returncode != 0:
                raise RuntimeError(f"tesseract failed: {done.stderr.decode(errors='replace')[-300:]}")
            text = base.with_suffix(".txt").read_text(encoding="utf-8", errors="replace")
            confidence = _confidence(base.with_suffix(".tsv").read_text(encoding="utf-8", errors="replace"))
        return OcrText(_tidy(text), confidence)

    @staticmethod
    def _run(program: str, args: list[str], stdin: bytes, timeout: float) -> subprocess.CompletedProcess:
        env = dict(os.environ, OMP_THREAD_LIMIT="1")  # one core: the others stay with the chat model
        options: dict = {}
        if os.name == "posix":
            options["preexec_fn"] = lambda: os.nice(19)
        elif sys.platform == "win32":
            options["creationflags"] = subprocess.IDLE_PRIORITY_CLASS | subprocess.CREATE_NO_WINDOW
        return subprocess.run([program, *args], input=stdin, capture_output=True, timeout=timeout, env=env,
                              check=False, **options)


def _confidence(tsv: str) -> float:
    """Mean confidence of the words in tesseract's TSV (-1 when it found none)."""
    values = []
    for row in csv.DictReader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE):
        if row.get("level") == "5" and (row.get("text") or "").strip():
            try:
                values.append(float(row["conf"]))
            except (KeyError, TypeError, ValueError):
                continue
    return round(sum(values) / len(values), 1) if values else -1.0


def _tidy(text: str) -> str:
    """Blank-line paragraphs kept, form feeds and trailing spaces gone."""
    lines = [line.rstrip() for line in text.replace("\f", "\n").splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
