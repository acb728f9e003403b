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
