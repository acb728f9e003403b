// @ts-check
/** The conversation controller: current session, sending with streaming, Stop, restore. */
import { api, streamEvents } from "./api.js";
import { t } from "./i18n.js";
import { MessageView, clearMessages } from "./messages.js";
import { describeStatus, refreshStatus, showStreamState } from "./status.js";

const SESSION_KEY = "aione.sessionId";

export class ChatController {
  /** @param {{onSessionsChanged: () => Promise<void>, setBusy: (busy: boolean) => void, showError: (m: string) => void, onUseImage: (id: string) => void}} hooks */
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

  /** Show a stored session's turns; forget it if the server no longer has it. @param {string|null} id */
  async open(id) {
    this.stop();
    clearMessages();
    this.lastImageIds = [];
    showFollowUp(false);
    this.setSession(id);
    setTitle("");
    if (!id) return;
    try {
      const { session, turns } = await api.turns(id);
      setTitle(session.title);
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
        }
        if (turn.images?.length) this.lastImageIds = turn.images;
      }
      showFollowUp(this.lastImageIds.length > 0);
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

  /**
   * @param {string} text
   * @param {{images?: string[], previews?: string[]}} [attached] data URLs to send, object URLs to show
   */
  async send(text, attached = {}) {
    const images = attached.images ?? [];
    const followUp = /** @type {HTMLInputElement|null} */ (document.getElementById("image-followup-check"));
    const imageIds = followUp?.checked && !followUp.closest("[hidden]") ? this.lastImageIds : [];
    const question = new MessageView("user", text, attached.previews ?? []);
    const answer = new MessageView("assistant");
    const scope = /** @type {HTMLSelectElement|null} */ (document.getElementById("doc-scope"))?.value ?? "all";
    const body = { message: text, session_id: this.sessionId, images, image_ids: imageIds, doc_scope: scope };
    await this.runStream("/chat_stream_sse_fetch", body, answer, (event) => {
      if (event.type === "token") answer.append(event.text);
      else if (event.type === "sources") answer.showSources(event.sources);
      else if (event.type === "images") this.lastImageIds = event.ids;
      else if (event.type === "status" && event.state === "history_trimmed") answer.node.dataset.historyTrimmed = "1";
      else if (event.type === "status" && event.state === "no_documents_matched") answer.note(t("noDocumentMatched"));
      else if (event.type === "done") {
        answer.finish({ ...event, ...event.timings });
        if (event.turn_id != null) answer.setTurnId(event.turn_id);
      }
    });
    if (images.length) showFollowUp(true);
    this.refreshBadges(question, answer);
  }

  /**
   * Labels are made in the background after a turn is saved: fetch them a little later and
   * badge the question and its answer.
   * @param {MessageView} question @param {MessageView} answer
   */
  async refreshBadges(question, answer) {
    const sessionId = this.sessionId;
    const answerId = Number(answer.node.dataset.turnId);
    if (!sessionId || !answerId) return;
    for (const wait of [1500, 4000, 10000]) {
      await new Promise((resolve) => setTimeout(resolve, wait));
      if (this.sessionId !== sessionId) return;
      const turns = /** @type {any[]} */ ((await api.turns(sessionId).catch(() => ({ turns: [] }))).turns);
      const at = turns.findIndex((turn) => turn.id === answerId);
      if (at < 0) return;
      const asked = turns.slice(0, at).reverse().find((turn) => turn.role === "user");
      if (asked) {
        question.setTurnId(asked.id);
        question.showEmotion(asked.labels);
      }
      answer.showEmotion(turns[at].labels);
      if (turns[at].labels && (!asked || asked.labels)) return;
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
