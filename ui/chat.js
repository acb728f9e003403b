// @ts-check
/** The conversation controller: current session, sending with streaming, Stop, restore. */
import { api, streamEvents } from "./api.js";
import { t } from "./i18n.js";
import { MessageView, clearMessages } from "./messages.js";
import { describeStatus, refreshStatus, showStreamState } from "./status.js";
import { addTurnControls } from "./turn-actions.js";

const SESSION_KEY = "aione.sessionId";

export class ChatController {
  /** @param {{onSessionsChanged: () => Promise<void>, setBusy: (busy: boolean) => void, showError: (m: string) => void, onUseImage: (id: string) => void, codeRunner: import("./code-runner.js").CodeRunner}} hooks */
  constructor(hooks) {
    this.hooks = hooks;
    /** @type {string[]} the images of the last message that had some: a follow-up may ask about them */
    this.lastImageIds = [];
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

  /**
   * Show a stored session's active branch; forget it if the server no longer has it.
   * @param {string|null} id @param {number|null} [focusTurn] a turn to scroll to and mark (a search hit)
   */
  async open(id, focusTurn = null) {
    this.stop();
    this.setSession(id);
    if (!id) {
      this.render(null, []);
      return;
    }
    try {
      let { session, turns } = await api.turns(id);
      if (focusTurn && !turns.some((/** @type {any} */ turn) => turn.id === focusTurn)) {
        ({ session, turns } = await api.branch(id, focusTurn)); // the hit is on another branch: show that one
      }
      this.render(session, turns);
      if (focusTurn) this.focusTurn(focusTurn);
    } catch (error) {
      this.render(null, []);
      if (/** @type {any} */ (error).status === 404) this.setSession(null);
      else this.hooks.showError(String(/** @type {any} */ (error).message ?? error));
    }
  }

  /** @param {any} session @param {any[]} turns */
  render(session, turns) {
    clearMessages();
    this.lastImageIds = [];
    /** @type {Map<number, MessageView>} */
    this.views = new Map();
    setTitle(session?.title ?? "");
    for (const turn of turns) {
      if (turn.kind === "image") {
        this.showImageTurn(turn);
        continue;
      }
      const view = new MessageView(turn.role, turn.text, (turn.images ?? []).map(imageUrl));
      view.setTurnId(turn.id);
      view.showEmotion(turn.labels);
      if (turn.role === "assistant") {
        view.showSources(turn.sources ?? []);
        view.finish(turn);
        this.hooks.codeRunner.decorate(view.node, turn.id, this.sessionId);
      }
      addTurnControls(view.node, turn, this.turnHandlers());
      this.views.set(turn.id, view);
      if (turn.images?.length) this.lastImageIds = turn.images;
    }
    showFollowUp(this.lastImageIds.length > 0);
    this.hooks.codeRunner.restore(this.sessionId); // the last run of each code block, under it
  }

  /** Whether an answer is streaming now (a new message would have to wait). */
  get busy() {
    return this.controller !== null;
  }

  /** What the controls under each turn do. @returns {import("./turn-actions.js").TurnHandlers} */
  turnHandlers() {
    return {
      onBranch: async (turnId) => {
        if (!this.sessionId || this.controller) return;
        const { session, turns } = await api.branch(this.sessionId, turnId);
        this.render(session, turns);
        this.focusTurn(turnId);
      },
      onRegenerate: (turnId) => this.answerAgain(turnId, null),
      onEdit: (turnId, text) => this.answerAgain(turnId, text),
      onRate: async (turnId, rating) => { await api.feedback(turnId, rating); },
    };
  }

  /** @param {number} turnId */
  focusTurn(turnId) {
    const node = document.querySelector(`.message[data-turn-id="${turnId}"]`);
    if (!node) return;
    node.scrollIntoView({ block: "center" });
    node.classList.add("focused");
    setTimeout(() => node.classList.remove("focused"), 2500);
  }

  /**
   * Regenerate an answer (`text` null) or send an edited message: the turns from there on are
   * replaced on screen by the new version, which streams like any answer.
   * @param {number} turnId @param {string|null} text
   */
  async answerAgain(turnId, text) {
    if (this.controller || !this.sessionId) return;
    const from = this.views?.get(turnId);
    if (!from) return;
    // regenerate keeps the question and replaces its answer; an edit replaces the message itself
    for (let node = /** @type {Element|null} */ (from.node); node;) {
      const next = node.nextElementSibling;
      node.remove();
      node = next;
    }
    if (text !== null) new MessageView("user", text);
    const answer = new MessageView("assistant");
    const body = text === null ? { regenerate: turnId, session_id: this.sessionId }
                               : { edit: turnId, message: text, session_id: this.sessionId };
    await this.runStream("/chat_stream_sse_fetch", body, answer, (event) => this.onAnswerEvent(event, answer));
    await this.reload();
    this.refreshBadges(answer);
  }

  /** Re-read the session (turn ids, alternatives, controls) after an answer ended. */
  async reload() {
    if (!this.sessionId) return;
    try {
      const { session, turns } = await api.turns(this.sessionId);
      this.render(session, turns);
    } catch { /* the stream's own error is already shown */ }
  }

  newChat() {
    this.open(null);
    this.hooks.onSessionsChanged();
  }

  stop() {
    this.controller?.abort();
    this.controller = null;
  }

  /**
   * @param {string} text
   * @param {{images?: string[], previews?: string[]}} [attached] data URLs to send, object URLs to show
   */
  async send(text, attached = {}) {
    const images = attached.images ?? [];
    const followUp = /** @type {HTMLInputElement|null} */ (document.getElementById("image-followup-check"));
    const imageIds = followUp?.checked && !followUp.closest("[hidden]") ? this.lastImageIds : [];
    new MessageView("user", text, attached.previews ?? []);
    const answer = new MessageView("assistant");
    const scope = /** @type {HTMLSelectElement|null} */ (document.getElementById("doc-scope"))?.value ?? "all";
    const body = { message: text, session_id: this.sessionId, images, image_ids: imageIds, doc_scope: scope };
    await this.runStream("/chat_stream_sse_fetch", body, answer, (event) => this.onAnswerEvent(event, answer));
    if (images.length) showFollowUp(true);
    if (answer.node.dataset.turnId) {
      await this.reload();
      this.refreshBadges(answer);
    }
  }

  /** @param {import("./api.js").ServerEvent} event @param {MessageView} answer */
  onAnswerEvent(event, answer) {
    if (event.type === "token") answer.append(event.text);
    else if (event.type === "sources") answer.showSources(event.sources);
    else if (event.type === "images") this.lastImageIds = event.ids;
    else if (event.type === "status" && event.state === "history_trimmed") answer.node.dataset.historyTrimmed = "1";
    else if (event.type === "status" && event.state === "no_documents_matched") answer.note(t("noDocumentMatched"));
    else if (event.type === "done") {
      answer.finish({ ...event, ...event.timings });
      if (event.turn_id != null) answer.setTurnId(event.turn_id);
    }
  }

  /**
   * Labels are made in the background after a turn is saved: fetch them a little later and
   * badge the answer and its question (found on screen by their turn ids).
   * @param {MessageView} answer
   */
  async refreshBadges(answer) {
    const sessionId = this.sessionId;
    const answerId = Number(answer.node.dataset.turnId);
    if (!sessionId || !answerId) return;
    for (const wait of [1500, 4000, 10000]) {
      await new Promise((resolve) => setTimeout(resolve, wait));
      if (this.sessionId !== sessionId) return;
      const turns = /** @type {any[]} */ ((await api.turns(sessionId).catch(() => ({ turns: [] }))).turns);
      for (const turn of turns) this.views?.get(turn.id)?.showEmotion(turn.labels);
      const at = turns.findIndex((turn) => turn.id === answerId);
      if (at < 0 || (turns[at].labels && turns.slice(0, at).every((turn) => turn.labels))) return;
    }
  }

  /**
   * The one stream runner of the page (chat and image generation): the session, queue and
   * model status, errors, Stop and the end are handled here; `onEvent` handles the rest.
   * @param {string} url @param {unknown} body @param {MessageView} answer
   * @param {(event: import("./api.js").ServerEvent) => void} onEvent
   */
  async runStream(url, body, answer, onEvent) {
    this.hooks.showError("");
    answer.setStatus("…");
    const controller = this.beginRequest();
    let ended = false;
    try {
      for await (const event of streamEvents(url, body, controller.signal)) {
        if (event.type === "session") this.takeSession(event.session_id);
        else if (event.type === "status") {
          showStreamState(event);
          if (!["ready", "generating", "history_trimmed", "no_documents_matched"].includes(event.state)) {
            answer.setStatus(describeStatus(event));
          }
        } else if (event.type === "error") answer.error(event.message);
        ended ||= event.type === "error" || event.type === "done";
        onEvent(event);
      }
      if (!ended) answer.finish({ finish_reason: "stopped" });
    } catch (error) {
      if (controller.signal.aborted) answer.finish({ finish_reason: "stopped" });
      else answer.error(String(/** @type {any} */ (error).message ?? error));
    } finally {
      this.endRequest(controller);
    }
  }

  /** The stream named its session (a new one when none was open). @param {string} id */
  takeSession(id) {
    const isNew = id !== this.sessionId;
    this.setSession(id);
    if (isNew) this.hooks.onSessionsChanged();
  }

  /** One request at a time: Stop aborts it. @returns {AbortController} */
  beginRequest() {
    const controller = new AbortController();
    this.controller = controller;
    this.hooks.setBusy(true);
    return controller;
  }

  /** @param {AbortController} controller */
  endRequest(controller) {
    if (this.controller === controller) this.controller = null;
    this.hooks.setBusy(false);
    showStreamState(null);
    refreshStatus();
    this.hooks.onSessionsChanged();
  }
}

/**
 * Image generation: a prompt and the controls' parameters in, progress and pictures out.
 * @this {ChatController} @param {string} prompt @param {Record<string, unknown>} params
 */
ChatController.prototype.generateImage = async function (prompt, params) {
  const request = new MessageView("user", prompt, params.init_image_id ? [imageUrl(String(params.init_image_id))] : []);
  request.node.classList.add("image-request");
  const answer = new MessageView("assistant");
  answer.node.classList.add("image-answer");
  try {
    await this.runStream("/api/images/generate", { ...params, session_id: this.sessionId }, answer, (event) => {
      if (event.type === "progress") {
        const batch = event.images > 1 ? ` · ${event.image}/${event.images}` : "";
        answer.setProgress(event.step, event.steps, `${t("imgProgress")} ${event.step}/${event.steps}${batch}`);
      } else if (event.type === "image") {
        // the stream carries the PNG itself: it shows at once, with no second request
        answer.addPicture({ id: event.id, src: `data:image/png;base64,${event.png_base64}`,
                            caption: `seed ${event.seed} · ${event.width}×${event.height}` }, this.hooks.onUseImage);
      } else if (event.type === "done") {
        answer.finish({ finish_reason: event.finish_reason, model: event.model });
      }
    });
  } finally {
    answer.clearProgress();
  }
};

/** A stored image-generation turn: the prompt, or the pictures it made. @this {ChatController} @param {any} turn */
ChatController.prototype.showImageTurn = function (turn) {
  if (turn.role === "user") {
    new MessageView("user", turn.text, (turn.images ?? []).map(imageUrl)).node.classList.add("image-request");
    return;
  }
  const view = new MessageView("assistant");
  view.node.classList.add("image-answer");
  for (const picture of turn.pictures ?? []) {
    const caption = picture.seed === undefined ? "" : `seed ${picture.seed} · ${picture.width}×${picture.height}`;
    view.addPicture({ id: picture.id, src: imageUrl(picture.id), caption }, this.hooks.onUseImage);
  }
  view.finish(turn);
};

/** @param {string} title */
export function setTitle(title) {
  const heading = document.getElementById("session-title");
  if (heading) heading.textContent = title || "PKC AI-ONE";
}

/** @param {string} id */
function imageUrl(id) {
  return `/api/images/${encodeURIComponent(id)}`;
}

/** @param {boolean} visible */
function showFollowUp(visible) {
  const chip = document.getElementById("image-followup");
  if (chip) chip.hidden = !visible;
}
