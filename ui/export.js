// @ts-check
/** Export (a download link built from the choices) and import of an export (JSON, or the zip with pictures). */
import { api } from "./api.js";
import { errorText, t } from "./i18n.js";

/** @param {{currentSession: () => string|null, onImported: () => void, showError: (m: string) => void}} hooks */
export function initExport(hooks) {
  const format = /** @type {HTMLSelectElement} */ (document.getElementById("export-format"));
  const thisOnly = /** @type {HTMLInputElement} */ (document.getElementById("export-this"));
  const branches = /** @type {HTMLInputElement} */ (document.getElementById("export-branches"));
  const images = /** @type {HTMLInputElement} */ (document.getElementById("export-images"));
  const link = /** @type {HTMLAnchorElement} */ (document.getElementById("export-download"));
  const file = /** @type {HTMLInputElement} */ (document.getElementById("import-input"));
  const note = /** @type {HTMLElement} */ (document.getElementById("import-note"));
  const update = () => {
    const q = new URLSearchParams({ format: format.value });
    const session = hooks.currentSession();
    if (thisOnly.checked && session) q.set("session_id", session);
    if (branches.checked) q.set("all_branches", "1");
    if (images.checked && format.value === "json") q.set("include_images", "1");
    link.href = `/api/export?${q}`;
  };
  for (const control of [format, thisOnly, branches, images]) control.addEventListener("change", update);
  link.addEventListener("click", update); // the session may have changed since
  document.getElementById("import-button")?.addEventListener("click", () => file.click());
  file.addEventListener("change", async () => {
    const chosen = file.files?.[0];
    file.value = "";
    if (!chosen) return;
    try {
      const { body } = await api.importFile(chosen);
      const pictures = body.pictures ? ` · ${t("importedPictures")} ${body.pictures}` : "";
      note.textContent = `${t("imported")} ${body.imported.length} · ${t("skipped")} ${body.skipped.length}${pictures}`;
      note.hidden = false;
      hooks.onImported();
    } catch (error) {
      hooks.showError(errorText(error));
    }
  });
  update();
}
