// @ts-check
/** The status line: which model is loaded and what the slot is doing. */
import { api } from "./api.js";
import { t } from "./i18n.js";

const line = () => /** @type {HTMLElement} */ (document.getElementById("status-line"));
let modelName = "";
let local = "";  // what this page's own request is doing, from its stream

function render(/** @type {any} */ slot) {
  const loaded = slot?.resident ? modelName || slot.resident : t("statusNoModel");
  const activity = local || (slot?.busy ? t("statusGenerating") : t("statusIdle"));
  line().textContent = `${t("model")}: ${loaded} · ${activity}`;
  line().dataset.state = local ? "busy" : slot?.busy ? "busy" : "idle";
}

let lastSlot = null;

export async function refreshStatus() {
  try {
    lastSlot = await api.slot();
    modelName = lastSlot?.models?.[lastSlot.resident] ?? "";
    render(lastSlot);
  } catch {
    line().textContent = t("statusOffline");
    line().dataset.state = "offline";
  }
}

/** Show this page's request state from a stream status frame ("" when it ends). @param {any} frame */
export function showStreamState(frame) {
  const state = frame?.state;
  local = state === "queued" ? `${t("statusQueued")} (${frame.position})`
    : state === "loading" ? t("statusLoading")
    : state === "unloading" ? t("statusUnloading")
    : state === "generating" || state === "ready" ? t("statusGenerating")
    : "";
  render(lastSlot ? { ...lastSlot, resident: state === "generating" || state === "ready" ? "chat" : lastSlot.resident } : null);
}

export function startStatusPolling(intervalMs = 5000) {
  refreshStatus();
  return setInterval(refreshStatus, intervalMs);
}
