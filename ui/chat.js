// @ts-check
/** The conversation controller: the open session, sending with streaming, Stop, restore.
 *  After an answer the page patches itself from the stream's events (the saved turns' ids and
 *  places in the tree) instead of re-reading the session; labels arrive by one waiting request. */
import { api, streamEvents } from "./api.js";
import { errorText, t } from "./i18n.js";
import { generateImage, showImageTurn } from "./image-turns.js";
import { MessageView, clearMessages } from "./messages.js";
import { pageState } from "./state.js";
import { describeStatus, showStreamState, streamEnded } from "./status.js";
import { showMemoriesUsed, showMemorySaved } from "./memory-notes.js";
import { addTurnControls } from "./turn-actions.js";
import { imageUrl } from "./urls.js";

const LABEL_WAIT_S = 15; // how long a labels request may wait for the background labeller (the server's most)
const LABEL_TRIES = 3; // a cold start (the classifiers loading) may take longer than one wait

/**
 * @typedef {{onStreamEnd: (kind: "chat"|"image") => Promise<void>, onSessionsChanged: () => Promise<void>,
 *            setBusy: (busy: boolean) => void, showError: (m: string) => void, onUseImage: (id: string) => void,
 *            codeRunner: import("./code-runner.js").CodeRunner, analysis: boolean,
 *            composerOptions: () => {docScope: string, followUp: boolean, tools: string[], allowRunPython: boolean},
 *            onSessionChanged: (id: string|null) => void, showFollowUp: (visible: boolean) => void,
 *            imageParams: (prompt: string) => any,
 *            onContext: (state: any) => void, onShown: () => void, personaForNew: () => string,
 *            onRemember: (text: string, node: HTMLElement) => void}} ChatHooks
 */

export class ChatController {
  /** @param {ChatHooks} hooks */
  constructor(hooks) {
    this.hooks = hooks;
    /** @type {string[]} the images of the last message that had some: a follow-up may ask about them */
    this.lastImageIds = [];
    /** @type {AbortController|null} */
    this.controller = null;
    /** @type {Map<number, MessageView>} the messages on screen by turn id */
    this.views = new Map();
    /** @type {string[]} pictures the model asked for with generate_image: drawn after its answer */
    this.toDraw = [];
  }

  /** @returns {string|null} */
  get sessionId() {
    return pageState.sessionId;
  }

  /** @param {string|null} id */
  setSession(id) {
    pageState.setSession(id);
    this.hooks.onSessionChanged(id);
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
      else this.hooks.showError(errorText(error));
    }
  }

  /** @param {any} session @param {any[]} turns */
  render(session, turns) {
    clearMessages();
    this.lastImageIds = [];
    this.views = new Map();
    pageState.setPath(turns);
    setTitle(session?.title ?? "");
    for (const turn of turns) {
      if (turn.kind === "image") {
        this.views.set(turn.id, showImageTurn(this, turn));
        continue;
      }
      const view = new MessageView(turn.role, turn.text, (turn.images ?? []).map(imageUrl)).show();
      view.setTurnId(turn.id);
      view.showEmotion(turn.labels);
      if (turn.role === "assistant") {
        view.showSources(turn.sources ?? []);
        view.toolSteps().restore(turn.sources ?? []);
        view.finish(turn);
        showMemoriesUsed(view.node, (turn.sources ?? []).filter((/** @type {any} */ s) => s.type === "memory"));
        this.hooks.codeRunner.decorate(view.node, turn.id, this.sessionId);
      }
      addTurnControls(view.node, turn, this.turnHandlers());
      this.views.set(turn.id, view);
      if (turn.images?.length) this.lastImageIds = turn.images;
    }
    this.hooks.showFollowUp(this.lastImageIds.length > 0);
    this.hooks.codeRunner.restore(this.sessionId); // the last run of each code block, under it
    this.hooks.onShown(); // the context meter and where the model's window starts
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
      onRemember: (turnId) => {
        const view = this.views.get(turnId);
        if (view) this.hooks.onRemember(view.text, view.node);
      },
    };
  }

  /** @param {number} turnId */
  focusTurn(turnId) {
    const node = this.views.get(turnId)?.node;
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
    const kept = text === null ? this.questionOf(from) : null; // a regenerated answer keeps its question
    // regenerate keeps the question and replaces its answer; an edit replaces the message itself:
    // the branch on show from this turn on leaves the screen (the page state knows which turns)
    const at = pageState.path.findIndex((turn) => turn.id === turnId);
    for (const turn of pageState.path.slice(at)) {
      this.views.get(turn.id)?.node.remove();
      this.views.delete(turn.id);
    }
    document.querySelector(".window-marker")?.remove();
    const question = text !== null ? new MessageView("user", text).show() : kept;
    const answer = new MessageView("assistant").show();
    const body = text === null ? { regenerate: turnId, session_id: this.sessionId }
                               : { edit: turnId, message: text, session_id: this.sessionId };
    await this.runStream("/chat_stream_sse_fetch", body, answer, (event) => this.onAnswerEvent(event, question, answer));
    await this.afterAnswer(question, answer);
  }

  /** The question an answer on screen replied to (the turn before it on the branch). @param {MessageView} answer */
  questionOf(answer) {
    const at = pageState.path.findIndex((turn) => turn.id === answer.turnId);
    return at > 0 ? this.views.get(pageState.path[at - 1].id) ?? null : null;
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
    const options = this.hooks.composerOptions();
    const imageIds = options.followUp ? this.lastImageIds : [];
    const question = new MessageView("user", text, attached.previews ?? []).show();
    const answer = new MessageView("assistant").show();
    const body = { message: text, session_id: this.sessionId, images, image_ids: imageIds, doc_scope: options.docScope,
                   ...(this.sessionId ? {} : { persona_id: this.hooks.personaForNew() }),
                   ...(images.length || imageIds.length ? {} : { tools: options.tools, allow_run_python: options.allowRunPython }) };
    this.toDraw = [];
    await this.runStream("/chat_stream_sse_fetch", body, answer, (event) => this.onAnswerEvent(event, question, answer));
    if (images.length) this.hooks.showFollowUp(true);
    await this.afterAnswer(question, answer);
    for (const prompt of this.toDraw.splice(0)) await generateImage(this, prompt, this.hooks.imageParams(prompt));
  }

  /**
   * The answer ended: its code blocks get Run, the sidebar its new order, and the labels
   * (made in the background) one request that waits for them. Nothing else is re-read.
   * @param {MessageView|null} question @param {MessageView} answer
   */
  async afterAnswer(question, answer) {
    const sessionId = this.sessionId;
    const answerId = answer.turnId;
    if (answerId) this.hooks.codeRunner.decorate(answer.node, answerId, sessionId);
    await this.hooks.onStreamEnd("chat");
    const ids = /** @type {number[]} */ ([question?.turnId, answerId].filter(Boolean));
    if (!sessionId || !answerId || !this.hooks.analysis) return;
    for (let attempt = 0; attempt < LABEL_TRIES; attempt += 1) { // one request, unless the labeller is slow
      const labels = await api.labels(sessionId, ids, LABEL_WAIT_S).catch(() => null);
      if (!labels || this.sessionId !== sessionId) return;
      for (const id of ids) this.views.get(id)?.showEmotion(labels[String(id)] ?? null);
      if (ids.every((id) => labels[String(id)])) return;
    }
  }

  /**
   * A saved turn's place in the tree (from the stream): its id, and the ‹ n/m › controls
   * between its alternatives, drawn without asking the server.
   * @param {MessageView} view @param {import("./api.js").Placement} placed
   */
  place(view, placed) {
    const turn = pageState.place({ ...placed, text: view.text });
    view.setTurnId(turn.id);
    this.views.set(turn.id, view);
    addTurnControls(view.node, turn, this.turnHandlers());
  }

  /** @param {import("./api.js").ServerEvent} event @param {MessageView|null} question @param {MessageView} answer */
  onAnswerEvent(event, question, answer) {
    if (event.type === "turn" && question) this.place(question, event);
    else if (event.type === "token") answer.append(event.text);
    else if (event.type === "sources") answer.showSources(event.sources);
    else if (event.type === "tool_call") {
      answer.toolSteps().call(event);
    }
    else if (event.type === "tool_confirm") answer.toolSteps().confirm(event);
    else if (event.type === "tool_result") {
      answer.toolSteps().result(event);
      if (event.ok && event.page?.draw) this.toDraw.push(String(event.page.draw)); // a page tool's work, said by the server
    }
    else if (event.type === "images") this.lastImageIds = event.ids;
    else if (event.type === "memory") showMemorySaved(answer.node, event);
    else if (event.type === "status" && event.state === "history_trimmed") answer.node.dataset.historyTrimmed = "1";
    else if (event.type === "status" && event.state === "no_documents_matched") answer.note(t("noDocumentMatched"));
    else if (event.type === "done") {
      answer.finish({ ...event, ...event.timings });
      if (event.answer) this.place(answer, event.answer);
      else if (event.turn_id != null) answer.setTurnId(event.turn_id);
      if (event.context) this.hooks.onContext(event.context);
      showMemoriesUsed(answer.node, event.memories_used);
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
        } else if (event.type === "error") answer.error(errorText(event));
        ended ||= event.type === "error" || event.type === "done";
        onEvent(event);
      }
      if (!ended) answer.finish({ finish_reason: "stopped" });
    } catch (error) {
      if (controller.signal.aborted) answer.finish({ finish_reason: "stopped" });
      else answer.error(errorText(error));
    } finally {
      this.endRequest(controller);
    }
  }

  /** The stream named its session (a new one when none was open; the sidebar learns of it at
   *  the end). @param {string} id */
  takeSession(id) {
    if (id !== this.sessionId) this.setSession(id);
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
    streamEnded();
  }
}

/** @param {string} title */
export function setTitle(title) {
  const heading = document.getElementById("session-title");
  if (heading) heading.textContent = title || "PKC AI-ONE";
}
