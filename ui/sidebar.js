// @ts-check
/** The sessions list: switch, rename (inline), delete. */
import { t } from "./i18n.js";

/**
 * @typedef {{id: string, title: string, updated: string, turn_count?: number}} Session
 * @typedef {{onOpen: (id: string) => void, onRename: (id: string, title: string) => void, onDelete: (id: string) => void}} SidebarHandlers
 */

/** @param {Session[]} sessions @param {string|null} currentId @param {SidebarHandlers} handlers */
export function renderSessions(sessions, currentId, handlers) {
  const list = /** @type {HTMLElement} */ (document.getElementById("session-list"));
  const empty = /** @type {HTMLElement} */ (document.getElementById("session-empty"));
  empty.hidden = sessions.length > 0;
  list.replaceChildren(...sessions.map((session) => sessionItem(session, session.id === currentId, handlers)));
}

/** @param {Session} session @param {boolean} active @param {SidebarHandlers} handlers */
function sessionItem(session, active, handlers) {
  const li = document.createElement("li");
  li.className = `session-item${active ? " active" : ""}`;
  li.dataset.sessionId = session.id;

  const open = document.createElement("button");
  open.type = "button";
  open.className = "session-open";
  open.textContent = session.title || t("untitled");
  open.title = session.title || t("untitled");
  open.addEventListener("click", () => handlers.onOpen(session.id));

  const rename = iconButton("session-rename", "✎", t("rename"), () => startRename(li, open, session, handlers));
  const remove = iconButton("session-delete", "✕", t("delete"), () => {
    if (window.confirm(t("confirmDelete"))) handlers.onDelete(session.id);
  });

  li.append(open, rename, remove);
  return li;
}

/** @param {string} className @param {string} glyph @param {string} label @param {() => void} onClick */
function iconButton(className, glyph, label, onClick) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = `icon-button ${className}`;
  button.textContent = glyph;
  button.title = label;
  button.setAttribute("aria-label", label);
  button.addEventListener("click", onClick);
  return button;
}

/** @param {HTMLElement} li @param {HTMLElement} open @param {Session} session @param {SidebarHandlers} handlers */
function startRename(li, open, session, handlers) {
  const input = document.createElement("input");
  input.className = "session-rename-input";
  input.value = session.title;
  input.maxLength = 200;
  let done = false;
  const finish = (/** @type {boolean} */ save) => {
    if (done) return;
    done = true;
    const title = input.value.trim();
    input.replaceWith(open);
    if (save && title && title !== session.title) handlers.onRename(session.id, title);
  };
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.isComposing) { event.preventDefault(); finish(true); }
    if (event.key === "Escape") finish(false);
  });
  input.addEventListener("blur", () => finish(true));
  open.replaceWith(input);
  input.focus();
  input.select();
  li.classList.add("renaming");
}
