// @ts-check
/** Where the server keeps things the page shows by URL: built here only, ids encoded. */

/** A stored picture (generated, uploaded or made by a code run). @param {string} id @param {boolean} [download] */
export function imageUrl(id, download = false) {
  return `/api/images/${encodeURIComponent(id)}${download ? "?download=1" : ""}`;
}
