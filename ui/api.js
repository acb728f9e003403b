// @ts-check
/** The one way the page talks to the server: JSON calls, SSE streams, uploads with progress.
 *  Every error carries the server's `{"error": {"code", "message"}}`. */

/**
 * The events of a streamed request (chat, image question, image generation, a code run), as
 * the server's one encoder (web/sse.py) writes them.
 * @typedef {{type: "session", session_id: string}} SessionEvent
 * @typedef {{id: number, role: string, parent_id: number|null, sibling_ids: number[]}} Placement where a saved turn sits in the tree
 * @typedef {{type: "turn"} & Placement} TurnEvent the request's turn, saved
 * @typedef {{type: "images", ids: string[]}} ImagesEvent
 * @typedef {{n: number, document_id: string, name: string, page: number|null, chunk_id: string, snippet: string, score: number, type?: string}} Source
 * @typedef {{type: "sources", sources: Source[]}} SourcesEvent
 * @typedef {{type: "status", state: "queued", position: number, eta_s: number}
 *         | {type: "status", state: "unloading"|"ready", model: string}
 *         | {type: "status", state: "loading", model: string, progress: number}
 *         | {type: "status", state: "retrying", model: string, reason: string}
 *         | {type: "status", state: "no_documents_matched"}
 *         | {type: "status", state: "history_trimmed", dropped: number, message: string}
 *         | {type: "status", state: "generating", model: string, images?: number, steps?: number}} StatusEvent
 * @typedef {{type: "token", text: string}} TokenEvent
 * @typedef {{type: "progress", step: number, steps: number, image: number, images: number}} ProgressEvent
 * @typedef {{type: "image", id: string, index: number, seed: number, width: number, height: number, url: string, png_base64: string}} PictureEvent
 * @typedef {{type: "done", turn_id: number, finish_reason: string, model: string,
 *            usage?: {prompt_tokens: number|null, completion_tokens: number|null, cached_tokens: number|null},
 *            timings: Record<string, any>, dropped_turns?: number, images?: string[], seeds?: number[],
 *            answer?: Placement|null, question?: Placement|null, context?: any,
 *            memories_used?: {id: number, text: string}[]}} DoneEvent
 * @typedef {{type: "error", code: string, message: string}} ErrorEvent
 * @typedef {{id?: string, url?: string, name: string, width: number, height: number, png_base64: string}} RunPicture
 * @typedef {{type: "run", run_id: string}} RunEvent
 * @typedef {{type: "stdout"|"stderr", text: string}} OutputEvent
 * @typedef {{type: "exit", run_id: string, exit_code: number|null, timed_out: boolean, killed: boolean,
 *            reason: string|null, duration_ms: number, images: RunPicture[]}} ExitEvent
 * @typedef {{type: "tool_call"|"tool_confirm", id: string, name: string, arguments: string, index?: number}} ToolCallEvent
 * @typedef {{type: "tool_result", id: string, name: string, ok: boolean, content: string,
 *            page?: {draw?: string}}} ToolResultEvent  page: a page tool's work after the answer
 * @typedef {{id: number, text: string, persona_id: string|null, enabled: boolean}} Memory
 * @typedef {{type: "memory", action: string, memory: Memory|null, previous: Memory|null}} MemoryEvent
 * @typedef {SessionEvent|TurnEvent|ImagesEvent|SourcesEvent|StatusEvent|TokenEvent|ProgressEvent|PictureEvent|DoneEvent|ErrorEvent
 *          |RunEvent|OutputEvent|ExitEvent|ToolCallEvent|ToolResultEvent|MemoryEvent} ServerEvent
 */

export class HttpError extends Error {
  /** @param {number} status @param {string} code @param {string} message */
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** @param {number} status @param {any} payload @param {string} fallback */
function httpError(status, payload, fallback) {
  return new HttpError(status, payload?.error?.code ?? "http_error", payload?.error?.message ?? fallback);
}

/**
 * A JSON request; resolves to the parsed body, rejects with HttpError.
 * @param {string} url
 * @param {RequestInit & {json?: unknown}} [options]
 */
async function call(url, options = {}) {
  const init = { ...options };
  if (options.json !== undefined) {
    init.body = JSON.stringify(options.json);
    init.headers = { "Content-Type": "application/json" };
  }
  const response = await fetch(url, init);
  const payload = await response.json().catch(() => ({}));
  if (!response.ok) throw httpError(response.status, payload, response.statusText);
  return payload;
}

/**
 * POST a JSON body and yield the server's events until `[DONE]`.
 * @param {string} url
 * @param {unknown} body
 * @param {AbortSignal} [signal] ends the request early (Stop)
 * @returns {AsyncGenerator<ServerEvent>}
 */
export async function* streamEvents(url, body, signal) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
    body: JSON.stringify(body),
    signal,
  });
  if (!response.ok || !response.body) {
    throw httpError(response.status, await response.json().catch(() => ({})), response.statusText);
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let data = [];
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      const lines = buffer.split(/\r?\n/);
      buffer = lines.pop() ?? "";
      for (const line of lines) {
        if (line === "") {
          if (data.length) {
            const text = data.join("\n");
            data = [];
            if (text === "[DONE]") return;
            yield JSON.parse(text);
          }
        } else if (line.startsWith("data:")) {
          data.push(line.slice(5).replace(/^ /, ""));
        } // comments (": ping") and other fields are ignored
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

/**
 * A multipart upload with progress (XMLHttpRequest reports upload progress; fetch does not).
 * Resolves to {status, body}; rejects with HttpError on 4xx/5xx.
 * @param {string} url @param {FormData} form @param {(fraction: number) => void} onProgress
 * @returns {Promise<{status: number, body: any}>}
 */
function upload(url, form, onProgress) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", url);
    request.upload.onprogress = (event) => { if (event.lengthComputable) onProgress(event.loaded / event.total); };
    request.onloadend = () => {
      let body = {};
      try { body = JSON.parse(request.responseText); } catch { /* not JSON */ }
      if (request.status >= 200 && request.status < 300) resolve({ status: request.status, body });
      else reject(httpError(request.status || 0, body, request.statusText || "upload failed"));
    };
    request.send(form);
  });
}

/** @param {string} id */
const enc = (id) => encodeURIComponent(id);

export const api = {
  listSessions: () => call("/api/sessions").then((p) => p.sessions),
  createSession: () => call("/api/sessions", { method: "POST", json: {} }),
  /** @param {string} id @param {string} title */
  renameSession: (id, title) => call(`/api/sessions/${enc(id)}`, { method: "PATCH", json: { title } }),
  /** @param {string} id */
  deleteSession: (id) => call(`/api/sessions/${enc(id)}`, { method: "DELETE" }),
  /** @param {string} id */
  turns: (id) => call(`/api/sessions/${enc(id)}/turns`),
  /** @param {string} id */
  gallery: (id) => call(`/api/sessions/${enc(id)}/images`),
  /** The labels of a few turns, waiting up to `waitS` for the background labeller.
   *  @param {string} sessionId @param {number[]} turnIds @param {number} waitS */
  labels: (sessionId, turnIds, waitS) =>
    call(`/api/sessions/${enc(sessionId)}/labels?turn_ids=${turnIds.join(",")}&wait_s=${waitS}`).then((p) => p.labels),
  slot: () => call("/api/slot"),
  config: () => call("/api/config"),
  documents: () => call("/api/documents"),
  /** @param {string} id */
  deleteDocument: (id) => call(`/api/documents/${enc(id)}`, { method: "DELETE" }),
  /** @param {string} id @param {string|null} sessionId */
  attachDocument: (id, sessionId) => call(`/api/documents/${enc(id)}/attach`, { method: "POST", json: { session_id: sessionId } }),
  /** @param {File} file @param {string|null} sessionId @param {(fraction: number) => void} onProgress */
  uploadDocument: (file, sessionId, onProgress) => {
    const form = new FormData();
    form.append("file", file);
    if (sessionId) form.append("session_id", sessionId);
    return upload("/api/documents", form, onProgress);
  },
  /** Show the branch through a turn. @param {string} sessionId @param {number} turnId */
  branch: (sessionId, turnId) => call(`/api/sessions/${enc(sessionId)}/branch`, { method: "POST", json: { turn_id: turnId } }),
  /** @param {number} turnId @param {number} rating 1, -1 or 0 @param {string} [comment] */
  feedback: (turnId, rating, comment = "") => call(`/api/turns/${turnId}/feedback`, { method: "PUT", json: { rating, comment } }),
  /** @param {string} q */
  search: (q) => call(`/api/search?q=${enc(q)}`),
  /** @param {File} file */
  importFile: (file) => {
    const form = new FormData();
    form.append("file", file);
    return upload("/api/import", form, () => {});
  },
  /** Any JSON GET of this server (the dashboard's aggregates). @param {string} url */
  get: (url) => call(url),
  /** @param {string} url @param {unknown} json */
  post: (url, json) => call(url, { method: "POST", json }),
  models: () => call("/api/models"),
  rescanModels: () => call("/api/models/rescan", { method: "POST", json: {} }),
  /** @param {string} role @param {string} modelId */
  useModel: (role, modelId) => call("/api/models/active", { method: "PUT", json: { role, model_id: modelId } }),
  /** @param {string} id @param {Record<string, unknown>} settings */
  modelSettings: (id, settings) => call(`/api/models/${enc(id)}/settings`, { method: "PUT", json: settings }),
  /** @param {string} [q] @param {string|null} [personaId] "" for the memories every chat shares */
  memories: (q = "", personaId = null) =>
    call(`/api/memories?q=${enc(q)}${personaId === null ? "" : `&persona_id=${enc(personaId)}`}`).then((p) => p.memories),
  /** @param {string} text @param {string|null} [personaId] */
  addMemory: (text, personaId = null) => call("/api/memories", { method: "POST", json: { text, persona_id: personaId } }),
  /** @param {number} id @param {{text?: string, enabled?: boolean, persona_id?: string|null}} changes */
  changeMemory: (id, changes) => call(`/api/memories/${id}`, { method: "PUT", json: changes }),
  /** @param {number} id */
  deleteMemory: (id) => call(`/api/memories/${id}`, { method: "DELETE" }),
  proposals: () => call("/api/memories/proposals").then((p) => p.proposals),
  /** @param {number} id @param {string} [text] the proposal as the user edited it */
  acceptProposal: (id, text) => call(`/api/memories/proposals/${id}/accept`, { method: "POST", json: text ? { text } : {} }),
  /** @param {number} id */
  rejectProposal: (id) => call(`/api/memories/proposals/${id}/reject`, { method: "POST", json: {} }),
  /** @param {string} sessionId */
  sessionMemory: (sessionId) => call(`/api/sessions/${enc(sessionId)}/memory`),
  /** @param {string} sessionId @param {boolean} off */
  setSessionMemory: (sessionId, off) => call(`/api/sessions/${enc(sessionId)}/memory`, { method: "PUT", json: { memory_off: off } }),
  personas: () => call("/api/personas").then((p) => p.personas),
  /** @param {Record<string, unknown>} fields */
  createPersona: (fields) => call("/api/personas", { method: "POST", json: fields }),
  /** @param {string} id @param {Record<string, unknown>} fields */
  changePersona: (id, fields) => call(`/api/personas/${enc(id)}`, { method: "PUT", json: fields }),
  /** @param {string} id */
  deletePersona: (id) => call(`/api/personas/${enc(id)}`, { method: "DELETE" }),
  authStatus: () => call("/api/auth/status"),
  /** @param {string} token */
  signIn: (token) => call("/api/auth/login", { method: "POST", json: { token } }),
  /** Our own static HTML partials (never user or model text). @param {string} url */
  partial: async (url) => {
    const response = await fetch(url);
    if (!response.ok) throw new HttpError(response.status, "http_error", `${url}: ${response.statusText}`);
    return response.text();
  },
};
