// @ts-check
/** The status line and slot indicator: which model is on the GPU, VRAM, queue, what we wait for. */
import { api } from "./api.js";
import { t } from "./i18n.js";

const line = () => /** @type {HTMLElement} */ (document.getElementById("status-line"));
const slotBox = () => /** @type {HTMLElement|null} */ (document.getElementById("slot-indicator"));
let local = ""; // what this page's own request is doing, from its stream
/** @type {any} */
let lastSlot = null;
let swapped = false; // this page's stream loaded or unloaded a model

/** @param {any} frame @returns {string} text for a stream status frame ("" when none applies) */
export function describeStatus(frame) {
  switch (frame?.state) {
    case "queued":
      return `${t("statusQueued")} (${frame.position}${t("positionSuffix")}${frame.eta_s ? `, ~${Math.ceil(frame.eta_s)}${t("seconds")}` : ""})`;
    case "loading":
      return `${t("statusLoading")} ${frame.model ?? ""} ${Math.round((frame.progress ?? 0) * 100)}%`;
    case "unloading":
      return `${t("statusUnloading")} ${frame.model ?? ""}`;
    case "retrying":
      return `${t("statusRetrying")} (${frame.reason ?? ""})`;
    case "ready":
    case "generating":
      return t("statusGenerating");
    default:
      return "";
  }
}

function render() {
  const slot = lastSlot;
  const resident = slot?.resident;
  const remote = Object.keys(slot?.remote ?? {}); // roles another machine serves: nothing to load here
  const label = resident ? slot?.models?.[resident] ?? resident
    : remote.includes("chat") ? `${slot.models?.chat ?? "chat"} (${t("remote")})` : t("statusNoModel");
  const activity = local || (slot?.busy ? t("statusGenerating") : t("statusIdle"));
  line().textContent = `${t("model")}: ${label} · ${activity}`;
  line().dataset.state = local || slot?.busy ? "busy" : "idle";
  const box = slotBox();
  if (!box || !slot) return;
  const gb = (/** @type {number} */ mb) => (mb / 1024).toFixed(1);
  box.textContent = `${t("gpu")}: ${resident ?? "—"} · VRAM ${gb(slot.vram_estimate_mb)}/${gb(slot.budget_mb)} GB${slot.gpu_measured ? "" : ` (${t("estimated")})`} · ${t("queue")} ${slot.queue}`
    + (remote.length ? ` · ${t("remote")}: ${remote.join(", ")}` : "");
  box.title = JSON.stringify(slot.residents);
}

export async function refreshStatus() {
  try {
    lastSlot = await api.slot();
    render();
  } catch {
    line().textContent = t("statusOffline");
    line().dataset.state = "offline";
  }
}

/** Show this page's request state from a stream status frame (null when it ends). @param {any} frame */
export function showStreamState(frame) {
  local = describeStatus(frame);
  if (frame?.state === "loading" || frame?.state === "unloading") {
    swapped = true;
    refreshStatus();
  } else if (frame?.state === "ready" && swapped) { // the swap is over: what is on the GPU now
    swapped = false;
    refreshStatus();
  }
  render();
}

/** This page's request ended: its model stays resident and is idle now (known from the
 *  stream, so nothing is asked); the next look at the slot comes at the idle pace. */
export function streamEnded() {
  local = "";
  if (lastSlot) lastSlot = { ...lastSlot, busy: false, holders: [] };
  render();
  schedule();
}

let busyMs = 3000;
let idleMs = 15000;
/** @type {ReturnType<typeof setTimeout>|undefined} */
let timer;

/** Look at the slot often while something runs, seldom while idle (other clients, e.g. /v1,
 *  may still load models), never while the tab is hidden. */
function schedule() {
  clearTimeout(timer);
  const busy = Boolean(local || lastSlot?.busy || lastSlot?.queue);
  timer = setTimeout(async () => {
    if (!document.hidden) await refreshStatus();
    schedule();
  }, busy ? busyMs : idleMs);
}

/** @param {number} [whileBusyMs] @param {number} [whileIdleMs] */
export async function startStatusPolling(whileBusyMs = 3000, whileIdleMs = 15000) {
  busyMs = whileBusyMs;
  idleMs = whileIdleMs;
  await refreshStatus();
  schedule();
}
