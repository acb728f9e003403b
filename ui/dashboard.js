// @ts-check
/** The analytics dashboard: charts (vendored Chart.js) over GET /api/stats, click-through to sessions. */
import { api } from "./api.js";
import { applyI18n, errorText, t } from "./i18n.js";
import { badgesShown, emotionInfo, intentName, setBadgesShown } from "./labels.js";
import { byId } from "./dom.js";

/** @type {any} Chart.js's UMD build sets window.Chart */
const Chart = /** @type {any} */ (globalThis).Chart;
Chart.defaults.animation = false; // charts appear at once (and screenshots show them)
Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;

/** @type {Record<string, any>} the drawn charts by canvas id (tests read their data) */
const charts = {};
/** @type {any} */ (window).dashboardCharts = charts;

const input = (/** @type {string} */ id) => /** @type {HTMLInputElement} */ (document.getElementById(id));

/** Ticks at 0..n-1 only (a category-like axis on a linear scale). @param {number} n */
const everyInteger = (n) => (/** @type {any} */ axis) => { axis.ticks = [...Array(n).keys()].map((value) => ({ value })); };

/** @param {string} id @param {any} config */
function draw(id, config) {
  charts[id]?.destroy();
  charts[id] = new Chart(/** @type {HTMLCanvasElement} */ (byId(id)), {
    ...config,
    options: { responsive: true, maintainAspectRatio: false, ...config.options },
  });
}

function filters() {
  return { from: input("dash-from").value, to: input("dash-to").value,
           bucket: /** @type {HTMLSelectElement} */ (byId("dash-bucket")).value,
           session_id: /** @type {HTMLSelectElement} */ (byId("dash-session")).value };
}

/** @param {Record<string, string>} params */
function query(params) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value) q.set(key, value);
  return q.toString();
}

/** The sessions behind a clicked bar or slice. @param {string} title @param {Record<string, string>} filter */
async function drill(title, filter) {
  const { from, to } = filters();
  const { sessions } = await api.get(`/api/stats/sessions?${query({ from, to, ...filter })}`);
  byId("drill").hidden = false;
  byId("drill-title").textContent = `${t("dashSessionsFor")}: ${title}`;
  const list = byId("drill-list");
  list.replaceChildren();
  for (const session of sessions) {
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.href = `/?session=${encodeURIComponent(session.id)}`;
    link.textContent = session.title || t("untitled"); // user text: text only
    const count = document.createElement("span");
    count.className = "muted small";
    count.textContent = ` · ${session.turns}${t("dashTurns")}`;
    item.append(link, count);
    list.appendChild(item);
  }
  byId("drill").scrollIntoView({ block: "nearest" });
}

/** The emotions the server's classifier labels with, in its order.
 * @param {any} stats @returns {import("./labels.js").Emotion[]} */
const emotionsOf = (stats) => (stats.emotions ?? []).map(emotionInfo);

/** @param {any} stats */
function drawEmotionShare(stats) {
  const shares = stats.emotion_share.user ?? {};
  const shown = emotionsOf(stats).filter((e) => shares[e.label]);
  draw("chart-emotion-share", {
    type: "doughnut",
    data: { labels: shown.map((e) => `${e.emoji} ${e.name}`),
            datasets: [{ data: shown.map((e) => shares[e.label]), backgroundColor: shown.map((e) => e.color) }] },
    options: { onClick: (/** @type {any} */ _e, /** @type {any[]} */ hit) => {
      if (hit.length) { const e = shown[hit[0].index]; drill(`${e.emoji} ${e.name}`, { emotion: e.label }); }
    }, plugins: { legend: { position: "right" } } },
  });
}

/** @param {any} stats */
function drawEmotionTime(stats) {
  const periods = Object.keys(stats.emotion_over_time).sort();
  const emotions = emotionsOf(stats);
  draw("chart-emotion-time", {
    type: "bar",
    data: { labels: periods, datasets: emotions.map((e) => ({
      label: `${e.emoji} ${e.name}`, backgroundColor: e.color, emotion: e.label,
      data: periods.map((p) => stats.emotion_over_time[p][e.label] ?? 0) })) },
    options: { scales: { x: { stacked: true }, y: { stacked: true, ticks: { precision: 0 } } },
      onClick: (/** @type {any} */ _e, /** @type {any[]} */ hit) => {
        if (!hit.length) return;
        const e = emotions[hit[0].datasetIndex];
        const day = periods[hit[0].index];
        drill(`${day} · ${e.emoji} ${e.name}`, stats.bucket === "day" ? { emotion: e.label, day } : { emotion: e.label });
      } },
  });
}

/** @param {any} stats */
function drawIntents(stats) {
  const labels = Object.keys(stats.intent_share);
  draw("chart-intent", {
    type: "bar",
    data: { labels: labels.map(intentName), datasets: [{ label: t("dashIntentShare"), backgroundColor: "#2f6fed",
      data: labels.map((l) => stats.intent_share[l]) }] },
    options: { indexAxis: "y", plugins: { legend: { display: false } }, scales: { x: { ticks: { precision: 0 } } },
      onClick: (/** @type {any} */ _e, /** @type {any[]} */ hit) => {
        if (hit.length) drill(intentName(labels[hit[0].index]), { intent: labels[hit[0].index] });
      } },
  });
}

/** @param {any} stats */
function drawKeywords(stats) {
  const top = stats.top_keywords.slice(0, 15);
  draw("chart-keywords", {
    type: "bar",
    data: { labels: top.map((/** @type {any} */ k) => k.term),
            datasets: [{ label: "TF-IDF", backgroundColor: "#2fa36b", data: top.map((/** @type {any} */ k) => k.score) }] },
    options: { indexAxis: "y", plugins: { legend: { display: false } }, scales: { y: { ticks: { autoSkip: false } } },
      onClick: (/** @type {any} */ _e, /** @type {any[]} */ hit) => {
        if (hit.length) drill(`“${top[hit[0].index].term}”`, { keyword: top[hit[0].index].term });
      } },
  });
}

/** Messages per day over the last year as a week × weekday grid. @param {any} stats */
function drawActivity(stats) {
  const end = input("dash-to").value ? new Date(`${input("dash-to").value}T00:00:00Z`) : new Date();
  const start = new Date(Date.UTC(end.getUTCFullYear() - 1, end.getUTCMonth(), end.getUTCDate() + 1));
  start.setUTCDate(start.getUTCDate() - ((start.getUTCDay() + 6) % 7)); // back to a Monday
  /** @type {{x: number, y: number, v: number, day: string}[]} */
  const points = [];
  let max = 1;
  for (let day = new Date(start), i = 0; day <= end; day.setUTCDate(day.getUTCDate() + 1), i++) {
    const key = day.toISOString().slice(0, 10);
    const v = stats.activity[key] ?? 0;
    max = Math.max(max, v);
    points.push({ x: Math.floor(i / 7), y: (day.getUTCDay() + 6) % 7, v, day: key });
  }
  const shade = (/** @type {number} */ v) => (v ? `rgba(47, 163, 107, ${0.25 + 0.75 * (v / max)})` : "#e8ebf0");
  draw("chart-activity", {
    type: "scatter",
    data: { datasets: [{ data: points, pointStyle: "rect", pointRadius: 6, pointHoverRadius: 7,
      backgroundColor: points.map((p) => shade(p.v)), borderWidth: 0 }] },
    options: { plugins: { legend: { display: false }, tooltip: { callbacks: {
      label: (/** @type {any} */ c) => `${c.raw.day}: ${c.raw.v}` } } },
      scales: { x: { display: false, min: -1, max: 54 }, y: { reverse: true, min: -0.7, max: 6.7,
        afterBuildTicks: everyInteger(7), ticks: { callback: (/** @type {number} */ v) => t("weekdays").split(",")[v] ?? "" } } },
      onClick: (/** @type {any} */ _e, /** @type {any[]} */ hit) => {
        if (hit.length && points[hit[0].index].v) drill(points[hit[0].index].day, { day: points[hit[0].index].day });
      } },
  });
}

/** Tokens per second and time to first token per period. @param {any} stats */
function drawModelFigures(stats) {
  const periods = [...new Set(stats.model_figures.map((/** @type {any} */ f) => f.period))].sort();
  const models = [...new Set(stats.model_figures.map((/** @type {any} */ f) => f.model))];
  const value = (/** @type {string} */ model, /** @type {string} */ period, /** @type {string} */ field) =>
    stats.model_figures.find((/** @type {any} */ f) => f.model === model && f.period === period)?.[field] ?? null;
  const datasets = models.flatMap((model, i) => [
    { label: `${model} · tok/s`, yAxisID: "speed", borderColor: ["#2f6fed", "#7b5ea7", "#f0a202"][i % 3],
      data: periods.map((p) => value(String(model), String(p), "tokens_per_s")) },
    { label: `${model} · TTFT ms`, yAxisID: "ttft", borderDash: [4, 4], borderColor: ["#d64545", "#6b8e23", "#9aa3b2"][i % 3],
      data: periods.map((p) => value(String(model), String(p), "ttft_ms")) },
  ]);
  draw("chart-model", {
    type: "line", data: { labels: periods, datasets },
    options: { scales: { speed: { position: "left", title: { display: true, text: "tok/s" } },
                         ttft: { position: "right", title: { display: true, text: "TTFT ms" }, grid: { drawOnChartArea: false } } } },
  });
}

/** A session's emotions turn by turn, beside its messages. @param {any} stats */
function drawTimeline(stats) {
  const turns = (stats.timeline ?? []).filter((/** @type {any} */ turn) => turn.emotion);
  byId("timeline-split").hidden = !turns.length;
  byId("timeline-empty").hidden = Boolean(turns.length);
  if (!turns.length) { charts["chart-timeline"]?.destroy(); delete charts["chart-timeline"]; return; }
  const emotions = emotionsOf(stats);
  const order = emotions.map((e) => e.label);
  draw("chart-timeline", {
    type: "line",
    data: { labels: turns.map((/** @type {any} */ _t, /** @type {number} */ i) => String(i + 1)), datasets: [{
      label: t("emotionLabel"), data: turns.map((/** @type {any} */ turn) => order.indexOf(turn.emotion)),
      pointBackgroundColor: turns.map((/** @type {any} */ turn) => emotionInfo(turn.emotion).color), pointRadius: 6,
      pointStyle: turns.map((/** @type {any} */ turn) => (turn.role === "user" ? "circle" : "rectRot")), borderColor: "#c4cad6" }] },
    options: { plugins: { legend: { display: false } }, scales: { y: { min: -0.5, max: emotions.length - 0.5,
      afterBuildTicks: everyInteger(emotions.length),
      ticks: { callback: (/** @type {number} */ v) => (emotions[v] ? `${emotions[v].emoji} ${emotions[v].name}` : "") } } } },
  });
  const list = byId("timeline-messages");
  list.replaceChildren();
  for (const turn of turns) {
    const item = document.createElement("li");
    item.className = `timeline-item ${turn.role}`;
    const badge = document.createElement("span");
    badge.className = "emotion-badge";
    badge.textContent = `${emotionInfo(turn.emotion).emoji} ${emotionInfo(turn.emotion).name}`;
    const text = document.createElement("span");
    text.textContent = ` ${turn.role === "user" ? t("you") : t("assistant")}: ${turn.snippet}`; // user text: text only
    item.append(badge, text);
    list.appendChild(item);
  }
}

/** @param {any} analysis */
function showClassifier(analysis) {
  const box = byId("dash-classifier");
  box.replaceChildren();
  if (!analysis) { box.textContent = t("dashAnalysisOff"); return; }
  const accuracy = analysis.held_out_accuracy
    ? ` (${t("dashAccuracy")}: ${Object.entries(analysis.held_out_accuracy).map(([source, value]) =>
        `${source.endsWith("_ko") ? t("langKo") : source.endsWith("_en") ? t("langEn") : source} ${Math.round(Number(value) * 100)}%`).join(" · ")})`
    : "";
  const relabel = analysis.relabel ? ` · ${t("dashRelabelling")} ${analysis.relabel.done}/${analysis.relabel.total}` : "";
  box.append(`${t("dashClassifier")}: ${analysis.emotion_model}${accuracy} · ${analysis.intent_model} · ` +
             `${analysis.keyword_model} · ${t("dashLabelled")} ${analysis.labelled}/${analysis.turns}${relabel} `);
  if (analysis.stale > 0 && !analysis.relabel) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "button small-button";
    button.id = "relabel";
    button.textContent = `${t("dashRelabel")} (${analysis.stale})`;
    button.addEventListener("click", async () => { showClassifier(await api.post("/api/analysis/relabel", {})); pollRelabel(); });
    box.appendChild(button);
  }
}

async function pollRelabel() {
  const analysis = await api.get("/api/analysis");
  showClassifier(analysis);
  if (analysis.relabel) setTimeout(pollRelabel, 1000);
  else refresh();
}

async function refresh() {
  const stats = await api.get(`/api/stats?${query(filters())}`);
  drawEmotionShare(stats);
  drawEmotionTime(stats);
  drawIntents(stats);
  drawKeywords(stats);
  drawActivity(stats);
  drawModelFigures(stats);
  drawTimeline(stats);
  showClassifier(stats.analysis);
  document.body.dataset.empty = String(!Object.keys(stats.activity).length);
}

async function main() {
  applyI18n();
  const config = await api.config();
  const toggle = input("badge-toggle");
  toggle.checked = badgesShown(Boolean(config.analysis?.show_badges));
  toggle.addEventListener("change", () => setBadgesShown(toggle.checked));
  const select = /** @type {HTMLSelectElement} */ (byId("dash-session"));
  for (const session of await api.listSessions()) {
    const option = document.createElement("option");
    option.value = session.id;
    option.textContent = session.title || t("untitled");
    select.appendChild(option);
  }
  byId("dash-filters").addEventListener("submit", (event) => { event.preventDefault(); refresh(); });
  select.addEventListener("change", () => refresh());
  await refresh();
  document.body.dataset.ready = "1";
}

main().catch((error) => {
  byId("dash-classifier").textContent = errorText(error);
  document.body.dataset.ready = "error";
});
