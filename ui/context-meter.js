// @ts-check
/**
 * What the model sees of the open conversation: a meter by the composer (tokens used of the
 * context after each answer, from the done frame), a marker in the conversation where the
 * model's window starts ("이전 대화는 요약되어 전달됩니다 · 요약 보기", the summary on click), and
 * the parts of the next turn's prompt (GET /api/sessions/{id}/context) when the meter is clicked.
 */
import { api } from "./api.js";
import { byId, el } from "./dom.js";
import { t } from "./i18n.js";

/** @typedef {{used_tokens: number, n_ctx: number, window_first_turn_id: number|null, summarized_turns: number}} ContextState */


/** @param {() => string|null} currentSession */
export function initContextMeter(currentSession) {
  const meter = /** @type {HTMLButtonElement} */ (byId("context-meter"));
  const panel = byId("context-panel");

  /** The next turn's parts from the server (none without an open conversation). */
  const fetchView = async () => {
    const id = currentSession();
    return id ? api.get(`/api/sessions/${encodeURIComponent(id)}/context`) : null;
  };

  /** @param {ContextState|null|undefined} state */
  const show = (state) => {
    meter.hidden = !state;
    if (!state) return;
    const share = Math.min(1, state.used_tokens / state.n_ctx);
    meter.textContent = `${t("contextMeter")} ${state.used_tokens.toLocaleString()} / ${state.n_ctx.toLocaleString()}`;
    meter.dataset.level = share > 0.9 ? "full" : share > 0.7 ? "high" : "ok";
    meter.style.setProperty("--share", String(share));
    showMarker(state, fetchView);
  };

  meter.addEventListener("click", () => {
    if (!panel.hidden) { panel.hidden = true; return; }
    fetchView().then((data) => showPanel(panel, data)).catch(() => {});
  });

  return {
    show,
    /** The open conversation's state from the server (after it is shown, or a branch switch). */
    async load() {
      panel.hidden = true;
      try {
        const data = await fetchView();
        show(data && data.parts.length ? { used_tokens: data.used_tokens, n_ctx: data.n_ctx,
          window_first_turn_id: data.window_first_turn_id, summarized_turns: data.summarized_turns } : null);
      } catch {
        show(null); // a remote chat model has no context view: no meter
      }
    },
  };
}

/** The marker where the model's window starts, with the summary of what came before on click.
 * @param {ContextState} state @param {() => Promise<any>} fetchView */
function showMarker(state, fetchView) {
  document.querySelector(".window-marker")?.remove();
  if (!state.summarized_turns || state.window_first_turn_id == null) return;
  const first = document.querySelector(`.message[data-turn-id="${Number(state.window_first_turn_id)}"]`);
  if (!first) return;
  const line = el("div", "window-marker");
  line.append(el("span", "window-marker-text", t("windowMarker")));
  const open = /** @type {HTMLButtonElement} */ (el("button", "link-button window-summary-button", t("showSummary")));
  open.type = "button";
  const box = el("div", "window-summary");
  box.hidden = true;
  open.addEventListener("click", async () => {
    if (box.hidden) {
      const summary = (await fetchView())?.parts?.find((/** @type {any} */ part) => part.kind === "summary");
      box.textContent = summary ? summary.text : t("noSummaryYet");
      if (summary?.summary_kind === "extractive") box.append(el("div", "muted small", t("summaryExtractive")));
    }
    box.hidden = !box.hidden;
  });
  line.append(" · ", open, box);
  first.before(line);
}

/** The parts of the next turn's prompt, with their token counts. @param {HTMLElement} panel @param {any} data */
function showPanel(panel, data) {
  panel.replaceChildren();
  if (!data) return;
  panel.append(el("div", "context-title", `${t("contextTitle")}: ${data.used_tokens.toLocaleString()} / `
    + `${data.budget.toLocaleString()} (${t("contextOf")} ${data.n_ctx.toLocaleString()})`));
  for (const part of data.parts) {
    const row = el("div", `context-part context-${part.kind}`);
    const name = part.kind === "turn" ? (part.role === "user" ? t("you") : t("assistant")) : t(`context_${part.kind}`);
    row.append(el("span", "context-kind", name), el("span", "context-tokens", `${part.tokens}`));
    if (part.text) row.append(el("div", "context-text", part.text));
    panel.append(row);
  }
  panel.hidden = false;
}
