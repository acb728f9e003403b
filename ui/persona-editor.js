// @ts-check
/** The personas on the 기억 · 도우미 page: the list, and one form to create or edit a persona
 *  (name and look, prompt, model, sampling, memory, tools, documents). */
import { api } from "./api.js";
import { byId, el } from "./dom.js";
import { t } from "./i18n.js";
import { personaIcon } from "./personas.js";

const TOOLS = ["search_documents", "search_conversations", "run_python", "generate_image"];
const NUMBERS = ["temperature", "top_p", "max_tokens"];

/** @typedef {{attempt: (change: () => Promise<unknown>) => Promise<boolean>, onChanged: () => Promise<void>}} EditorHooks */

/** Checkboxes named `name`, one per [value, label]. @param {HTMLElement} box @param {string} name @param {[string, string][]} items */
function checks(box, name, items) {
  box.replaceChildren(...items.map(([value, label]) => {
    const row = el("label", "");
    const input = /** @type {HTMLInputElement} */ (el("input", ""));
    Object.assign(input, { type: "checkbox", name, value });
    row.append(input, el("span", "", ` ${label}`));
    return row;
  }));
}

/** The form's choices that come from the server: chat models of the library, documents. */
async function fillChoices(/** @type {HTMLFormElement} */ form) {
  const [models, documents] = await Promise.all([api.models().catch(() => ({ models: [] })),
                                                 api.documents().catch(() => ({ documents: [] }))]);
  const select = /** @type {HTMLSelectElement} */ (form.elements.namedItem("model"));
  const configured = /** @type {HTMLOptionElement} */ (el("option", "", t("personaModelConfigured")));
  configured.value = "";
  select.replaceChildren(configured);
  for (const model of models.models.filter((/** @type {any} */ m) => m.status === "ok" && m.roles.includes("chat"))) {
    const option = /** @type {HTMLOptionElement} */ (el("option", "", model.title || model.name));
    option.value = model.id;
    select.append(option);
  }
  checks(byId("persona-tools"), "tools", TOOLS.map((name) => [name, t(`tool_${name}`)]));
  checks(byId("persona-documents"), "documents", documents.documents.map((/** @type {any} */ d) => [d.id, d.name]));
}

/** The form's fields as the API takes them. @param {HTMLFormElement} form */
function fieldsOf(form) {
  const data = new FormData(form);
  /** @type {Record<string, unknown>} */
  const fields = {};
  for (const key of ["name", "icon", "color", "description", "model", "memory"]) fields[key] = String(data.get(key) ?? "");
  const prompt = String(data.get("system_prompt") ?? "");
  fields.system_prompt = prompt.trim() ? prompt : null;
  for (const key of NUMBERS) fields[key] = data.get(key) === "" ? null : Number(data.get(key));
  fields.tools = data.getAll("tools").map(String);
  fields.documents = data.getAll("documents").map(String);
  return fields;
}

/** Put a persona's values in the form (a new one: blank). @param {HTMLFormElement} form @param {any} persona */
function fillForm(form, persona) {
  const values = persona ?? { name: "", icon: "", color: "#4f7cff", description: "", system_prompt: "", model: "",
                              memory: "shared", tools: [], documents: [] };
  for (const key of ["name", "icon", "color", "description", "system_prompt", "model", "memory", ...NUMBERS]) {
    const field = /** @type {HTMLInputElement} */ (form.elements.namedItem(key));
    field.value = values[key] == null ? "" : String(values[key]);
  }
  if (!values.color) /** @type {HTMLInputElement} */ (form.elements.namedItem("color")).value = "#4f7cff";
  for (const box of form.querySelectorAll("input[type=checkbox]")) {
    const input = /** @type {HTMLInputElement} */ (box);
    input.checked = (values[input.name] ?? []).includes(input.value);
  }
  form.dataset.personaId = persona?.id ?? "";
  form.hidden = false;
  /** @type {HTMLInputElement} */ (form.elements.namedItem("name")).focus();
}

/** @param {any} persona @param {HTMLFormElement} form @param {EditorHooks} hooks @param {() => Promise<void>} reload */
function personaRow(persona, form, hooks, reload) {
  const row = el("li", "persona-row");
  row.dataset.personaId = persona.id;
  row.style.setProperty("--persona-color", persona.color || "var(--accent)");
  row.append(personaIcon(persona), el("strong", "persona-name", persona.name),
             el("span", "muted small", persona.description));
  const edit = el("button", "button small-button persona-edit", t("personaEdit"));
  edit.addEventListener("click", () => fillForm(form, persona));
  row.append(edit);
  if (!persona.builtin) {
    const remove = el("button", "button small-button danger persona-delete", t("personaDelete"));
    remove.addEventListener("click", async () => {
      if (!confirm(t("personaDeleteConfirm").replace("{name}", persona.name))) return;
      if (await hooks.attempt(() => api.deletePersona(persona.id))) await reload();
    });
    row.append(remove);
  }
  return row;
}

/** @param {EditorHooks} hooks */
export async function initPersonaEditor(hooks) {
  const form = /** @type {HTMLFormElement} */ (byId("persona-form"));
  await fillChoices(form);
  const reload = async () => {
    const personas = await api.personas().catch(() => []);
    byId("persona-list").replaceChildren(...personas.map((/** @type {any} */ p) => personaRow(p, form, hooks, reload)));
    await hooks.onChanged();
  };
  byId("persona-new").addEventListener("click", () => fillForm(form, null));
  byId("persona-cancel").addEventListener("click", () => { form.hidden = true; });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const id = form.dataset.personaId;
    const save = () => (id ? api.changePersona(id, fieldsOf(form)) : api.createPersona(fieldsOf(form)));
    if (await hooks.attempt(save)) {
      form.hidden = true;
      await reload();
    }
  });
  await reload();
}
