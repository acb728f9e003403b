// @ts-check
/** The one owner of the page's state: the open session, the branch of it on show (its turns,
 *  root first, with their places in the tree) and the composer's mode. Modules read and change
 *  it here and are told of changes; nobody reads another module's DOM for it. */

const SESSION_KEY = "aione.sessionId";

/**
 * @typedef {{id: number, role: string, kind: string, parent_id: number|null, sibling_ids: number[],
 *            sibling_index: number, text: string, rating?: number|null}} PathTurn
 * @typedef {"chat"|"image"} ComposerMode
 */

/** @type {Set<() => void>} */
const listeners = new Set();

export const pageState = {
  /** @type {string|null} */
  sessionId: localStorage.getItem(SESSION_KEY),
  /** @type {PathTurn[]} the active branch, root first */
  path: [],
  /** @type {ComposerMode} */
  mode: "chat",

  /** @param {string|null} id */
  setSession(id) {
    if (id !== this.sessionId) this.path = [];
    this.sessionId = id;
    if (id) localStorage.setItem(SESSION_KEY, id);
    else localStorage.removeItem(SESSION_KEY);
    changed();
  },

  /** The branch on show, as the server listed it. @param {PathTurn[]} turns */
  setPath(turns) {
    this.path = turns;
    changed();
  },

  /**
   * A turn just saved (from a stream's `turn` or `done` event): it ends the branch on show,
   * after its parent (an edit or a regenerate replaces what followed the parent).
   * @param {import("./api.js").Placement & {kind?: string, text: string}} placed
   * @returns {PathTurn}
   */
  place(placed) {
    const turn = { kind: "chat", ...placed, sibling_index: Math.max(0, placed.sibling_ids.indexOf(placed.id)) };
    const parent = placed.parent_id === null ? -1 : this.path.findIndex((t) => t.id === placed.parent_id);
    this.path = [...this.path.slice(0, parent + 1), turn];
    changed();
    return turn;
  },

  /** @param {ComposerMode} mode */
  setMode(mode) {
    this.mode = mode;
    changed();
  },

  /** @param {() => void} listener @returns {() => void} to stop listening */
  onChange(listener) {
    listeners.add(listener);
    return () => listeners.delete(listener);
  },
};

function changed() {
  for (const listener of listeners) listener();
}
