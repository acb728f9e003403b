// @ts-check
/** Message search in the sidebar: results with the match marked; a click opens the turn. */
import { api } from "./api.js";
import { errorText, t } from "./i18n.js";

/** A snippet with its matches in <mark>, built as DOM (the text is user and model text). @param {{text: string, highlights: number[][]}} snippet */
function marked(snippet) {
  const box = document.createElement("span");
  box.className = "search-snippet";
  let at = 0;
  for (const [start, end] of snippet.highlights) {
    if (start < at) continue;
    box.append(snippet.text.slice(at, start));
    const mark = document.createElement("mark");
    mark.textContent = snippet.text.slice(start, end);
    box.append(mark);
    at = end;
  }
  box.append(snippet.text.slice(at));
  return box;
}

/** @param {{onOpen: (sessionId: string, turnId: number) => void, showError: (m: string) => void}} hooks */
export function initSearch(hooks) {
  const input = /** @type {HTMLInputElement} */ (document.getElementById("search-input"));
  const list = /** @type {HTMLElement} */ (document.getElementById("search-results"));
  let timer = 0;
  let asked = "";
  const run = async () => {
    const q = input.value.trim();
    asked = q;
    if (!q) { list.replaceChildren(); list.hidden = true; return; }
    try {
      const { results } = await api.search(q);
      if (asked !== q) return; // a newer query is on its way
      list.hidden = false;
      list.replaceChildren(...(results.length ? results.map((/** @type {any} */ hit) => {
        const item = document.createElement("li");
        const open = document.createElement("button");
        open.type = "button";
        open.className = "search-hit";
        open.dataset.turnId = String(hit.turn_id);
        const title = document.createElement("span");
        title.className = "search-title";
        title.textContent = hit.session_title || t("untitled");
        open.append(title, marked(hit.snippet));
        open.addEventListener("click", () => hooks.onOpen(hit.session_id, hit.turn_id));
        item.appendChild(open);
        return item;
      }) : [Object.assign(document.createElement("li"), { className: "muted small", textContent: t("searchNone") })]));
    } catch (error) {
      hooks.showError(errorText(error));
    }
  };
  input.addEventListener("input", () => { clearTimeout(timer); timer = window.setTimeout(run, 250); });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.isComposing) { clearTimeout(timer); run(); }
    if (event.key === "Escape") { input.value = ""; run(); }
  });
}
