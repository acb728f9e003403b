// @ts-check
/** The 기억 · 도우미 page: proposals to accept (edited) or reject, the memories (search, edit, turn
 *  off, scope, delete) and the personas (create, edit, delete). State lives on the server; each
 *  change patches the list it changed. */
import { api } from "./api.js";
import { byId, el } from "./dom.js";
import { applyI18n, errorText, t } from "./i18n.js";
import { initPersonaEditor } from "./persona-editor.js";

/** @type {{id: string, name: string, icon: string}[]} */
let personas = [];

export function showError(/** @type {string} */ message) {
  const box = byId("memory-error");
  box.hidden = !message;
  box.textContent = message;
}

/** Runs a change; its failure is shown, never thrown. @param {() => Promise<unknown>} change */
async function attempt(change) {
  try {
    showError("");
    await change();
    return true;
  } catch (error) {
    showError(errorText(error));
    return false;
  }
}

/** A select of where a memory applies: every chat, or one persona's. @param {string|null} value */
function scopeSelect(value) {
  const select = /** @type {HTMLSelectElement} */ (el("select", "memory-scope"));
  select.setAttribute("aria-label", "scope");
  const all = /** @type {HTMLOptionElement} */ (el("option", "", t("memoryScopeAll")));
  all.value = "";
  select.append(all);
  for (const persona of personas.filter((p) => p.id !== "default")) {
    const option = /** @type {HTMLOptionElement} */ (el("option", "", persona.name));
    option.value = persona.id;
    select.append(option);
  }
  select.value = value ?? "";
  return select;
}

/** @param {import("./api.js").Memory & {used_count?: number}} memory */
function memoryRow(memory) {
  const row = el("li", "memory-row");
  row.dataset.memoryId = String(memory.id);
  row.classList.toggle("off", !memory.enabled);
  const text = /** @type {HTMLInputElement} */ (el("input", "memory-text"));
  text.value = memory.text;
  text.maxLength = 300;
  text.setAttribute("aria-label", "memory");
  text.addEventListener("change", () => attempt(() => api.changeMemory(memory.id, { text: text.value })));
  const on = /** @type {HTMLInputElement} */ (el("input", "memory-on"));
  on.type = "checkbox";
  on.checked = memory.enabled;
  on.title = t("memoryOn");
  on.addEventListener("change", async () => {
    if (await attempt(() => api.changeMemory(memory.id, { enabled: on.checked }))) row.classList.toggle("off", !on.checked);
  });
  const scope = scopeSelect(memory.persona_id);
  scope.addEventListener("change", () => attempt(() => api.changeMemory(memory.id, { persona_id: scope.value || null })));
  const remove = el("button", "button small-button danger memory-delete", t("memoryDelete"));
  remove.addEventListener("click", async () => { if (await attempt(() => api.deleteMemory(memory.id))) row.remove(); });
  const uses = el("span", "muted small memory-uses", t("memoryUses").replace("{n}", String(memory.used_count ?? 0)));
  row.append(on, text, scope, uses, remove);
  return row;
}

async function loadMemories() {
  const q = /** @type {HTMLInputElement} */ (byId("memory-search")).value.trim();
  const memories = await api.memories(q).catch((error) => { showError(errorText(error)); return []; });
  byId("memory-list").replaceChildren(...memories.map(memoryRow));
  byId("memory-empty").hidden = memories.length > 0 || Boolean(q);
}

/** @param {{id: number, text: string}} proposal */
function proposalRow(proposal) {
  const row = el("li", "memory-row proposal-row");
  const text = /** @type {HTMLInputElement} */ (el("input", "memory-text"));
  text.value = proposal.text;
  text.maxLength = 300;
  const accept = el("button", "button primary small-button proposal-accept", t("proposalAccept"));
  const reject = el("button", "button small-button proposal-reject", t("proposalReject"));
  const settle = async (/** @type {() => Promise<unknown>} */ change) => {
    if (!(await attempt(change))) return;
    row.remove();
    byId("proposals-section").hidden = !byId("proposal-list").children.length;
    await loadMemories();
  };
  accept.addEventListener("click", () => settle(() => api.acceptProposal(proposal.id, text.value.trim())));
  reject.addEventListener("click", () => settle(() => api.rejectProposal(proposal.id)));
  row.append(text, accept, reject);
  return row;
}

async function loadProposals() {
  const proposals = await api.proposals().catch(() => []);
  byId("proposal-list").replaceChildren(...proposals.map(proposalRow));
  byId("proposals-section").hidden = proposals.length === 0;
}

function wireNewMemory() {
  const form = /** @type {HTMLFormElement} */ (byId("memory-new"));
  const input = /** @type {HTMLInputElement} */ (byId("memory-new-text"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const scope = /** @type {HTMLSelectElement} */ (byId("memory-new-scope")).value || null;
    if (await attempt(() => api.addMemory(input.value.trim(), scope))) {
      input.value = "";
      await loadMemories();
    }
  });
  let timer = 0;
  byId("memory-search").addEventListener("input", () => {
    clearTimeout(timer);
    timer = window.setTimeout(loadMemories, 200);
  });
}

async function main() {
  applyI18n();
  personas = await api.personas().catch(() => []);
  byId("memory-new-scope").replaceWith(Object.assign(scopeSelect(null), { id: "memory-new-scope" }));
  wireNewMemory();
  await Promise.all([loadMemories(), loadProposals()]);
  await initPersonaEditor({
    attempt,
    onChanged: async () => {
      personas = await api.personas().catch(() => personas);
      await loadMemories(); // a deleted persona's own memories are gone
    },
  });
  document.body.dataset.ready = "1";
}

main();
