// @ts-check
/**
 * Run buttons on the Python code blocks of answers: a small editor, output streamed below the
 * block, Stop, the pictures the code drew, and "send the result to the model". The code runs in
 * the server's sandbox (sandbox/runs.py); where it cannot run, the button is off with the reason.
 */
import { api, streamEvents } from "./api.js";
import { el } from "./dom.js";
import { errorText, t } from "./i18n.js";
import { imageUrl } from "./urls.js";

const RUNNABLE = new Set(["python", "py", "python3"]);
const RESULT_CHARS = 4000; // of each stream, in the message sent to the model

/**
 * @typedef {{enabled: boolean, isolation: string, reason: string}} SandboxConfig
 * @typedef {{exit_code: number|null, timed_out: boolean, killed: boolean, reason: string|null, duration_ms: number,
 *            images: {url?: string, id?: string, name: string, png_base64?: string}[]}} RunEnd
 * @typedef {{decorate: (node: Element, turnId: number, sessionId: string|null) => void,
 *            restore: (sessionId: string|null) => Promise<void>}} CodeRunner
 */

/**
 * @param {{sandbox: SandboxConfig|null|undefined, onSendResult: (text: string) => void}} options
 * @returns {CodeRunner}
 */
export function initCodeRunner({ sandbox, onSendResult }) {
  const config = sandbox ?? { enabled: false, isolation: "unavailable", reason: "" };
  /** @type {Map<string, CodeBlockRunner>} the runnable blocks on screen, by answer and block */
  const runners = new Map();
  return {
    decorate(node, turnId, sessionId) {
      for (const [key, runner] of runners) if (!runner.block.isConnected) runners.delete(key); // answered again, or another chat
      node.querySelectorAll(".code-block").forEach((block, index) => {
        const lang = /** @type {HTMLElement} */ (block).dataset.lang?.toLowerCase() ?? "";
        if (!RUNNABLE.has(lang) || runners.get(`${turnId}:${index}`)?.block === block) return;
        runners.set(`${turnId}:${index}`, new CodeBlockRunner(/** @type {HTMLElement} */ (block), { turnId, index,
          sessionId }, config, onSendResult));
      });
    },
    async restore(sessionId) {
      if (!sessionId || !config.enabled) return;
      const { runs } = await api.get(`/api/sandbox/runs?session_id=${encodeURIComponent(sessionId)}`)
        .catch(() => ({ runs: [] }));
      for (const run of runs) { // oldest first: the latest run of a block is the one left on show
        if (run.block !== null && run.block !== undefined) {
          runners.get(`${run.turn_id}:${run.block}`)?.showStored(run);
          continue;
        }
        for (const [key, runner] of runners) { // a run saved before runs knew their block: by its code
          if (key.startsWith(`${run.turn_id}:`) && runner.code() === run.code) runner.showStored(run);
        }
      }
    },
  };
}

/** Run, as the sandbox allows: off (saying why), unisolated (saying so), or isolated.
 * @param {SandboxConfig} config @param {() => void} onRun */
function runButton(config, onRun) {
  const run = button("run-button", `▶ ${t("codeRun")}`, onRun);
  if (!config.enabled) {
    run.disabled = true;
    run.title = `${t("codeRunOff")}: ${config.reason}`;
  } else if (config.isolation === "unisolated") { // the user's explicit, unsafe choice: say so on the button
    run.textContent = `⚠ ${t("codeRun")}`;
    run.classList.add("unisolated");
    run.title = config.reason;
  } else {
    run.title = `${t("codeRunIsolation")}: ${config.isolation}`;
  }
  return run;
}

class CodeBlockRunner {
  /**
   * @param {HTMLElement} block @param {{turnId: number, index: number, sessionId: string|null}} place
   *   the answer it is in, which of its code blocks, and the conversation
   * @param {SandboxConfig} config @param {(text: string) => void} onSendResult
   */
  constructor(block, place, config, onSendResult) {
    this.block = block;
    this.turnId = place.turnId;
    this.index = place.index;
    this.sessionId = place.sessionId;
    this.onSendResult = onSendResult;
    this.original = block.querySelector("pre code")?.textContent ?? "";
    /** @type {HTMLTextAreaElement|null} */
    this.editor = null;
    /** @type {string|null} */
    this.runId = null;
    /** @type {{stdout: string, stderr: string, code: string, end: RunEnd|null}} */
    this.last = { stdout: "", stderr: "", code: "", end: null };

    const bar = /** @type {HTMLElement} */ (block.querySelector(".code-bar"));
    const tools = el("span", "code-tools");
    this.editButton = button("edit-code-button", t("codeEdit"), () => this.toggleEditor());
    this.runButton = runButton(config, () => this.run());
    const copy = bar.querySelector(".copy-button");
    tools.append(this.editButton, this.runButton);
    if (copy) tools.appendChild(copy);
    bar.appendChild(tools);

    this.panel = el("div", "run-panel");
    this.panel.hidden = true;
    this.status = el("div", "run-status");
    this.output = el("div", "run-output"); // not a <pre>: the block's own code stays its only one
    this.pictures = el("div", "run-images");
    const actions = el("div", "run-actions");
    this.stopButton = button("run-stop", t("codeStop"), () => this.stop());
    this.stopButton.hidden = true;
    this.sendButton = button("run-send", t("codeSendResult"), () => this.onSendResult(this.resultMessage()));
    this.sendButton.hidden = true;
    actions.append(this.stopButton, this.sendButton);
    this.panel.append(this.status, this.output, this.pictures, actions);
    block.appendChild(this.panel);
  }

  /** The code a run would send: the editor's text when it is open. */
  code() {
    return this.editor ? this.editor.value : this.original;
  }

  toggleEditor() {
    const pre = /** @type {HTMLElement} */ (this.block.querySelector("pre"));
    if (this.editor) {
      this.editor.remove();
      this.editor = null;
      pre.hidden = false;
      this.editButton.textContent = t("codeEdit");
      return;
    }
    this.editor = document.createElement("textarea");
    this.editor.className = "code-editor";
    this.editor.spellcheck = false;
    this.editor.value = this.original;
    this.editor.rows = Math.min(24, this.original.split("\n").length + 1);
    this.editor.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); this.run(); }
    });
    pre.hidden = true;
    pre.after(this.editor);
    this.editButton.textContent = t("codeEditClose");
    this.editor.focus();
  }

  async run() {
    if (this.runButton.disabled) return;
    const code = this.code();
    if (!code.trim()) return;
    this.reset(code);
    this.runButton.disabled = true;
    this.stopButton.hidden = false;
    this.status.textContent = t("codeStarting");
    const body = { code, language: "python", session_id: this.sessionId, turn_id: this.turnId, block: this.index };
    try {
      for await (const event of streamEvents("/api/sandbox/run", body)) {
        const e = /** @type {any} */ (event);
        if (e.type === "status" && e.state === "queued") this.status.textContent = `${t("codeQueued")} (${e.position})`;
        else if (e.type === "run") { this.runId = e.run_id; this.status.textContent = t("codeRunning"); }
        else if (e.type === "stdout" || e.type === "stderr") this.write(e.type, e.text);
        else if (e.type === "exit") this.end(e);
        else if (e.type === "error") this.status.textContent = `${t("errorPrefix")}: ${errorText(e)}`;
      }
    } catch (error) {
      this.status.textContent = `${t("errorPrefix")}: ${errorText(error)}`;
    } finally {
      this.runId = null;
      this.runButton.disabled = false;
      this.stopButton.hidden = true;
    }
  }

  async stop() {
    if (!this.runId) return;
    this.stopButton.disabled = true;
    try {
      await api.post(`/api/sandbox/runs/${encodeURIComponent(this.runId)}/stop`, {});
    } catch { /* it ended on its own meanwhile */ }
    this.stopButton.disabled = false;
  }

  /** @param {string} code */
  reset(code) {
    this.last = { stdout: "", stderr: "", code, end: null };
    this.panel.hidden = false;
    this.output.replaceChildren();
    this.pictures.replaceChildren();
    this.sendButton.hidden = true;
  }

  /** @param {"stdout"|"stderr"} stream @param {string} text */
  write(stream, text) {
    this.last[stream] += text;
    const previous = this.output.lastElementChild;
    if (previous?.className === stream) {
      previous.textContent += text; // one span per stretch of one stream
    } else {
      const span = document.createElement("span");
      span.className = stream;
      span.textContent = text; // the program's output: text only, never markup
      this.output.appendChild(span);
    }
    this.output.scrollTop = this.output.scrollHeight;
  }

  /** @param {RunEnd} end */
  end(end) {
    this.last.end = end;
    this.status.textContent = describeEnd(end);
    this.status.dataset.outcome = end.exit_code === 0 && !end.reason ? "ok" : "failed";
    for (const picture of end.images ?? []) {
      const img = document.createElement("img");
      img.src = picture.url ?? `data:image/png;base64,${picture.png_base64}`; // inline when it could not be stored
      img.alt = picture.name;
      img.title = picture.name;
      this.pictures.appendChild(img);
    }
    if (!this.last.stdout && !this.last.stderr) this.output.textContent = t("codeNoOutput");
    this.sendButton.hidden = false;
  }

  /** A run stored earlier (the session reopened); an edited run shows its code in the editor. @param {any} run */
  showStored(run) {
    if (run.code !== this.original && !this.editor) this.toggleEditor();
    if (this.editor) {
      this.editor.value = run.code;
      this.editor.rows = Math.min(24, run.code.split("\n").length + 1);
    }
    this.reset(run.code);
    if (run.stdout) this.write("stdout", run.stdout);
    if (run.stderr) this.write("stderr", run.stderr);
    this.end({ ...run, images: run.images.map((/** @type {string} */ id) => ({ id, url: imageUrl(id), name: id })) });
  }

  /** What "send the result to the model" sends as the next message. */
  resultMessage() {
    const { stdout, stderr, code, end } = this.last;
    const parts = [t("codeResultIntro")];
    if (code !== this.original) parts.push("```python\n" + code + "\n```");
    if (stdout) parts.push(`${t("codeStdout")}:\n\`\`\`\n${clip(stdout)}\n\`\`\``);
    if (stderr) parts.push(`${t("codeStderr")}:\n\`\`\`\n${clip(stderr)}\n\`\`\``);
    if (!stdout && !stderr) parts.push(t("codeNoOutput"));
    if (end) parts.push(describeEnd(end) + (end.images?.length ? ` · ${t("codePictures")} ${end.images.length}` : ""));
    return parts.join("\n\n");
  }
}

/** @param {RunEnd} end */
function describeEnd(end) {
  const reason = end.reason ? t(`codeReason_${end.reason}`) : "";
  const exit = end.exit_code == null ? "" : `${t("codeExitCode")} ${end.exit_code}`;
  return [reason, exit, `${Math.round(end.duration_ms)} ms`].filter(Boolean).join(" · ");
}

/** @param {string} text */
function clip(text) {
  return text.length > RESULT_CHARS ? text.slice(0, RESULT_CHARS) + `\n… (${text.length - RESULT_CHARS} ${t("codeMoreChars")})` : text;
}

/** @param {string} className @param {string} label @param {() => void} onClick */
function button(className, label, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = `code-button ${className}`;
  b.textContent = label;
  b.addEventListener("click", onClick);
  return b;
}
