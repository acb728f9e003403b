// @ts-check
/**
 * A small markdown renderer that builds DOM nodes directly. Model output is untrusted, so
 * no string ever reaches innerHTML: every piece of text goes in through textContent, and
 * links are kept only for http(s) URLs. Supports fenced code, inline code, bold, italic,
 * headings, lists, quotes, links and line breaks.
 */
import { t } from "./i18n.js";

/** @param {string} tag @param {string} [className] @param {string} [text] */
function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** @param {string} url */
function safeUrl(url) {
  try {
    const parsed = new URL(url, window.location.href);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch {
    return null;
  }
}

const INLINE = /(`[^`\n]+`)|(\*\*[^*\n]+\*\*)|(\*[^*\n]+\*|_[^_\n]+_)|(\[[^\]\n]+\]\([^)\s]+\))/;

/** Append inline markdown of one line to parent. @param {Node} parent @param {string} text */
function appendInline(parent, text) {
  let rest = text;
  while (rest) {
    const match = INLINE.exec(rest);
    if (!match) {
      parent.appendChild(document.createTextNode(rest));
      return;
    }
    if (match.index > 0) parent.appendChild(document.createTextNode(rest.slice(0, match.index)));
    const token = match[0];
    if (match[1]) parent.appendChild(el("code", "inline-code", token.slice(1, -1)));
    else if (match[2]) { const b = el("strong"); appendInline(b, token.slice(2, -2)); parent.appendChild(b); }
    else if (match[3]) { const i = el("em"); appendInline(i, token.slice(1, -1)); parent.appendChild(i); }
    else {
      const [, label, href] = /^\[([^\]]+)\]\(([^)]+)\)$/.exec(token) ?? [];
      const url = safeUrl(href ?? "");
      if (url) {
        const a = /** @type {HTMLAnchorElement} */ (el("a", "", label));
        a.href = url;
        a.target = "_blank";
        a.rel = "noopener noreferrer";
        parent.appendChild(a);
      } else {
        parent.appendChild(document.createTextNode(token));
      }
    }
    rest = rest.slice(match.index + token.length);
  }
}

/** @param {string} lang @param {string} code */
function codeBlock(lang, code) {
  const wrap = el("div", "code-block");
  wrap.dataset.lang = lang; // ui/code-runner.js adds Run to python blocks
  const bar = el("div", "code-bar");
  bar.appendChild(el("span", "code-lang", lang || "text"));
  const copy = /** @type {HTMLButtonElement} */ (el("button", "copy-button", t("copy")));
  copy.type = "button";
  copy.addEventListener("click", async () => {
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
  bar.appendChild(copy);
  const pre = el("pre");
  pre.appendChild(el("code", lang ? `language-${lang}` : "", code));
  wrap.append(bar, pre);
  return wrap;
}

/** @param {string} markdown @returns {DocumentFragment} */
export function renderMarkdown(markdown) {
  const root = document.createDocumentFragment();
  const lines = markdown.replace(/\r\n?/g, "\n").split("\n");
  /** @type {HTMLElement | null} */
  let paragraph = null;
  /** @type {HTMLElement | null} */
  let list = null;
  const endBlocks = () => { paragraph = null; list = null; };

  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const fence = /^\s*```\s*([\w+#.-]*)\s*$/.exec(line);
    if (fence) {
      endBlocks();
      const body = [];
      i++;
      while (i < lines.length && !/^\s*```\s*$/.test(lines[i])) body.push(lines[i++]);
      root.appendChild(codeBlock(fence[1], body.join("\n"))); // an unclosed fence (still streaming) shows too
      continue;
    }
    if (!line.trim()) { endBlocks(); continue; }
    const heading = /^(#{1,6})\s+(.*)$/.exec(line);
    if (heading) {
      endBlocks();
      const h = el(`h${Math.min(6, heading[1].length + 2)}`, "md-heading");
      appendInline(h, heading[2]);
      root.appendChild(h);
      continue;
    }
    const item = /^\s*([-*+]|\d+[.)])\s+(.*)$/.exec(line);
    if (item) {
      const ordered = /\d/.test(item[1]);
      if (!list || (list.tagName === "OL") !== ordered) {
        paragraph = null;
        list = el(ordered ? "ol" : "ul");
        root.appendChild(list);
      }
      const li = el("li");
      appendInline(li, item[2]);
      list.appendChild(li);
      continue;
    }
    const quote = /^>\s?(.*)$/.exec(line);
    if (quote) {
      endBlocks();
      const q = el("blockquote");
      appendInline(q, quote[1]);
      root.appendChild(q);
      continue;
    }
    list = null;
    if (!paragraph) {
      paragraph = el("p");
      root.appendChild(paragraph);
    } else {
      paragraph.appendChild(document.createElement("br"));
    }
    appendInline(paragraph, line);
  }
  return root;
}
