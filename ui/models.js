// @ts-check
/** The model library page: every model found on this PC, how it fits the GPU, its settings, and
 * which one serves chat, image questions and image generation ("사용"). */
import { byId, el } from "./dom.js";
import { api } from "./api.js";
import { applyI18n, errorText, t } from "./i18n.js";

/**
 * @typedef {{verdict: string, estimate_mb: number, full_mb: number, budget_mb: number, layers?: number,
 *            layers_on_gpu?: number, layers_on_cpu?: number, largest_full_context?: number}} Fit
 * @typedef {{id: string, name: string, title: string|null, path: string, roles: string[], status: string,
 *            reason: string|null, file_bytes: number, quantization?: string, architecture?: string,
 *            parameters?: number, context_length?: number, template?: string, tools?: boolean, vision: boolean,
 *            license?: string, projector: string|null, active_for: string[], settings?: Record<string, any>,
 *            changed?: string[], fit?: Fit, loaded_context?: number|null}} Model
 */

const ROLE_ORDER = ["chat", "vision", "image"];
const CHOICES = { cache_type: ["f16", "q8_0", "q4_0"], family: ["auto", "sd1", "sd2", "sdxl", "sd3", "flux", "sdxs"],
                  weight_type: ["default", "f32", "f16", "q8_0", "q5_1", "q5_0", "q4_1", "q4_0"] };
let polling = 0;


/** @param {number} bytes */
const size = (bytes) => bytes >= 1 << 30 ? `${(bytes / (1 << 30)).toFixed(1)} GB` : `${Math.max(1, Math.round(bytes / (1 << 20)))} MB`;
/** @param {number} n */
const params = (n) => n >= 1e9 ? `${(n / 1e9).toFixed(1)}B` : `${Math.round(n / 1e6)}M`;

function showError(/** @type {string} */ message) {
  const box = byId("models-error");
  box.hidden = !message;
  box.textContent = message;
}

/** @param {Fit} fit */
function fitLine(fit) {
  const box = el("div", `model-fit ${fit.verdict}`);
  const bar = el("div", "fit-bar");
  const fill = el("span", "fit-fill");
  fill.style.width = `${Math.min(100, Math.round((fit.full_mb / Math.max(1, fit.budget_mb)) * 100))}%`;
  bar.append(fill);
  const words = {
    fully_on_gpu: t("fitFull"), cpu_only: t("fitCpuOnly"), does_not_fit: t("fitNone"),
    partly_on_gpu: `${fit.layers_on_cpu}${t("fitPartly")}`,
  }[fit.verdict] ?? fit.verdict;
  const context = fit.largest_full_context ? ` · ${t("fitLargestContext")} ${fit.largest_full_context.toLocaleString()}` : "";
  box.append(bar, el("span", "fit-text", `${words} · ${fit.full_mb.toLocaleString()} / ${fit.budget_mb.toLocaleString()} MB${context}`));
  return box;
}

/** @param {Model} model */
function badges(model) {
  const row = el("div", "model-badges");
  for (const role of model.roles) row.append(el("span", `badge role-${role}`, t(`role_${role}`)));
  if (model.quantization) row.append(el("span", "badge", model.quantization));
  row.append(el("span", "badge", size(model.file_bytes)));
  if (model.parameters) row.append(el("span", "badge", params(model.parameters)));
  if (model.context_length) row.append(el("span", "badge", `ctx ${model.context_length.toLocaleString()}`));
  if (model.template) row.append(el("span", "badge", model.template));
  if (model.tools) row.append(el("span", "badge tools", t("badgeTools")));
  if (model.license) row.append(el("span", "badge muted", model.license));
  for (const role of model.active_for) row.append(el("span", "badge active", `${t("inUse")}: ${t(`role_${role}`)}`));
  return row;
}

/** @param {Model} model */
function useButtons(model) {
  const row = el("div", "model-use");
  for (const role of ROLE_ORDER.filter((r) => model.roles.includes(r))) {
    const button = /** @type {HTMLButtonElement} */ (el("button", "button small-button model-use-button", t(`use_${role}`)));
    button.type = "button";
    button.dataset.role = role;
    button.disabled = model.active_for.includes(role);
    button.addEventListener("click", () => useFor(role, model.id));
    row.append(button);
  }
  return row;
}

/** @param {string} name @param {any} value */
function field(name, value) {
  const label = el("label", "model-field");
  label.append(el("span", "", t(`set_${name}`) === `set_${name}` ? name : t(`set_${name}`)));
  /** @type {HTMLInputElement|HTMLSelectElement|HTMLTextAreaElement} */
  let input;
  if (CHOICES[/** @type {keyof typeof CHOICES} */ (name)]) {
    input = document.createElement("select");
    for (const choice of CHOICES[/** @type {keyof typeof CHOICES} */ (name)]) input.append(new Option(choice, choice));
    input.value = String(value);
  } else if (typeof value === "boolean") {
    input = document.createElement("input");
    input.type = "checkbox";
    input.checked = value;
  } else if (name === "system_prompt") {
    input = document.createElement("textarea");
    input.rows = 3;
    input.value = value ?? "";
  } else {
    input = document.createElement("input");
    input.type = typeof value === "number" ? "number" : "text";
    if (typeof value === "number") input.step = "any";
    input.value = String(value ?? "");
  }
  input.name = name;
  input.dataset.original = typeof value === "boolean" ? String(value) : String(value ?? "");
  label.append(input);
  return label;
}

/** @param {Model} model */
function settingsForm(model) {
  const details = el("details", "model-settings");
  details.append(el("summary", "", t("modelSettings")));
  const form = /** @type {HTMLFormElement} */ (el("form", "model-settings-form"));
  for (const [name, value] of Object.entries(model.settings ?? {})) form.append(field(name, value));
  const save = /** @type {HTMLButtonElement} */ (el("button", "button primary small-button", t("saveSettings")));
  save.type = "submit";
  const note = el("span", "muted small model-applied");
  form.append(save, note);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    /** @type {Record<string, unknown>} */
    const changes = {};
    for (const input of /** @type {NodeListOf<HTMLInputElement>} */ (form.querySelectorAll("[name]"))) {
      const now = input.type === "checkbox" ? String(input.checked) : input.value;
      if (now === input.dataset.original) continue;
      changes[input.name] = input.type === "checkbox" ? input.checked : input.type === "number" ? Number(now) : now;
    }
    if (!Object.keys(changes).length) return;
    try {
      const result = /** @type {any} */ (await api.modelSettings(model.id, changes));
      const later = Object.entries(result.applied).filter(([, when]) => when === "next_load").map(([name]) => name);
      note.textContent = later.length ? `${t("savedNextLoad")}: ${later.join(", ")}` : t("savedNow");
      showError("");
    } catch (error) {
      showError(errorText(error));
    }
  });
  details.append(form);
  return details;
}

/** @param {Model} model */
function card(model) {
  const li = el("li", `model-card ${model.status}`);
  li.dataset.modelId = model.id;
  const head = el("div", "model-head");
  head.append(el("span", "model-name", model.name));
  if (model.title && model.title !== model.name) head.append(el("span", "muted small model-title", model.title));
  li.append(head, el("div", "muted small model-path", model.path));
  if (model.status !== "ok") {
    li.append(el("p", "model-reason", `${t("modelBroken")}: ${model.reason ?? ""}`));
    return li;
  }
  li.append(badges(model));
  if (model.reason) li.append(el("p", "model-note muted small", model.reason));
  if (model.projector) li.append(el("div", "muted small", `${t("projector")}: ${model.projector.split(/[\\/]/).pop()}`));
  if (model.fit) li.append(fitLine(model.fit));
  if (model.loaded_context) li.append(el("div", "muted small", `${t("loadedContext")}: ${model.loaded_context}`));
  li.append(useButtons(model));
  if (model.settings) li.append(settingsForm(model));
  return li;
}

/** @param {Promise<unknown>} request */
async function act(request) {
  try {
    await request;
    showError("");
  } catch (error) {
    showError(errorText(error));
  }
  await refresh();
}

/** @type {any} the last listing: the page patches it from what the server answers */
let listing = null;

/** "사용": the answer says who serves each role now; the cards are drawn again from that, no re-read.
 * @param {string} role @param {string} modelId */
async function useFor(role, modelId) {
  try {
    const { active } = /** @type {any} */ (await api.useModel(role, modelId));
    showError("");
    listing.active = active;
    for (const m of listing.models) m.active_for = ROLE_ORDER.filter((r) => active[r] === m.id);
    draw(listing);
  } catch (error) {
    showError(errorText(error));
  }
}

async function refresh() {
  listing = /** @type {any} */ (await api.models());
  draw(listing);
}

/** @param {any} payload */
function draw(payload) {
  /** @type {Model[]} */
  const models = payload.models;
  const scan = payload.scan;
  byId("models-scan").textContent = scan.scanning ? `${t("modelsScanning")} ${scan.done}/${scan.total}`
    : `${t("modelsFound")} ${models.filter((m) => m.status === "ok").length} · ${t("modelsFolders")}: ${payload.folders.join(", ")}`;
  const basis = payload.budget.measured ? t("budgetMeasured") : t("budgetSetting");
  byId("models-budget").textContent = `${t("modelsBudget")}: ${payload.budget.mb.toLocaleString()} MB (${basis})`;
  byId("models-budget").title = payload.budget.basis;
  const active = byId("models-active");
  active.replaceChildren(...ROLE_ORDER.map((role) => {
    const chosen = models.find((m) => m.id === payload.active[role]);
    return el("li", "", `${t(`role_${role}`)}: ${chosen ? chosen.name : t("modelsDefault")}`);
  }));
  byId("models-list").replaceChildren(...models.map(card));
  window.clearTimeout(polling);
  if (scan.scanning) polling = window.setTimeout(refresh, 500);
}

applyI18n();
byId("models-rescan").addEventListener("click", () => act(api.rescanModels()));
refresh().catch((error) => showError(errorText(error)));
