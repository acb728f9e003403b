"""The page's answer renderer in headless Chromium: streaming cost per frame, final render, and
what the vendored libraries add to the page.

(1) A 5,000-word answer (Korean and English) with 200 inline formulas, 10 code blocks and 3
    tables, streamed at 30 tokens a frame (a token: ~3.5 characters, as SmolLM2/EXAONE give on
    such text) into ui/markdown.js's MarkdownView: p50 / p95 / max of the time per frame
    (target p95 <= 16 ms), and the final one-shot render (target <= 100 ms).
(2) The same stream drawn by re-rendering the whole text every frame (what the page did before
    it kept finished blocks), for comparison.
(3) Size: the vendored files the page loads for answers (markdown-it, DOMPurify, Temml and its
    CSS, highlight.js and 14 languages, its theme), raw and gzip; and the page's first load
    (DOMContentLoaded and load, median of 5 fresh loads).

    .venv/bin/python bench/markdown_render.py
"""
from __future__ import annotations

import gzip
import json
import random
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.server_process import ServerProcess  # noqa: E402
from tests.browser.conftest import CHROMIUM_ARGS, chromium_path  # noqa: E402

VENDORED = ["ui/vendor/markdown-it/markdown-it.umd.min.js", "ui/vendor/dompurify/purify.min.js",
            "ui/vendor/temml/temml.min.js", "ui/vendor/temml/Temml-Local.css", "ui/vendor/temml/Temml.woff2",
            "ui/vendor/highlight/core.min.js", "ui/vendor/highlight/github-dark.min.css",
            *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "ui/vendor/highlight/languages").glob("*.js"))]
KO = ["원의 넓이는", "반지름이 주어지면", "이 값을 이용해", "다음과 같이 계산합니다", "그래서 결과는", "비교해 보면",
      "모델의 크기는", "속도와 품질을", "한국어 문서에서", "정리하면"]
EN = ["The area of a circle", "given the radius", "we then compute", "which shows that", "in comparison",
      "the model size", "speed and quality", "for Korean documents", "to sum up", "as expected"]
FORMULAS = ["S=\\pi r^2", "x^2 + y^2 = r^2", "\\frac{a}{b}", "\\sqrt{2}", "e^{i\\pi} + 1 = 0", "\\sum_{i=1}^n i",
            "\\alpha + \\beta", "f(x) = 2x + 1", "\\int_0^1 x\\,dx", "a \\le b"]
CODE = "```python\ndef area(r: float) -> float:\n    \"\"\"넓이\"\"\"\n    return 3.14159 * r ** 2\n\nprint(area(2))\n```"
TABLE = "| 항목 | EXAONE | Qwen |\n|:---|:---:|---:|\n" + "".join(f"| 행 {i} | {i * 3} | {i * 5} |\n" for i in range(8))


def long_answer(words: int = 5000, formulas: int = 200, codes: int = 10, tables: int = 3, seed: int = 0) -> str:
    rng = random.Random(seed)
    paragraphs, count, made = [], 0, 0
    while count < words:
        sentence = []
        for _ in range(6):
            phrase = rng.choice(KO if rng.random() < 0.6 else EN)
            sentence.append(phrase)
            count += len(phrase.split())
            if made < formulas and rng.random() < 0.55:
                sentence.append(f"${rng.choice(FORMULAS)}${'이고' if rng.random() < 0.5 else ','}")
                made += 1
        paragraphs.append(" ".join(sentence) + ".")
    blocks: list[str] = []
    step = max(1, len(paragraphs) // (codes + tables + 1))
    extras = [CODE] * codes + [TABLE] * tables
    rng.shuffle(extras)
    for i, paragraph in enumerate(paragraphs):
        blocks.append(paragraph)
        if i % step == step - 1 and extras:
            blocks.append(extras.pop())
    blocks.extend(extras)
    return "## 긴 답변\n\n" + "\n\n".join(blocks) + "\n"


MEASURE = """async ({ text, frameChars, whole }) => {
  const md = await import('/ui/markdown.js');
  const box = document.createElement('div');
  box.className = 'message-body';
  document.getElementById('messages').appendChild(box);
  const view = new md.MarkdownView(box);
  const times = [];
  for (let end = frameChars; end < text.length + frameChars; end += frameChars) {
    const part = text.slice(0, Math.min(end, text.length));
    const started = performance.now();
    if (whole) box.replaceChildren(md.renderMarkdown(part)); else view.stream(part);
    times.push(performance.now() - started);
  }
  const started = performance.now();
  view.finish(text);
  const final = performance.now() - started;
  box.remove();
  times.sort((a, b) => a - b);
  const at = (q) => times[Math.min(times.length - 1, Math.floor(q * times.length))];
  return { frames: times.length, p50: at(0.5), p95: at(0.95), max: times[times.length - 1], final,
           formulas: (text.match(/\\$[^$]+\\$/g) || []).length };
}"""


def main() -> None:
    from playwright.sync_api import sync_playwright

    text = long_answer()
    frame_chars = round(30 * 3.5)
    raw = sum((ROOT / path).stat().st_size for path in VENDORED)
    zipped = sum(len(gzip.compress((ROOT / path).read_bytes(), 9)) for path in VENDORED)
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as p:
        server = ServerProcess({}, Path(folder), wait_for_model=None)
        try:
            browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
            page = browser.new_page()
            loads = []
            for _ in range(5):
                page.goto(server.url)
                page.wait_for_selector("body[data-ready='1']")
                loads.append(page.evaluate("(() => { const n = performance.getEntriesByType('navigation')[0];"
                                           " return [n.domContentLoadedEventEnd, n.loadEventEnd]; })()"))
            page.evaluate(MEASURE, {"text": text[:2000], "frameChars": frame_chars, "whole": False})  # warm-up
            streamed = page.evaluate(MEASURE, {"text": text, "frameChars": frame_chars, "whole": False})
            whole = page.evaluate(MEASURE, {"text": text, "frameChars": frame_chars, "whole": True})
            browser.close()
        finally:
            server.close()
    words = len(text.split())
    print(f"(1) {words} words, {text.count('$') // 2} inline formulas, {text.count('```') // 2} code blocks, "
          f"{text.count('|:---|')} tables; {streamed['frames']} frames of {frame_chars} characters (30 tokens): "
          f"per frame p50 {streamed['p50']:.2f} ms, p95 {streamed['p95']:.2f} ms (target <= 16), max "
          f"{streamed['max']:.1f} ms; final render {streamed['final']:.1f} ms (target <= 100)")
    print(f"(2) re-rendering the whole text each frame: p50 {whole['p50']:.1f} ms, p95 {whole['p95']:.1f} ms, "
          f"max {whole['max']:.1f} ms")
    dcl = statistics.median(load[0] for load in loads)
    load = statistics.median(load[1] for load in loads)
    print(f"(3) vendored for answers: {len(VENDORED)} files, {raw / 1024:.0f} KB raw, {zipped / 1024:.0f} KB gzip; "
          f"page first load: DOMContentLoaded {dcl:.0f} ms, load {load:.0f} ms (median of 5)")
    print(json.dumps({"words": words, "streamed": streamed, "whole": whole, "vendored_kb": raw / 1024,
                      "vendored_gzip_kb": zipped / 1024, "dom_content_loaded_ms": dcl, "load_ms": load}))


if __name__ == "__main__":
    main()
