// Helpers the markdown tests and bench evaluate in the page: canonical HTML (tags, sorted
// attributes, whitespace between blocks dropped) of the page's render and of a spec's expected
// HTML, the page's own decorations (code block bar, highlighting, link targets) undone.
window.markdownHarness = (() => {
  const BLOCK = /^(address|blockquote|div|dl|fieldset|figure|footer|h[1-6]|header|hr|li|ol|p|pre|section|table|tbody|td|tfoot|th|thead|tr|ul)$/;

  function undecorate(root) {
    for (const block of root.querySelectorAll(".code-block")) {
      const pre = document.createElement("pre");
      const code = document.createElement("code");
      const lang = block.dataset.lang;
      if (lang) code.className = `language-${lang}`;
      code.textContent = block.querySelector("pre code").textContent;
      pre.appendChild(code);
      block.replaceWith(pre);
    }
    for (const link of root.querySelectorAll("a")) { link.removeAttribute("target"); link.removeAttribute("rel"); }
    for (const cell of root.querySelectorAll("th, td")) {
      const align = [...cell.classList].find((name) => name.startsWith("align-"));
      cell.removeAttribute("class");
      if (align) cell.setAttribute("align", align.slice(6));
    }
    for (const cell of root.querySelectorAll("th[style], td[style]")) { // markdown-it's own (the spec's HTML has align)
      const match = /text-align:\s*(\w+)/.exec(cell.getAttribute("style"));
      cell.removeAttribute("style");
      if (match) cell.setAttribute("align", match[1]);
    }
    return root;
  }

  function serialise(node) {
    if (node.nodeType === Node.TEXT_NODE) {
      return node.textContent.replace(/\s+/g, " ").replace(/[&<>]/g, (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;" })[ch]);
    }
    if (node.nodeType !== Node.ELEMENT_NODE) return "";
    const tag = node.tagName.toLowerCase();
    const attrs = [...node.attributes].map((a) => `${a.name}="${a.value.trim()}"`).sort().join(" ");
    const inner = [...node.childNodes].map(serialise).join("");
    return `<${tag}${attrs ? " " + attrs : ""}>${BLOCK.test(tag) ? inner.trim() : inner}</${tag}>`;
  }

  function canonical(root) {
    return [...root.childNodes].map(serialise).join("").replace(/>\s+</g, "><").replace(/\s+/g, " ").trim();
  }

  function expected(html) {
    const template = document.createElement("template");
    template.innerHTML = html; // inert: nothing in it runs or loads
    const div = document.createElement("div");
    div.appendChild(template.content);
    return canonical(undecorate(div));
  }

  async function rendered(markdown) {
    const { renderMarkdown } = await import("/ui/markdown.js");
    const div = document.createElement("div");
    div.appendChild(renderMarkdown(markdown));
    return canonical(undecorate(div));
  }

  return { expected, rendered, canonical };
})();
