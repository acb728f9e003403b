// @ts-check
/** PKC Mark in the page: pick models and tasks, follow the run (progress, ETA, cancel), then a
 * per-task bar chart, speed vs quality, the numbers, exports and the history of runs. */
import { byId, el } from "./dom.js";
import { api } from "./api.js";
import { applyI18n, errorText, t } from "./i18n.js";

/** @type {any} Chart.js's UMD build sets window.Chart */
const Chart = /** @type {any} */ (globalThis).Chart;
Chart.defaults.animation = false;
const TASKS = ["instruct", "reasoning", "summary", "documents", "json", "code", "tools", "vision"];
/** @type {Record<string, any>} */
const charts = {};
/** @type {any} */ (window).benchCharts = charts;



function showError(/** @type {string} */ message) {
  byId("bench-error").hidden = !message;
  byId("bench-error").textContent = message;
}

/** @param {string} name @param {string} value @param {string} label @param {boolean} checked */
function choice(name, value, label, checked) {
  const wrap = el("label", "bench-choice");
  const box = document.createElement("input");
  box.type = "checkbox";
  box.name = name;
  box.value = value;
  box.checked = checked;
  wrap.append(box, document.createTextNode(` ${label}`));
  return wrap;
}

async function loadChoices() {
  const library = /** @type {any} */ (await api.models().catch(() => ({ models: [] })));
  const models = byId("bench-models");
  // "chat" is the model chosen for chat: named once, by its name, not again in the list
  const chatModel = library.models.find((/** @type {any} */ m) => (m.active_for ?? []).includes("chat"));
  const chatLabel = chatModel ? `${t("benchDefaultModel")} (${chatModel.name})` : t("benchDefaultModel");
  models.replaceChildren(choice("model", "chat", chatLabel, true),
    ...library.models.filter((/** @type {any} */ m) => m !== chatModel && m.status === "ok" && (m.roles.includes("chat") || m.roles.includes("image")))
      .map((/** @type {any} */ m) => choice("model", m.id, `${m.name}${m.roles.includes("vision") ? " (비전)" : m.roles.includes("image") ? " (그림)" : ""}`, false)));
  byId("bench-tasks").replaceChildren(...TASKS.map((task) => choice("task", task, t(`benchTask_${task}`), true)));
}

/** @param {string} name */
const checked = (name) => [...document.querySelectorAll(`input[name='${name}']:checked`)]
  .map((box) => /** @type {HTMLInputElement} */ (box).value);

/** @param {any} run the model ids of a run -> display names */
function names(run) {
  /** @type {Record<string, string>} */
  const shown = {};
  for (const box of document.querySelectorAll("input[name='model']")) {
    const input = /** @type {HTMLInputElement} */ (box);
    shown[input.value] = input.parentElement?.textContent?.trim() ?? input.value;
  }
  return (/** @type {string} */ id) => shown[id] ?? id;
}

/** @param {string} id @param {any} config */
function draw(id, config) {
  charts[id]?.destroy();
  charts[id] = new Chart(/** @type {HTMLCanvasElement} */ (byId(id)), {
    ...config, options: { responsive: true, maintainAspectRatio: false, ...config.options } });
}

/** Mean score of a model over languages, per task. @param {any[]} results @param {string} model @param {string} task */
function meanScore(results, model, task) {
  const rows = results.filter((r) => r.model === model && r.task === task);
  return rows.length ? rows.reduce((sum, r) => sum + r.score, 0) / rows.length : null;
}

/** @param {any} run */
function showResult(run) {
  byId("bench-result").hidden = false;
  const shown = names(run);
  /** @type {string[]} */
  const models = run.request.models;
  /** @type {string[]} */
  const tasks = run.request.tasks;
  const recommendation = Object.entries(run.recommendation ?? {}).map(([task, model]) => `${task}: ${shown(String(model))}`);
  byId("bench-recommend").textContent = recommendation.length ? `${t("benchRecommend")} ${recommendation.join(", ")}` : "";
  byId("bench-meta").textContent = `${run.suite} · ${run.status} · ${run.created.slice(0, 16).replace("T", " ")} · `
    + `${run.hardware?.cores ?? "?"} cores${run.hardware?.gpu_total_mb ? ` · GPU ${run.hardware.gpu_total_mb} MB` : " · CPU"}`;
  /** @type {HTMLAnchorElement} */ (byId("bench-csv")).href = `/api/bench/runs/${run.id}?format=csv`;
  /** @type {HTMLAnchorElement} */ (byId("bench-json")).href = `/api/bench/runs/${run.id}?format=json`;
  draw("bench-bars", { type: "bar", data: { labels: tasks.map((task) => t(`benchTask_${task}`)),
    datasets: models.map((/** @type {string} */ model) => ({ label: shown(model), data: tasks.map((task) => meanScore(run.results, model, task)) })) },
    options: { scales: { y: { min: 0, max: 1 } } } });
  draw("bench-scatter", { type: "scatter", data: { datasets: models.map((/** @type {string} */ model) => {
    const scores = /** @type {number[]} */ (tasks.map((task) => meanScore(run.results, model, task)).filter((s) => s !== null));
    const quality = scores.length ? scores.reduce((a, b) => a + b, 0) / scores.length : 0;
    return { label: shown(model), data: [{ x: run.speed?.[model]?.gen_tokens_per_s ?? 0, y: quality }], pointRadius: 7 };
  }) }, options: { scales: { x: { title: { display: true, text: "tok/s" } }, y: { min: 0, max: 1, title: { display: true, text: t("benchQuality") } } } } });
  const table = byId("bench-table");
  const head = el("tr", "");
  for (const column of ["benchColModel", "benchColTask", "benchColLanguage", "benchColScore", "benchColFailures"]) head.append(el("th", "", t(column)));
  table.replaceChildren(head, ...run.results.map((/** @type {any} */ r) => {
    const row = el("tr", "");
    const failures = ["empty", "truncated", "looping", "invalid_json", "failed"].filter((k) => r[k]).map((k) => `${k} ${r[k]}`).join(", ");
    for (const text of [shown(r.model), t(`benchTask_${r.task}`), r.language,
                        `${r.score.toFixed(2)} (${r.ci_low.toFixed(2)}–${r.ci_high.toFixed(2)})${r.spread ? ` ±${r.spread.toFixed(2)}` : ""}`,
                        failures || "—"]) row.append(el("td", "", text));
    return row;
  }));
}

/** @param {string} runId */
async function follow(runId) {
  byId("bench-progress-box").hidden = false;
  const bar = /** @type {HTMLProgressElement} */ (byId("bench-progress"));
  const source = new EventSource(`/api/bench/runs/${runId}/events`);
  await new Promise((resolve) => {
    source.onmessage = (event) => {
      if (event.data === "[DONE]") { source.close(); resolve(null); return; }
      const { progress, status } = JSON.parse(event.data);
      bar.value = progress.total ? progress.done / progress.total : 0;
      byId("bench-progress-text").textContent = `${progress.done}/${progress.total}`
        + (progress.eta_s ? ` · ${t("benchEta")} ${Math.round(progress.eta_s)}${t("seconds")}` : "") + ` · ${status}`;
    };
    source.onerror = () => { source.close(); resolve(null); };
  });
  byId("bench-progress-box").hidden = true;
  showResult(await api.get(`/api/bench/runs/${runId}`));
  await loadHistory();
}

async function loadHistory() {
  const { runs } = /** @type {any} */ (await api.get("/api/bench/runs"));
  byId("bench-history").replaceChildren(...runs.map((/** @type {any} */ run) => {
    const item = el("li", "");
    const link = /** @type {HTMLAnchorElement} */ (el("a", "", `${run.created.slice(0, 16).replace("T", " ")} · ${run.status} · `
      + `${run.request.tasks.map((/** @type {string} */ task) => t(`benchTask_${task}`)).join(", ")}`));
    link.href = "#";
    link.addEventListener("click", async (event) => {
      event.preventDefault();
      showResult(await api.get(`/api/bench/runs/${run.id}`));
    });
    item.append(link);
    return item;
  }));
}

/** @type {string|null} */
let current = null;
byId("bench-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  showError("");
  try {
    const quick = /** @type {HTMLInputElement} */ (byId("bench-quick")).checked;
    const body = { models: checked("model"), tasks: checked("task"), quick,
                   seeds: quick ? 1 : Number(/** @type {HTMLInputElement} */ (byId("bench-seeds")).value) };
    const started = /** @type {any} */ (await api.post("/api/bench/runs", body));
    current = started.id;
    await follow(started.id);
  } catch (error) {
    showError(errorText(error));
  }
});
byId("bench-cancel").addEventListener("click", () => {
  if (current) api.post(`/api/bench/runs/${current}/cancel`, {}).catch((error) => showError(errorText(error)));
});

/** Quick runs use one seed: the seeds field says so while it is ticked. */
function syncSeeds() {
  const quick = /** @type {HTMLInputElement} */ (byId("bench-quick")).checked;
  const seeds = /** @type {HTMLInputElement} */ (byId("bench-seeds"));
  seeds.disabled = quick;
  if (quick) seeds.dataset.chosen = seeds.dataset.chosen ?? seeds.value;
  seeds.value = quick ? "1" : (seeds.dataset.chosen ?? seeds.value);
  if (!quick) delete seeds.dataset.chosen;
}
byId("bench-quick").addEventListener("change", syncSeeds);
syncSeeds();

applyI18n();
loadChoices().then(loadHistory).catch((error) => showError(errorText(error)));
