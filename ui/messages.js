// @ts-check
/** The message list: user and assistant bubbles, streamed text, per-answer status and meta. */
import { t } from "./i18n.js";
import { ToolSteps } from "./tool-steps.js";
import { emotionInfo } from "./labels.js";
import { MarkdownView } from "./markdown.js";
import { imageUrl } from "./urls.js";

const list = () => /** @type {HTMLElement} */ (document.getElementById("messages"));
const emptyState = () => /** @type {HTMLElement} */ (document.getElementById("empty-state"));

export function clearMessages() {
  list().replaceChildren();
  emptyState().hidden = false;
}

/** @typedef {{finish_reason?: string|null, tokens_per_s?: number|null, ttft_ms?: number|null, model?: string|null, dropped_turns?: number}} TurnMeta */

export class MessageView {
  /**
   * @param {"user"|"assistant"} role
   * @param {string} text
   * @param {string[]} images sources: the page's own object URLs, or /api/images/<id> from the server
   */
  constructor(role, text = "", images = []) {
    this.role = role;
    this.text = text;
    /** @type {number|null} the stored turn, once saved */
    this.turnId = null;
    this.node = document.createElement("article");
    this.node.className = `message ${role}`;
    this.node.dataset.role = role;
    const who = document.createElement("div");
    who.className = "message-role";
    who.textContent = role === "user" ? t("you") : t("assistant");
    this.who = who;
    this.body = document.createElement("div");
    this.body.className = "message-body";
    this.statusLine = document.createElement("div");
    this.statusLine.className = "message-status";
    this.statusLine.hidden = true;
    this.meta = document.createElement("div");
    this.meta.className = "message-meta";
    this.node.append(who, this.statusLine);
    if (images.length) {
      const gallery = document.createElement("div");
      gallery.className = "message-images";
      for (const src of images) {
        const img = document.createElement("img");
        img.src = src;
        img.alt = "";
        img.loading = "lazy";
        gallery.appendChild(img);
      }
      this.node.appendChild(gallery);
    }
    this.node.append(this.body, this.meta);
    this.pending = 0; // the animation frame of a re-render waiting to happen
    this.markdown = new MarkdownView(this.body);
    /** @type {ToolSteps|undefined} */
    this.steps = undefined;
    this.render();
  }

  /** Put the message at the end of the conversation on screen. @returns {this} */
  show() {
    emptyState().hidden = true;
    list().appendChild(this.node);
    this.scroll();
    return this;
  }

  /** @param {boolean} [streaming] only the unfinished last block is drawn again */
  render(streaming = false) {
    if (this.role === "user") this.body.textContent = this.text; // the user's text is shown as typed
    else if (streaming) this.markdown.stream(this.text);
    else this.markdown.finish(this.text);
  }

  /** Add streamed text; re-render at most once per animation frame. @param {string} piece */
  append(piece) {
    this.text += piece;
    this.setStatus("");
    if (this.pending) return;
    this.pending = requestAnimationFrame(() => {
      this.pending = 0;
      this.render(true);
      this.scroll();
    });
  }

  /** @param {string} text */
  setStatus(text) {
    this.statusLine.textContent = text;
    this.statusLine.hidden = !text;
    this.node.classList.toggle("waiting", Boolean(text));
  }

  /** @param {TurnMeta} meta */
  finish(meta) {
    if (this.pending) cancelAnimationFrame(this.pending); // a late frame would redraw over what is added now
    this.pending = 0;
    this.render();
    this.setStatus("");
    const bits = [];
    const reason = meta.finish_reason;
    if (reason === "stopped") bits.push(t("finishStopped"));
    if (reason === "error") bits.push(t("finishError"));
    if (reason === "trimmed") bits.push(t("finishTrimmed"));
    if (reason === "interrupted" || reason === "streaming") bits.push(t("finishInterrupted"));
    if (meta.dropped_turns) bits.push(t("historyTrimmed"));
    if (meta.tokens_per_s) bits.push(`${meta.tokens_per_s.toFixed(1)} tok/s`);
    if (meta.ttft_ms) bits.push(`TTFT ${Math.round(meta.ttft_ms)} ms`);
    this.meta.textContent = bits.join(" · ");
    this.node.dataset.finish = reason ?? "";
  }

  /**
   * The document passages the answer used: name, page, and the passage on click.
   * @param {{n: number, name: string, page: number|null, ocr?: boolean, snippet: string, type?: string}[]} sources
   */
  showSources(sources) {
    this.node.querySelector(".sources")?.remove();
    sources = sources.filter((source) => !source.type); // tool steps and memories are shown on their own
    if (!sources.length) return;
    const box = document.createElement("div");
    box.className = "sources";
    const title = document.createElement("div");
    title.className = "sources-title";
    title.textContent = t("sources");
    box.appendChild(title);
    for (const source of sources) {
      const details = document.createElement("details");
      details.className = "source";
      const summary = document.createElement("summary");
      const where = [source.page ? `${source.page}${t("page")}` : "", source.ocr ? "OCR" : ""].filter(Boolean).join(", ");
      summary.textContent = `[${source.n}] ${source.name}${where ? ` (${where})` : ""}`;
      const passage = document.createElement("p");
      passage.className = "source-passage";
      passage.textContent = source.snippet; // document text: untrusted, text only
      details.append(summary, passage);
      box.appendChild(details);
    }
    this.node.insertBefore(box, this.meta);
  }

  /** The answer's tool steps (made on first use). @returns {ToolSteps} */
  toolSteps() {
    this.steps ??= new ToolSteps(this.node, this.body);
    return this.steps;
  }

  /** A progress bar with the step count (image generation). @param {number} step @param {number} steps @param {string} label */
  setProgress(step, steps, label) {
    let bar = /** @type {HTMLProgressElement|null} */ (this.node.querySelector("progress.image-progress"));
    let text = /** @type {HTMLElement|null} */ (this.node.querySelector(".image-progress-text"));
    if (!bar || !text) {
      bar = document.createElement("progress");
      bar.className = "image-progress";
      text = document.createElement("span");
      text.className = "image-progress-text";
      this.node.insertBefore(text, this.body);
      this.node.insertBefore(bar, text);
    }
    bar.max = steps;
    bar.value = step;
    text.textContent = label;
    this.setStatus("");
  }

  clearProgress() {
    this.node.querySelector("progress.image-progress")?.remove();
    this.node.querySelector(".image-progress-text")?.remove();
  }

  /**
   * A generated picture with its download link and "use as input" button.
   * @param {{id: string, src: string, caption: string}} picture @param {(id: string) => void} onUse
   */
  addPicture(picture, onUse) {
    let box = this.node.querySelector(".message-images");
    if (!box) {
      box = document.createElement("div");
      box.className = "message-images generated";
      this.node.insertBefore(box, this.body);
    }
    const figure = document.createElement("figure");
    figure.className = "picture";
    figure.dataset.imageId = picture.id;
    const img = document.createElement("img");
    img.src = picture.src;
    img.alt = picture.caption;
    const bar = document.createElement("figcaption");
    const caption = document.createElement("span");
    caption.textContent = picture.caption;
    const download = document.createElement("a");
    download.className = "button small-button";
    download.href = imageUrl(picture.id, true);
    download.textContent = t("imgDownload");
    const use = document.createElement("button");
    use.type = "button";
    use.className = "button small-button";
    use.textContent = t("imgUseAsInput");
    use.addEventListener("click", () => onUse(picture.id));
    bar.append(caption, download, use);
    figure.append(img, bar);
    box.appendChild(figure);
    this.scroll();
  }

  /** The stored turn this view shows (labels and later actions find it by id). @param {number} id */
  setTurnId(id) {
    this.turnId = id;
    this.node.dataset.turnId = String(id); // for the page's own links (search hits, run restore) and tests
  }

  /**
   * The turn's emotion as a small badge (hidden by the "hide-emotion-badges" body class).
   * @param {{emotion?: string|null, emotion_score?: number|null, emotion_model?: string|null, intent?: string|null}|null|undefined} labels
   */
  showEmotion(labels) {
    this.who.querySelector(".emotion-badge")?.remove();
    if (!labels?.emotion) return;
    const info = emotionInfo(labels.emotion);
    const badge = document.createElement("span");
    badge.className = "emotion-badge";
    badge.dataset.emotion = labels.emotion;
    badge.textContent = `${info.emoji} ${info.name}`;
    const score = labels.emotion_score == null ? "" : ` ${Math.round(labels.emotion_score * 100)}%`;
    badge.title = `${t("emotionLabel")}: ${info.name}${score} · ${labels.emotion_model ?? ""}`;
    this.who.appendChild(badge);
  }

  /** @param {string} text */
  note(text) {
    const note = document.createElement("div");
    note.className = "message-note";
    note.textContent = text;
    this.node.insertBefore(note, this.meta);
  }

  /** @param {string} message */
  error(message) {
    const box = document.createElement("div");
    box.className = "message-error";
    box.textContent = `${t("errorPrefix")}: ${message}`;
    this.node.appendChild(box);
    this.finish({ finish_reason: "error" });
  }

  scroll() {
    const chat = document.getElementById("chat");
    if (chat) chat.scrollTop = chat.scrollHeight;
  }
}
