// @ts-check
/** Personas on the chat page: which one a new chat starts with (the sidebar's 도우미 choice) and
 *  the open conversation's persona in the header (a conversation keeps the one it started with). */
import { api } from "./api.js";
import { el } from "./dom.js";
import { errorText } from "./i18n.js";

/** @typedef {{id: string, name: string, description: string, icon: string, color: string, memory: string}} Persona */

/** Its icon, or the first letter of its name in its colour (emoji fonts are not on every PC). @param {Persona} persona */
export function personaIcon(persona) {
  const icon = el("span", "persona-icon", persona.icon || [...persona.name][0] || "•");
  icon.classList.toggle("initial", !persona.icon);
  return icon;
}

/** @param {Persona|undefined} persona */
function badge(persona) {
  const node = /** @type {HTMLElement|null} */ (document.getElementById("session-persona"));
  if (!node) return;
  node.hidden = !persona || persona.id === "default";
  node.replaceChildren();
  if (!persona || node.hidden) return;
  node.append(personaIcon(persona), el("span", "persona-name", persona.name));
  node.style.setProperty("--persona-color", persona.color || "var(--accent)");
  node.title = persona.description;
  node.dataset.personaId = persona.id;
}

/** The list loads in the background; until then a new chat starts with the default. Choosing a
 *  persona while a conversation is open starts a new chat with it (a conversation keeps its own).
 *  @param {(message: string) => void} showError @param {() => void} onChoose */
export function initPersonas(showError, onChoose) {
  const select = /** @type {HTMLSelectElement|null} */ (document.getElementById("persona-choice"));
  /** @type {Map<string, Persona>} */
  const byId = new Map();
  /** @type {string|null} the open conversation's persona (null: a new chat) */
  let shown = null;
  const draw = () => badge(byId.get(shown ?? select?.value ?? "default"));
  api.personas().then((/** @type {Persona[]} */ personas) => {
    for (const persona of personas) {
      byId.set(persona.id, persona);
      const option = /** @type {HTMLOptionElement} */ (el("option", "", persona.name));
      option.value = persona.id;
      select?.append(option);
    }
    draw();
  }).catch((error) => showError(errorText(error)));
  select?.addEventListener("change", () => {
    if (shown !== null) onChoose(); // shows the new chat, which calls show(null, …)
    else draw();
  });
  return {
    /** The persona a new chat starts with. */
    forNew: () => select?.value || "default",
    /** Show the open conversation's persona, or the choice for a new chat. @param {string|null} sessionId @param {string|null|undefined} personaId */
    show(sessionId, personaId) {
      shown = sessionId ? (personaId ?? "default") : null;
      draw();
    },
  };
}
