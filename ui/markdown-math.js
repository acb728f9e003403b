// @ts-check
/**
 * Math in answers, as a markdown-it plugin: `$…$`, `\(…\)` inline; `$$…$$`, `\[…\]` and
 * `\begin{aligned|cases|…}` displayed. Rendered by the vendored Temml (MathML: no fonts to load,
 * Hangul inside a formula is text, never a warning); a formula that does not parse shows its
 * source as code, never an error box.
 *
 * Inline `$` is math when it opens and closes like math: a non-space after the opening `$`, a
 * non-space before the closing one, no digit right after it. Korean particles may follow
 * (`$x$는`), Hangul may precede (`넓이는$S$이다`). Currency is not math: `$5이고 $2`,
 * `A는 $10이고 B는 $ 20입니다`, `USD $10 ~ $20` (a closing `$` after a space, or a number
 * followed by Korean words inside).
 */

import { escapeHtml } from "./dom.js";

const ENVIRONMENTS = "aligned|align\\*?|cases|equation\\*?|gather\\*?|gathered|matrix|pmatrix|bmatrix|vmatrix|array|split";
const BEGIN_ENV = new RegExp(`^\\\\begin\\{(${ENVIRONMENTS})\\}`);
/** @type {Map<string, string>} rendered formulas: streaming renders the same ones many times */
const cache = new Map();

/**
 * A formula as MathML (its TeX kept in data-tex), or its source as code when it does not parse.
 * @param {string} tex @param {boolean} display @param {string} source the formula as written
 * @param {boolean} [block] a block of its own (a div), else inside a line (a span)
 */
export function renderMath(tex, display, source, block = false) {
  const key = `${display ? "D" : "I"}${block ? "B" : ""}${tex}`;
  let html = cache.get(key);
  if (html === undefined) {
    const temml = /** @type {any} */ (window).temml;
    try {
      html = /** @type {string} */ (temml.renderToString(tex, { displayMode: display, throwOnError: true, strict: false,
        trust: false }))
        .replace(/ style="/g, ' data-math-style="'); // the page's CSP refuses style attributes: ui/markdown.js applies them
      const tag = block ? "div" : "span";
      html = `<${tag} class="${display ? "math-display" : "math-inline"}" data-tex="${escapeHtml(tex)}">${html}</${tag}>`;
    } catch {
      html = `<code class="math-source">${escapeHtml(source)}</code>`;
    }
    if (cache.size > 2000) cache.clear();
    cache.set(key, /** @type {string} */ (html));
  }
  return /** @type {string} */ (html);
}

// A number then words ("$10이고", "$10 and"): money, whatever follows.
const MONEY = /^\d[\d.,]*(?:\s+[A-Za-z]{2,}|\s*[가-힣])/;

/** @param {string} content what follows the opening `$` */
function looksLikeMoney(content) {
  const outsideText = content.replace(/\\text\{[^}]*\}/g, "");
  return MONEY.test(outsideText) || (/^\d/.test(outsideText) && /[가-힣]/.test(outsideText));
}

/**
 * Where the inline `$` formula opening at `start` closes; -1 when this `$` is no formula; -2
 * while the text so far cannot tell (streaming: more may close it).
 * @param {string} src @param {number} start
 */
export function dollarFormula(src, start) {
  const first = src.charAt(start + 1);
  if (!first) return -2;
  if (/\s|\$/.test(first)) return -1; // "$ 20"
  for (let at = src.indexOf("$", start + 1); at !== -1; at = src.indexOf("$", at + 1)) {
    if (src.charAt(at - 1) === "\\") continue;
    const content = src.slice(start + 1, at);
    if (content.includes("\n\n")) return -1;
    if (/\s/.test(src.charAt(at - 1)) || /\d/.test(src.charAt(at + 1))) return -1; // "$5이고 $2": money
    return looksLikeMoney(content) ? -1 : at;
  }
  const rest = src.slice(start + 1);
  return rest.includes("\n\n") || looksLikeMoney(rest) ? -1 : -2;
}

/** Where the inline `$` formula opening at `start` closes, or -1. @param {string} src @param {number} start */
export function closingDollar(src, start) {
  return Math.max(-1, dollarFormula(src, start));
}

/** @param {any} state @param {boolean} silent */
function inlineMath(state, silent) {
  const src = state.src;
  const start = state.pos;
  if (src.charCodeAt(start) !== 0x24 /* $ */ && src.charCodeAt(start) !== 0x5c /* \ */) return false;
  let open = "";
  let close = -1;
  let display = false;
  if (src.startsWith("$$", start)) {
    open = "$$";
    close = src.indexOf("$$", start + 2);
    display = true;
    if (close === start + 2) return false;
  } else if (src.startsWith("\\(", start) || src.startsWith("\\[", start)) {
    open = src.slice(start, start + 2);
    display = open === "\\[";
    close = src.indexOf(display ? "\\]" : "\\)", start + 2);
  } else if (src.charCodeAt(start) === 0x24) {
    open = "$";
    close = closingDollar(src, start);
  } else {
    return false;
  }
  if (close === -1) return false;
  if (!/[\p{L}\p{N}=+\-^_<>]/u.test(src.slice(start + open.length, close))) return false; // "\(\)", "$$ $$": no formula
  if (!silent) {
    const token = state.push("math_inline", "math", 0);
    token.content = src.slice(start + open.length, close);
    token.markup = open;
    token.meta = { display, source: src.slice(start, close + (open === "$" ? 1 : 2)) };
  }
  state.pos = close + (open === "$" ? 1 : 2);
  return true;
}

/** @param {any} state @param {number} startLine @param {number} endLine @param {boolean} silent */
function blockMath(state, startLine, endLine, silent) {
  const lineText = (/** @type {number} */ line) =>
    state.src.slice(state.bMarks[line] + state.tShift[line], state.eMarks[line]);
  if (state.sCount[startLine] - state.blkIndent >= 4) return false;
  const first = lineText(startLine);
  const env = BEGIN_ENV.exec(first);
  const open = first.startsWith("$$") ? "$$" : first.startsWith("\\[") ? "\\[" : env ? env[0] : "";
  if (!open) return false;
  const closer = open === "$$" ? "$$" : open === "\\[" ? "\\]" : `\\end{${env?.[1]}}`;
  let line = startLine;
  let found = false;
  const rest = env ? first : first.slice(open.length);
  if (rest.trimEnd().endsWith(closer) && (env || rest.trim().length > closer.length - 1)) found = true;
  while (!found && ++line < endLine) {
    if (lineText(line).trimEnd().endsWith(closer)) found = true;
  }
  if (!found) return false;
  if (silent) return true;
  const body = state.getLines(startLine, line + 1, state.tShift[startLine], false).trim();
  const tex = env ? body : body.slice(open.length, body.length - closer.length);
  const token = state.push("math_block", "math", 0);
  token.content = tex.trim();
  token.meta = { display: true, source: body };
  token.map = [startLine, line + 1];
  state.line = line + 1;
  return true;
}

/** @param {any} md the markdown-it instance */
export function mathPlugin(md) {
  md.inline.ruler.before("escape", "math_inline", inlineMath);
  md.block.ruler.before("fence", "math_block", blockMath, { alt: ["paragraph", "reference", "blockquote", "list"] });
  md.renderer.rules.math_inline = (/** @type {any[]} */ tokens, /** @type {number} */ idx) =>
    renderMath(tokens[idx].content, tokens[idx].meta.display, tokens[idx].meta.source);
  md.renderer.rules.math_block = (/** @type {any[]} */ tokens, /** @type {number} */ idx) =>
    renderMath(tokens[idx].content, true, tokens[idx].meta.source, true);
}
