// @ts-check
/** Small DOM helpers the page's modules share. */

/**
 * An element with a class and, optionally, text (always as text: model output and file names
 * never become markup). @param {string} tag @param {string} className @param {string} [text]
 */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Text made safe inside HTML the page builds as a string (markdown's code blocks, formulas). @param {string} text */
export function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

/** An element of the page's own markup by id (the partials are loaded before any module asks). @param {string} id */
export function byId(id) {
  return /** @type {HTMLElement} */ (document.getElementById(id));
}

/** A button with an icon as its text and a title (also its accessible name). @param {string} className
 *  @param {string} icon @param {string} title @param {() => void} onClick */
export function iconButton(className, icon, title, onClick) {
  const button = /** @type {HTMLButtonElement} */ (el("button", `icon-button ${className}`, icon));
  button.type = "button";
  button.title = button.ariaLabel = title;
  button.addEventListener("click", onClick);
  return button;
}

/** A form field of the page's own markup by id (input, select or textarea: its `.value`). @param {string} id */
export function fieldById(id) {
  return /** @type {HTMLInputElement} */ (document.getElementById(id));
}
