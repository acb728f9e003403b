// @ts-check
/** Controls under a stored turn: ‹ 2/3 › between alternatives, 👍/👎 and regenerate on answers, edit on
 *  messages, 기억하기 on both. */
import { t } from "./i18n.js";

/**
 * @typedef {{id: number, role: string, kind: string, text: string, sibling_ids: number[], sibling_index: number, rating?: number|null}} StoredTurn
 * @typedef {{onBranch: (turnId: number) => void, onRegenerate: (turnId: number) => void, onEdit: (turnId: number, text: string) => void,
 *            onRate: (turnId: number, rating: number) => Promise<void>, onRemember: (turnId: number) => void}} TurnHandlers
 */

/** @param {string} className @param {string} glyph @param {string} label @param {() => void} onClick */
function button(className, glyph, label, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = `icon-button turn-button ${className}`;
  b.textContent = glyph;
  b.title = label;
  b.setAttribute("aria-label", label);
  b.addEventListener("click", onClick);
  return b;
}

const SVG = "http://www.w3.org/2000/svg";
// A thumb drawn as SVG: emoji fonts are not on every PC (the glyph would be an empty box).
const THUMB = "M2 10h3v10H2zM7 20h9.5a2 2 0 0 0 2-1.6l1.4-7A2 2 0 0 0 18 9h-5l.8-4a1.6 1.6 0 0 0-3-1L7 10z";

/** @param {boolean} down */
function thumb(down) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 22 22");
  svg.setAttribute("width", "15");
  svg.setAttribute("height", "15");
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(SVG, "path");
  path.setAttribute("d", THUMB);
  path.setAttribute("fill", "currentColor");
  if (down) path.setAttribute("transform", "rotate(180 11 12)");
  svg.appendChild(path);
  return svg;
}

/** @param {HTMLElement} node the message's element @param {StoredTurn} turn @param {TurnHandlers} handlers */
export function addTurnControls(node, turn, handlers) {
  node.querySelector(".turn-controls")?.remove();
  if (turn.kind !== "chat") return;
  const bar = document.createElement("div");
  bar.className = "turn-controls";
  const siblings = turn.sibling_ids ?? [turn.id];
  if (siblings.length > 1) {
    const at = turn.sibling_index;
    const pager = document.createElement("span");
    pager.className = "turn-pager";
    const prev = button("turn-prev", "‹", t("previousVersion"), () => handlers.onBranch(siblings[at - 1]));
    const next = button("turn-next", "›", t("nextVersion"), () => handlers.onBranch(siblings[at + 1]));
    prev.disabled = at === 0;
    next.disabled = at === siblings.length - 1;
    const label = document.createElement("span");
    label.className = "turn-pager-label";
    label.textContent = `${at + 1}/${siblings.length}`;
    pager.append(prev, label, next);
    bar.appendChild(pager);
  }
  if (turn.role === "assistant") {
    for (const [rating, key] of /** @type {const} */ ([[1, "rateUp"], [-1, "rateDown"]])) {
      const rate = button(rating > 0 ? "rate-up" : "rate-down", "", t(key), async () => {
        const next = turn.rating === rating ? 0 : rating; // pressing it again takes it back
        await handlers.onRate(turn.id, next);
        turn.rating = next;
        addTurnControls(node, turn, handlers);
      });
      rate.appendChild(thumb(rating < 0));
      rate.setAttribute("aria-pressed", String(turn.rating === rating));
      bar.appendChild(rate);
    }
    bar.appendChild(button("turn-regenerate", "↻", t("regenerate"), () => handlers.onRegenerate(turn.id)));
  } else {
    bar.appendChild(button("turn-edit", "✎", t("editMessage"), () => startEdit(node, turn, handlers)));
  }
  bar.appendChild(button("turn-remember", "✚", t("rememberThis"), () => handlers.onRemember(turn.id)));
  node.appendChild(bar);
}

/** An inline editor in place of the message; saving sends it as a new version. */
function startEdit(/** @type {HTMLElement} */ node, /** @type {StoredTurn} */ turn, /** @type {TurnHandlers} */ handlers) {
  if (node.querySelector(".turn-editor")) return;
  const editor = document.createElement("div");
  editor.className = "turn-editor";
  const area = document.createElement("textarea");
  area.className = "turn-edit-input";
  area.value = turn.text;
  area.rows = Math.min(8, turn.text.split("\n").length + 1);
  const save = document.createElement("button");
  save.type = "button";
  save.className = "button primary small-button turn-edit-save";
  save.textContent = t("editSend");
  const cancel = document.createElement("button");
  cancel.type = "button";
  cancel.className = "button small-button";
  cancel.textContent = t("cancel");
  const submit = () => {
    const text = area.value.trim();
    if (!text) return;
    editor.remove();
    handlers.onEdit(turn.id, text);
  };
  save.addEventListener("click", submit);
  cancel.addEventListener("click", () => editor.remove());
  area.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); submit(); }
    if (event.key === "Escape") editor.remove();
  });
  editor.append(area, save, cancel);
  node.appendChild(editor);
  area.focus();
}
