// @ts-check
/** The conversation controller: current session, sending with streaming, Stop, restore. */
import { api } from "./api.js";
import { MessageView, clearMessages } from "./messages.js";
import { streamEvents } from "./sse.js";
import { describeStatus, refreshStatus, showStreamState } from "./status.js";

const SESSION_KEY = "aione.sessionId";

export class ChatController {
  /** @param {{onSessionsChanged: () => Promise<void>, setBusy: (busy: boolean) => void, showError: (m: string) => void}} hooks */
  constructor(hooks) {
    this.hooks = hooks;
    /** @type {string|null} */
    this.sessionId = localStorage.getItem(SESSION_KEY);
    /** @type {AbortController|null} */
    this.controller = null;
  }

  /** @param {string|null} id */
  setSession(id) {
    this.sessionId = id;
    if (id) localStorage.setItem(SESSION_KEY, id);
    else localStorage.removeItem(SESSION_KEY);
  }

  /** Show a stored session's turns; forget it if the server no longer has it. @param {string|null} id */
  async open(id) {
    this.stop();
    clearMessages();
    this.setSession(id);
    setTitle("");
    if (!id) return;
    try {
      const { session, turns } = await api.turns(id);
      setTitle(session.title);
      for (const turn of turns) {
        const view = new MessageView(turn.role, turn.text);
        if (turn.role === "assistant") view.finish(turn);
      }
    } catch (error) {
      if (/** @type {any} */ (error).status === 404) this.setSession(null);
      else this.hooks.showError(String(/** @type {any} */ (error).message ?? error));
    }
  }

  newChat() {
    this.open(null);
    this.hooks.onSessionsChanged();
  }

  stop() {
    this.controller?.abort();
    this.controller = null;
  }

  /** @param {string} text */
  async send(text) {
    this.hooks.showError("");
    new MessageView("user", text);
    const answer = new MessageView("assistant");
    answer.setStatus("…");
    const controller = new AbortController();
    this.controller = controller;
    this.hooks.setBusy(true);
    /** @type {any} */
    let finished = null;
    try {
      for await (const frame of streamEvents("/chat_stream_sse_fetch", { message: text, session_id: this.sessionId }, controller.signal)) {
        if (frame.type === "session") {
          const isNew = frame.session_id !== this.sessionId;
          this.setSession(frame.session_id);
          if (isNew) this.hooks.onSessionsChanged();
        } else if (frame.type === "status") {
          showStreamState(frame);
          if (frame.state === "history_trimmed") answer.node.dataset.historyTrimmed = "1";
          else if (!["ready", "generating"].includes(frame.state)) answer.setStatus(describeStatus(frame));
        } else if (frame.type === "token") {
          answer.append(frame.text);
        } else if (frame.type === "error") {
          answer.error(frame.message);
          finished = frame;
        } else if (frame.type === "done") {
          finished = frame;
          answer.finish({ ...frame, ...frame.timings });
        }
      }
      if (!finished) answer.finish({ finish_reason: "stopped" });
    } catch (error) {
      if (controller.signal.aborted) answer.finish({ finish_reason: "stopped" });
      else answer.error(String(/** @type {any} */ (error).message ?? error));
    } finally {
      if (this.controller === controller) this.controller = null;
      this.hooks.setBusy(false);
      showStreamState(null);
      refreshStatus();
      this.hooks.onSessionsChanged();
    }
  }
}

/** @param {string} title */
export function setTitle(title) {
  const heading = document.getElementById("session-title");
  if (heading) heading.textContent = title || "PKC AI-ONE";
}
