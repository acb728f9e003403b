// @ts-check
/** JSON calls to the server; errors carry the server's message. */
import { HttpError } from "./sse.js";

/**
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
  if (!response.ok) {
    throw new HttpError(response.status, payload?.error?.code ?? "http_error", payload?.error?.message ?? response.statusText);
  }
  return payload;
}

export const api = {
  listSessions: () => call("/api/sessions").then((p) => p.sessions),
  createSession: () => call("/api/sessions", { method: "POST", json: {} }),
  /** @param {string} id @param {string} title */
  renameSession: (id, title) => call(`/api/sessions/${encodeURIComponent(id)}`, { method: "PATCH", json: { title } }),
  /** @param {string} id */
  deleteSession: (id) => call(`/api/sessions/${encodeURIComponent(id)}`, { method: "DELETE" }),
  /** @param {string} id */
  turns: (id) => call(`/api/sessions/${encodeURIComponent(id)}/turns`),
  /** @param {string} id */
  gallery: (id) => call(`/api/sessions/${encodeURIComponent(id)}/images`),
  slot: () => call("/api/slot"),
  config: () => call("/api/config"),
};
