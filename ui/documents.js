// @ts-check
/** The document library: upload (with progress), ingest status, delete, attach to this chat. */
import { api } from "./api.js";
import { byId, el, fieldById, iconButton } from "./dom.js";
import { errorText, t } from "./i18n.js";

/**
 * @typedef {{step: string, done?: number, total?: number}} Stage  what an ingest under way is doing
 * @typedef {{id: string, name: string, kind: string, bytes: number, chunks: number, status: string,
 *            progress: number, error: string|null, sessions: string[], created: string,
 *            ocr_pages: number, notice: string|null, stage: Stage|null}} Doc
 * @param {{currentSession: () => string|null, showError: (m: string) => void}} options
 */
export function initDocuments({ currentSession, showError }) {
  const input = fieldById("doc-input");
  /** @type {number|undefined} */
  let polling;

  const refresh = async () => {
    const payload = await api.documents();
    /** @type {Doc[]} */
    const docs = payload.documents ?? [];
    byId("doc-empty").hidden = docs.length > 0;
    byId("doc-list").replaceChildren(...docs.map((doc) => docItem(doc, currentSession, act)));
    showReindex(payload.reindex ?? null);
    showOcr(payload.ocr ?? null);
    const busy = docs.some((d) => d.status === "ingesting") || Boolean(payload.reindex && !payload.reindex.error);
    if (busy && polling === undefined) polling = window.setInterval(refresh, 700);
    if (!busy && polling !== undefined) { clearInterval(polling); polling = undefined; }
  };

  /** A library change: its error shown, then the list again. @param {Promise<unknown>} request */
  const act = async (request) => {
    try {
      await request;
    } catch (error) {
      showError(errorText(error));
    }
    await refresh();
  };

  /** Upload with a progress bar. @param {File} file */
  const upload = async (file) => {
    await uploadWithProgress(file, currentSession(), showError);
    await refresh();
  };

  byId("doc-upload").addEventListener("click", () => input.click());
  input.addEventListener("change", async () => {
    for (const file of input.files ?? []) await upload(file);
    input.value = "";
  });
  refresh().catch((error) => showError(errorText(error)));
  return { refresh, upload };
}

/** @param {File} file @param {string|null} session @param {(m: string) => void} showError */
async function uploadWithProgress(file, session, showError) {
  const bar = /** @type {HTMLProgressElement} */ (byId("doc-progress"));
  bar.hidden = false;
  bar.value = 0;
  try {
    const { status } = await api.uploadDocument(file, session, (fraction) => { bar.value = fraction; });
    if (status === 200) showError(`${file.name}: ${t("duplicateDocument")}`);
  } catch (error) {
    const message = errorText(error);
    showError(message.startsWith(file.name) ? message : `${file.name}: ${message}`);  // the server may name it already
  } finally {
    bar.hidden = true;
  }
}

/** The library re-embedded after the embedder changed: search keeps working meanwhile.
 * @param {{done: number, total: number, error: string|null}|null} reindex */
function showReindex(reindex) {
  const line = byId("doc-reindex");
  line.hidden = reindex === null;
  if (reindex === null) return;
  line.textContent = reindex.error ? `${t("reindexFailed")}: ${reindex.error}`
    : `${t("reindexing")} ${reindex.done}/${reindex.total}`;
}

/** Without an OCR engine, say so (and what to install) before a scan is refused.
 * @param {{available: boolean, reason: string|null}|null} ocr */
function showOcr(ocr) {
  const line = byId("doc-ocr-missing");
  line.hidden = ocr === null || ocr.available;
  if (ocr && !ocr.available) {
    line.textContent = `⚠ ${t("ocrMissing")}`;
    line.title = ocr.reason ?? "";
  }
}

/** "OCR로 읽는 중 2/5쪽 · 36%" while pages are read, then the embedding's share. @param {Doc} doc */
function ingestLine(doc) {
  const percent = `${Math.round(doc.progress * 100)}%`;
  if (doc.stage?.step === "ocr") return `${t("ocrReading")} ${doc.stage.done}/${doc.stage.total}${t("page")} · ${percent}`;
  if (doc.stage?.step === "embedding") return `${t("embedding")} ${percent}`;
  return `${t("ingesting")} ${percent}`;
}

/** What a document's line says: its progress, its failure, or its size and parts. @param {Doc} doc */
function docStatus(doc) {
  const status = el("span", "doc-status");
  const size = doc.bytes < 1024 * 1024 ? `${Math.max(1, Math.round(doc.bytes / 1024))} KB` : `${(doc.bytes / 1048576).toFixed(1)} MB`;
  const ocrPart = doc.ocr_pages ? ` · ${doc.ocr_pages}${t("ocrPages")}` : "";
  status.textContent = doc.status === "ingesting" ? ingestLine(doc)
    : doc.status === "failed" ? `${t("failed")}: ${doc.error ?? ""}`
    : `${doc.kind} · ${size} · ${doc.chunks} ${t("chunks")}${ocrPart} · ${doc.created.slice(0, 10)}`;
  if (doc.status === "ready" && doc.notice) {
    const warning = el("span", "doc-notice", " ⚠");
    warning.title = doc.notice; // server text about the user's file: text only
    status.append(warning);
    status.title = doc.notice;
  }
  return status;
}

/** One document's line: its name, attach to this chat, delete, its status.
 * @param {Doc} doc @param {() => string|null} currentSession @param {(request: Promise<unknown>) => void} act */
function docItem(doc, currentSession, act) {
  const li = el("li", `doc-item ${doc.status}`);
  li.dataset.documentId = doc.id;
  const name = el("span", "doc-name", doc.name); // a user's file name: text only
  name.title = `${doc.name} · ${(doc.bytes / 1024).toFixed(0)} KB · ${doc.chunks} chunks · ${doc.created.slice(0, 10)}`;
  const session = currentSession();
  const attached = session !== null && doc.sessions.includes(session);
  const attach = iconButton("doc-attach", attached ? "✓" : "＋", attached ? t("attached") : t("attach"),
                            () => act(api.attachDocument(doc.id, currentSession())));
  attach.disabled = session === null || attached || doc.status !== "ready";
  const remove = iconButton("doc-delete", "✕", t("delete"), () => {
    if (window.confirm(t("confirmDeleteDocument"))) act(api.deleteDocument(doc.id));
  });
  li.append(name, attach, remove, docStatus(doc));
  return li;
}
