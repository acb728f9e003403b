// @ts-check
/** Memories in the conversation: "기억했습니다 … 되돌리기" under an answer whose message asked to
 *  remember or forget, "기억 N개 사용" with the texts the prompt held, 기억하기 on a message, and
 *  the conversation's "이 대화에서 기억 사용 안 함" switch. */
import { api } from "./api.js";
import { el } from "./dom.js";
import { errorText, t } from "./i18n.js";

const SAVED_KEYS = { added: "memoryAdded", updated: "memoryUpdated", unchanged: "memoryUnchanged",
                     forgotten: "memoryForgotten", not_found: "memoryNotFound" };

/** The change `event` made, undone through the memories API. @param {import("./api.js").MemoryEvent} event */
function undo(event) {
  const { memory, previous } = event;
  if (!memory) return Promise.resolve();
  if (event.action === "added") return api.deleteMemory(memory.id);
  if (event.action === "updated" && previous) return api.changeMemory(memory.id, { text: previous.text, enabled: previous.enabled });
  return api.changeMemory(memory.id, { enabled: true }); // forgotten
}

/**
 * Under the answer: what was remembered or forgotten, with 되돌리기.
 * @param {HTMLElement} node the answer's element @param {import("./api.js").MemoryEvent} event
 */
export function showMemorySaved(node, event) {
  const note = el("div", "memory-note");
  note.dataset.action = event.action;
  const key = /** @type {Record<string, string>} */ (SAVED_KEYS)[event.action] ?? "memoryAdded";
  note.append(el("span", "memory-note-label", t(key)));
  if (event.memory) note.append(el("q", "memory-note-text", event.memory.text));
  if (["added", "updated", "forgotten"].includes(event.action)) {
    const button = el("button", "button small-button memory-undo", t("memoryUndo"));
    button.setAttribute("type", "button");
    button.addEventListener("click", async () => {
      button.setAttribute("disabled", "");
      try {
        await undo(event);
        note.replaceChildren(el("span", "memory-note-label", t("memoryUndone")));
      } catch (error) {
        note.append(el("span", "memory-error", errorText(error)));
        button.removeAttribute("disabled");
      }
    });
    note.append(button);
  }
  node.querySelector(".message-body")?.after(note);
}

/**
 * "기억 N개 사용" under the answer, the texts on click.
 * @param {HTMLElement} node @param {{id: number, text: string}[]|undefined} used
 */
export function showMemoriesUsed(node, used) {
  node.querySelector(".memories-used")?.remove();
  if (!used?.length) return;
  const box = /** @type {HTMLDetailsElement} */ (el("details", "memories-used"));
  box.append(el("summary", "", t("memoriesUsed").replace("{n}", String(used.length))));
  const list = el("ul", "memories-used-list");
  for (const memory of used) list.append(el("li", "", memory.text));
  box.append(list);
  node.querySelector(".message-meta")?.after(box);
}

/**
 * 기억하기 on a message: its text (the first 300 characters) becomes a memory.
 * @param {string} text @param {(message: string) => void} showError
 */
export async function rememberText(text, showError) {
  const fact = text.replace(/\s+/g, " ").trim().slice(0, 300);
  try {
    const memory = await api.addMemory(fact);
    return /** @type {import("./api.js").Memory} */ (memory);
  } catch (error) {
    showError(errorText(error));
    return null;
  }
}

/**
 * The conversation's switch: no memories in this chat's prompts.
 * @param {() => string|null} currentSession @param {(message: string) => void} showError
 */
export function initMemorySwitch(currentSession, showError) {
  const box = /** @type {HTMLInputElement|null} */ (document.getElementById("memory-off"));
  const label = document.getElementById("memory-off-label");
  box?.addEventListener("change", async () => {
    const id = currentSession();
    if (!id) return;
    try {
      await api.setSessionMemory(id, box.checked);
    } catch (error) {
      box.checked = !box.checked;
      showError(errorText(error));
    }
  });
  return {
    /** The switch follows the open conversation, as the session list has it (hidden before a
     *  conversation exists). @param {string|null} id @param {boolean} off */
    show(id, off) {
      if (!box || !label) return;
      label.hidden = !id;
      box.checked = Boolean(id) && off;
    },
  };
}
