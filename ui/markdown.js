// @ts-check
/**
 * Answers as rich text: CommonMark + GFM tables, strikethrough and task lists by the vendored
 * markdown-it (raw HTML off), math by ui/markdown-math.js (Temml), code highlighted by the
 * vendored highlight.js with a language label and a copy button (python blocks get ▶ 실행 from
 * ui/code-runner.js). Model output is untrusted: markdown-it escapes every piece of HTML in the
 * answer, links are kept only when they lead to http(s), and the HTML is sanitised by DOMPurify
 * before it becomes nodes. The few style attributes Temml writes (\boxed's border, aligned's
 * padding) never go through HTML (the page's CSP refuses inline styles): they travel as
 * data-math-style and are applied through the CSSOM, on MathML elements only.
 *
 * markdown-it, DOMPurify and Temml are classic scripts the HTML pages load before their modules.
 */
import hljs from "./vendor/highlight/core.min.js";
import bash from "./vendor/highlight/languages/bash.min.js";
import c from "./vendor/highlight/languages/c.min.js";
import cpp from "./vendor/highlight/languages/cpp.min.js";
import css from "./vendor/highlight/languages/css.min.js";
import go from "./vendor/highlight/languages/go.min.js";
import java from "./vendor/highlight/languages/java.min.js";
import javascript from "./vendor/highlight/languages/javascript.min.js";
import json from "./vendor/highlight/languages/json.min.js";
import python from "./vendor/highlight/languages/python.min.js";
import rust from "./vendor/highlight/languages/rust.min.js";
import sql from "./vendor/highlight/languages/sql.min.js";
import typescript from "./vendor/highlight/languages/typescript.min.js";
import xml from "./vendor/highlight/languages/xml.min.js";
import yaml from "./vendor/highlight/languages/yaml.min.js";
import { escapeHtml } from "./dom.js";
import { t } from "./i18n.js";
import { dollarFormula, mathPlugin } from "./markdown-math.js";

const LANGUAGES = { bash, c, cpp, css, go, java, javascript, json, python, rust, sql, typescript, xml, yaml };
for (const [name, grammar] of Object.entries(LANGUAGES)) hljs.registerLanguage(name, grammar);
const ALIASES = { sh: "bash", shell: "bash", zsh: "bash", console: "bash", js: "javascript", ts: "typescript",
  py: "python", html: "xml", "c++": "cpp", yml: "yaml", golang: "go", rs: "rust", h: "c", hpp: "cpp" };

const MATHML = "http://www.w3.org/1998/Math/MathML";

/** @param {string} url */
export function safeUrl(url) {
  try {
    const parsed = new URL(url, window.location.href);
    return parsed.protocol === "http:" || parsed.protocol === "https:";
  } catch {
    return false;
  }
}

/** @param {string} info the fence's info string @returns {{label: string, grammar: string|null}} */
function language(info) {
  const label = (info.trim().split(/\s+/)[0] ?? "").toLowerCase();
  const name = /** @type {Record<string, string>} */ (ALIASES)[label] ?? label;
  return { label, grammar: hljs.getLanguage(name) ? name : null };
}

/** @param {string} code @param {string} info */
function codeBlockHtml(code, info) {
  const { label, grammar } = language(info);
  const body = grammar ? hljs.highlight(code, { language: grammar, ignoreIllegals: true }).value : escapeHtml(code);
  const codeClass = `hljs${label ? ` language-${escapeHtml(label)}` : ""}`;
  return `<div class="code-block" data-lang="${escapeHtml(label)}"><div class="code-bar"><span class="code-lang">`
    + `${escapeHtml(label || "text")}</span><button type="button" class="copy-button">${escapeHtml(t("copy"))}</button>`
    + `</div><pre><code class="${codeClass}">${body}</code></pre></div>\n`;
}

/** @type {any} */
let engine = null;

/** The markdown-it instance, made on first use (its script loads before the modules run). */
function markdown() {
  if (engine) return engine;
  const win = /** @type {any} */ (window);
  engine = win.markdownit({ html: false, linkify: false, typographer: false });
  engine.validateLink = safeUrl;
  engine.use(mathPlugin);
  engine.core.ruler.push("align_classes", (/** @type {any} */ state) => { // the CSP refuses style attributes
    for (const token of state.tokens) {
      const style = token.attrGet?.("style");
      if ((token.type === "th_open" || token.type === "td_open") && style) {
        token.attrs = token.attrs.filter((/** @type {string[]} */ attr) => attr[0] !== "style");
        token.attrJoin("class", `align-${style.replace("text-align:", "")}`);
      }
    }
  });
  engine.renderer.rules.fence = (/** @type {any[]} */ tokens, /** @type {number} */ idx) =>
    codeBlockHtml(tokens[idx].content, engine.utils.unescapeAll(tokens[idx].info));
  engine.renderer.rules.s_open = () => "<del>"; // GFM's strikethrough element
  engine.renderer.rules.s_close = () => "</del>";
  engine.renderer.rules.code_block = (/** @type {any[]} */ tokens, /** @type {number} */ idx) =>
    codeBlockHtml(tokens[idx].content, "");
  win.DOMPurify.addHook("uponSanitizeAttribute", (/** @type {Element} */ _node, /** @type {any} */ data) => {
    if (data.attrName === "style") data.keepAttr = false; // never from an answer; Temml's come as data-math-style
  });
  return engine;
}

/** The answer's HTML, as markdown-it writes it (before sanitising). @param {string} text */
export function markdownHtml(text) {
  return markdown().render(text);
}

/** Sanitised nodes from HTML, with the page's behaviour attached. @param {string} html */
function toNodes(html) {
  const purify = /** @type {any} */ (window).DOMPurify;
  /** @type {DocumentFragment} */
  const fragment = purify.sanitize(html, {
    USE_PROFILES: { html: true, mathMl: true },
    ADD_ATTR: ["data-math-style", "data-lang", "displaystyle", "scriptlevel", "columnalign", "rowspacing",
      "columnspacing", "stretchy", "fence", "form", "mathvariant", "lspace", "rspace"],
    FORBID_TAGS: ["style", "form", "input", "textarea", "select", "iframe"],
    RETURN_DOM_FRAGMENT: true,
  });
  for (const node of fragment.querySelectorAll("[data-math-style]")) { // Temml's layout, through the CSSOM
    const style = node.getAttribute("data-math-style") ?? "";
    if (node.namespaceURI === MATHML && !/url\(|expression|@import/i.test(style)) /** @type {HTMLElement} */ (node).style.cssText = style;
    node.removeAttribute("data-math-style");
  }
  for (const link of fragment.querySelectorAll("a[href]")) {
    link.setAttribute("target", "_blank");
    link.setAttribute("rel", "noopener noreferrer");
  }
  taskLists(fragment);
  for (const button of fragment.querySelectorAll(".code-block .copy-button")) wireCopy(/** @type {HTMLButtonElement} */ (button));
  return fragment;
}

/** "- [ ] a" / "- [x] b" items as checkboxes (GFM task lists). @param {DocumentFragment} root */
function taskLists(root) {
  for (const item of root.querySelectorAll("li")) {
    const first = item.firstChild?.nodeName === "P" ? item.firstChild.firstChild : item.firstChild;
    if (!first || first.nodeType !== Node.TEXT_NODE) continue;
    const match = /^\[([ xX])\]\s/.exec(first.textContent ?? "");
    if (!match) continue;
    first.textContent = (first.textContent ?? "").slice(match[0].length);
    const box = document.createElement("input");
    box.type = "checkbox";
    box.disabled = true;
    box.checked = match[1] !== " ";
    box.className = "task-box";
    first.parentNode?.insertBefore(box, first);
    item.classList.add("task-item");
  }
}

/** @param {HTMLButtonElement} copy */
function wireCopy(copy) {
  copy.addEventListener("click", async () => {
    const code = copy.closest(".code-block")?.querySelector("pre code")?.textContent ?? "";
    try {
      await navigator.clipboard.writeText(code);
    } catch {
      const area = document.createElement("textarea");
      area.value = code;
      document.body.appendChild(area);
      area.select();
      document.execCommand("copy");
      area.remove();
    }
    copy.textContent = t("copied");
    setTimeout(() => { copy.textContent = t("copy"); }, 1500);
  });
}

/** One answer, rendered at once. @param {string} text @returns {DocumentFragment} */
export function renderMarkdown(text) {
  return toNodes(markdownHtml(text));
}

/**
 * Where the text may be cut into blocks that render alone: blank lines outside fences and
 * display math. @param {string} text @returns {number[]} the offsets where blocks start
 */
export function blockStarts(text) {
  const starts = [0];
  let fence = "";
  let math = "";
  let at = 0;
  for (const line of text.split("\n")) {
    const trimmed = line.trim();
    if (fence) {
      if (trimmed.startsWith(fence) && !trimmed.slice(fence.length).trim()) fence = "";
    } else if (math) {
      if (trimmed.endsWith(math)) math = "";
    } else if (/^(`{3,}|~{3,})/.test(trimmed)) {
      fence = /** @type {RegExpExecArray} */ (/^(`{3,}|~{3,})/.exec(trimmed))[1];
    } else if ((trimmed.startsWith("$$") && !(trimmed.length > 3 && trimmed.endsWith("$$")))
      || (trimmed.startsWith("\\[") && !trimmed.endsWith("\\]"))) {
      math = trimmed.startsWith("$$") ? "$$" : "\\]";
    } else if (!trimmed && at + line.length + 1 < text.length) {
      const next = text.slice(at + line.length + 1);
      if (!/^\s/.test(next) && !/^([-*+]|\d+[.)])\s/.test(next)) starts.push(at + line.length + 1); // lists stay whole
    }
    at += line.length + 1;
  }
  return starts;
}

/**
 * What of a streaming answer's unfinished end is shown now: an open `$`, `\(`, `$$`, `\[` or
 * backtick, and a table row before its delimiter row, wait for the rest, so nothing is drawn
 * in one form and then another. @param {string} text
 */
export function settledText(text) {
  const lastBreak = text.lastIndexOf("\n");
  const line = text.slice(lastBreak + 1);
  let cut = text.length;
  if ((text.match(/\$\$/g) ?? []).length % 2 === 1) cut = Math.min(cut, text.lastIndexOf("$$"));
  if ((text.match(/\\\[/g) ?? []).length > (text.match(/\\\]/g) ?? []).length) cut = Math.min(cut, text.lastIndexOf("\\["));
  const backticks = (line.match(/`/g) ?? []).length;
  if (backticks % 2 === 1 && !/^\s*(`{3,}|~{3,})/.test(line)) cut = Math.min(cut, lastBreak + 1 + line.lastIndexOf("`"));
  const dollar = unclosedDollar(line);
  if (dollar !== -1) cut = Math.min(cut, lastBreak + 1 + dollar);
  const paren = line.lastIndexOf("\\(");
  if (paren !== -1 && line.indexOf("\\)", paren) === -1) cut = Math.min(cut, lastBreak + 1 + paren);
  if (/^\s*\|/.test(line)) cut = Math.min(cut, lastBreak + 1); // a table row waits for its line end
  return text.slice(0, cut);
}

/**
 * Where an inline `$` formula opens in the line and cannot be told yet (not closed, or closed
 * by the line's last character: a digit after it would make it money), or -1.
 * @param {string} line
 */
function unclosedDollar(line) {
  let at = 0;
  for (;;) {
    const start = line.indexOf("$", at);
    if (start === -1) return -1;
    if (line.charAt(start - 1) === "\\" || line.charAt(start + 1) === "$") { at = start + 2; continue; }
    const close = dollarFormula(line, start);
    if (close === -2 || close === line.length - 1) return start;
    at = close >= 0 ? close + 1 : start + 1;
  }
}

/**
 * A streaming answer's view: finished blocks keep their nodes; each frame renders only the
 * last, unfinished block again. `finish` renders the whole text once, so the final view is a
 * one-shot render of the answer.
 */
export class MarkdownView {
  /** @param {HTMLElement} container */
  constructor(container) {
    this.container = container;
    /** @type {{source: string, nodes: Node[]}[]} */
    this.blocks = [];
  }

  /** @param {string} text the answer so far */
  stream(text) {
    const settled = settledText(text);
    const starts = blockStarts(settled);
    const sources = starts.map((start, i) => settled.slice(start, starts[i + 1] ?? settled.length));
    let keep = 0;
    while (keep < sources.length - 1 && keep < this.blocks.length && this.blocks[keep].source === sources[keep]) keep++;
    for (const block of this.blocks.splice(keep)) for (const node of block.nodes) node.parentNode?.removeChild(node);
    for (const source of sources.slice(keep)) {
      const nodes = [...renderMarkdown(source).childNodes];
      this.container.append(...nodes);
      this.blocks.push({ source, nodes });
    }
  }

  /** @param {string} text the whole answer */
  finish(text) {
    this.container.replaceChildren(renderMarkdown(text));
    this.blocks = [];
  }
}
