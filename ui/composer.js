// @ts-check
/**
 * The message box. Enter sends, Shift+Enter breaks the line, and Enter while an IME
 * (Hangul) syllable is still composing never sends: the IME needs that Enter to commit it.
 */
import { byId } from "./dom.js";

/** @param {{onSend: (text: string) => void, onStop: () => void, hasAttachments?: () => boolean}} handlers */
export function initComposer({ onSend, onStop, hasAttachments = () => false }) {
  const input = /** @type {HTMLTextAreaElement} */ (byId("chat-input"));
  let busy = false;

  const autosize = () => {
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, 200)}px`;
  };
  input.addEventListener("input", autosize);
  const submit = () => {
    const text = input.value.trim() || (hasAttachments() ? "?" : "");  // an image alone asks "what is this?"
    if (!text || busy) return;
    input.value = "";
    autosize();
    onSend(text);
  };
  sendOnEnter(input, submit);
  byId("chat-form").addEventListener("submit", (event) => { event.preventDefault(); submit(); });
  byId("stop-button").addEventListener("click", () => onStop());

  return {
    /** @param {boolean} value */
    setBusy(value) {
      busy = value;
      byId("send-button").hidden = value;
      byId("stop-button").hidden = !value;
    },
    /** @param {string} message */
    showError(message) {
      const errorBox = byId("composer-error");
      errorBox.textContent = message;
      errorBox.hidden = !message;
    },
    focus() { input.focus(); },
    /** What the options under the box say now: which documents may answer, and whether the
     *  last message's images are asked about again. */
    options() {
      const scope = /** @type {HTMLSelectElement|null} */ (document.getElementById("doc-scope"));
      const chip = document.getElementById("image-followup");
      const followUp = /** @type {HTMLInputElement|null} */ (document.getElementById("image-followup-check"));
      return { docScope: scope?.value ?? "all", followUp: Boolean(followUp?.checked && chip && !chip.hidden) };
    },
    /** @param {boolean} visible */
    showFollowUp(visible) {
      const chip = document.getElementById("image-followup");
      if (chip) chip.hidden = !visible;
    },
  };
}

/** Enter sends, Shift+Enter breaks the line, and never while the IME composes a syllable.
 * @param {HTMLTextAreaElement} input @param {() => void} submit */
function sendOnEnter(input, submit) {
  let composing = false;
  input.addEventListener("compositionstart", () => { composing = true; });
  input.addEventListener("compositionend", () => { composing = false; });
  input.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" || event.shiftKey) return;
    // keyCode 229 is what some browsers report for keys that go to the IME.
    if (event.isComposing || composing || event.keyCode === 229) return;
    event.preventDefault();
    submit();
  });
}
