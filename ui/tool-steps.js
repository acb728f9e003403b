// @ts-check
/** The chat's own tool calls as steps of an answer: what was called (collapsible, with the
 * arguments), the confirmation a code run waits for, and what came back. Also the tools menu:
 * which tools the model may use, remembered per conversation. */
import { el } from "./dom.js";
import { api } from "./api.js";
import { t } from "./i18n.js";

const TOOL_NAMES = ["search_documents", "search_conversations", "run_python", "generate_image"];
const SAVED = "aione.tools.";


/** @param {string} name @param {string} args the call's JSON arguments */
function summaryText(name, args) {
  let shown = args;
  try {
    const value = JSON.parse(args);
    shown = String(value.query ?? value.code ?? value.prompt ?? args);
  } catch { /* shown as it came */ }
  return `${t(`tool_${name}`)}: ${shown.split("\n")[0].slice(0, 80)}`;
}

/** The steps box of one answer (made on its first step, above the answer's text). */
export class ToolSteps {
  /** @param {HTMLElement} answerNode @param {HTMLElement} before */
  constructor(answerNode, before) {
    this.answerNode = answerNode;
    this.before = before;
    /** @type {Map<string, HTMLDetailsElement>} */
    this.steps = new Map();
  }

  box() {
    let box = /** @type {HTMLElement|null} */ (this.answerNode.querySelector(".tool-steps"));
    if (!box) {
      box = el("div", "tool-steps");
      this.answerNode.insertBefore(box, this.before);
    }
    return box;
  }

  /** @param {{id: string, name: string, arguments: string}} call */
  call(call) {
    const step = /** @type {HTMLDetailsElement} */ (el("details", "tool-step running"));
    step.dataset.callId = call.id;
    step.dataset.tool = call.name;
    step.append(el("summary", "", summaryText(call.name, call.arguments)), el("pre", "tool-args", call.arguments));
    this.box().append(step);
    this.steps.set(call.id, step);
    return step;
  }

  /** A code run waits for the user: the code, and 실행 / 거절. @param {{id: string, name: string, arguments: string}} call */
  confirm(call) {
    const step = this.steps.get(call.id) ?? this.call(call);
    step.open = true;
    step.classList.add("waiting");
    const row = el("div", "tool-confirm");
    const run = /** @type {HTMLButtonElement} */ (el("button", "button primary small-button tool-run", t("toolRun")));
    const deny = /** @type {HTMLButtonElement} */ (el("button", "button small-button tool-deny", t("toolDeny")));
    for (const [button, decision] of /** @type {[HTMLButtonElement, boolean][]} */ ([[run, true], [deny, false]])) {
      button.type = "button";
      button.addEventListener("click", async () => {
        run.disabled = deny.disabled = true;
        await api.post(`/api/tools/${encodeURIComponent(call.id)}/decision`, { run: decision }).catch(() => {});
        step.classList.remove("waiting");
      });
    }
    row.append(el("span", "muted small", t("toolConfirmRun")), run, deny);
    step.append(row);
  }

  /** @param {{id: string, name: string, ok: boolean, content: string}} result */
  result(result) {
    const step = this.steps.get(result.id) ?? this.call({ id: result.id, name: result.name, arguments: "" });
    step.classList.remove("running", "waiting");
    step.classList.add(result.ok ? "ok" : "failed");
    step.querySelector(".tool-confirm")?.remove();
    step.append(el("pre", "tool-result", result.content));
  }

  /** A saved answer's steps (kept in its sources as {type: "tool", ...}). @param {any[]} sources */
  restore(sources) {
    for (const step of sources.filter((s) => s.type === "tool")) {
      this.call({ id: step.id, name: step.name, arguments: step.arguments });
      this.result({ id: step.id, name: step.name, ok: step.ok, content: step.result });
    }
  }
}

/** The tools menu of the composer, remembered per conversation (this browser's storage).
 * @param {boolean} canDraw an image model is there: generate_image is offered */
export function initToolsMenu(canDraw = false) {
  const drawChoice = document.getElementById("tool-image-choice");
  if (drawChoice) drawChoice.hidden = !canDraw;
  const menu = /** @type {HTMLDetailsElement|null} */ (document.getElementById("tools-menu"));
  const boxes = /** @type {HTMLInputElement[]} */ ([...document.querySelectorAll("#tools-menu input[name='tool']")]);
  const allow = /** @type {HTMLInputElement|null} */ (document.getElementById("tools-allow-run"));
  const count = document.getElementById("tools-count");
  let key = "new";
  const show = () => {
    const on = boxes.filter((b) => b.checked).length;
    if (count) count.textContent = on ? ` (${on})` : "";
  };
  const save = () => {
    localStorage.setItem(SAVED + key, JSON.stringify({ tools: boxes.filter((b) => b.checked).map((b) => b.value),
                                                       allow: Boolean(allow?.checked) }));
    show();
  };
  for (const box of [...boxes, ...(allow ? [allow] : [])]) box.addEventListener("change", save);
  return {
    /** @returns {{tools: string[], allowRunPython: boolean}} */
    options: () => ({ tools: boxes.filter((b) => b.checked && TOOL_NAMES.includes(b.value)
                                                && (b.value !== "generate_image" || canDraw)).map((b) => b.value),
                      allowRunPython: Boolean(allow?.checked) }),
    /** The conversation changed: its own choice (a new one keeps what was set for it). @param {string|null} sessionId */
    setSession(sessionId) {
      const next = sessionId ?? "new";
      if (key === "new" && next !== "new" && !localStorage.getItem(SAVED + next)) {
        key = next;
        save(); // the choice made before the conversation existed becomes its own
        return;
      }
      key = next;
      /** @type {{tools: string[], allow: boolean}} */
      let saved = { tools: [], allow: false };
      try {
        saved = JSON.parse(localStorage.getItem(SAVED + key) ?? "null") ?? saved;
      } catch { /* a damaged entry: defaults */ }
      for (const box of boxes) box.checked = saved.tools.includes(box.value);
      if (allow) allow.checked = Boolean(saved.allow);
      show();
    },
    menu,
  };
}
