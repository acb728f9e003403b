// @ts-check
/**
 * Images waiting to be sent: file picker, drag & drop and clipboard paste, previews with a
 * remove button. The browser checks type, size and count for a quick answer; the server
 * checks everything again by content.
 */
import { byId, el, fieldById } from "./dom.js";
import { t } from "./i18n.js";

const TYPES = ["image/png", "image/jpeg", "image/webp", "image/gif", "image/bmp"];

/**
 * @param {{maxImages: number, maxBytes: number, enabled: boolean, showError: (m: string) => void,
 *          onDocument?: (file: File) => void}} options  onDocument: a dropped file that is not an image
 */
export function initAttachments({ maxImages, maxBytes, enabled, showError, onDocument }) {
  const picker = fieldById("file-input");
  const button = /** @type {HTMLButtonElement} */ (byId("attach-button"));
  /** @type {{file: File, url: string}[]} */
  let pending = [];

  button.disabled = !enabled;
  button.title = enabled ? t("attachImage") : t("visionOff");

  const render = () => {
    byId("attachments").replaceChildren(...pending.map((item, index) => preview(item, () => {
      URL.revokeObjectURL(item.url);
      pending.splice(index, 1);
      render();
    })));
    byId("attachments").hidden = pending.length === 0;
  };

  /** @param {Iterable<File>} files */
  const add = (files) => {
    const all = [...files];
    const images = all.filter((file) => file.type.startsWith("image/"));
    if (onDocument) all.filter((file) => !file.type.startsWith("image/")).forEach(onDocument);
    if (!images.length && onDocument) return;
    if (!enabled) { showError(t("visionOff")); return; }
    for (const file of onDocument ? images : all) {
      if (!TYPES.includes(file.type)) { showError(`${file.name}: ${t("notAnImage")}`); continue; }
      if (file.size > maxBytes) { showError(`${file.name}: ${t("imageTooLarge")}`); continue; }
      if (pending.length >= maxImages) { showError(`${t("tooManyImages")} (${maxImages})`); break; }
      pending.push({ file, url: URL.createObjectURL(file) });
    }
    render();
  };

  button.addEventListener("click", () => picker.click());
  picker.addEventListener("change", () => { add(picker.files ?? []); picker.value = ""; });
  listenForFiles(add);

  return {
    count: () => pending.length,
    /** Object URLs for showing the message at once (the page's own files). */
    previewUrls: () => pending.map((item) => item.url),
    /** @returns {Promise<string[]>} data URLs to send */
    dataUrls: () => Promise.all(pending.map((item) => dataUrl(item.file))),
    clear() { pending = []; render(); }, // previews keep their object URLs: the sent message shows them
  };
}

/** An attachment's preview with its remove button. @param {{file: File, url: string}} item @param {() => void} onRemove */
function preview(item, onRemove) {
  const box = el("div", "attachment");
  const img = /** @type {HTMLImageElement} */ (el("img", ""));
  img.src = item.url; // an object URL of the user's own file
  img.alt = item.file.name;
  const remove = /** @type {HTMLButtonElement} */ (el("button", "attachment-remove", "✕"));
  remove.type = "button";
  remove.setAttribute("aria-label", t("removeImage"));
  remove.addEventListener("click", onRemove);
  box.append(img, remove);
  return box;
}

/** Pasted pictures (in the message box) and dropped files (on the chat or the composer). @param {(files: Iterable<File>) => void} add */
function listenForFiles(add) {
  byId("chat-input").addEventListener("paste", (event) => {
    const files = [...(event.clipboardData?.items ?? [])]
      .filter((item) => item.kind === "file" && item.type.startsWith("image/"))
      .map((item) => item.getAsFile())
      .filter((file) => file !== null);
    if (files.length) {
      event.preventDefault();
      add(/** @type {File[]} */ (files));
    }
  });
  for (const zone of [document.getElementById("chat"), document.getElementById("composer")]) {
    zone?.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("dragging"); });
    zone?.addEventListener("dragleave", () => zone.classList.remove("dragging"));
    zone?.addEventListener("drop", (event) => {
      event.preventDefault();
      zone.classList.remove("dragging");
      add(event.dataTransfer?.files ?? []);
    });
  }
}

/** A file as a data URL (how pictures travel in the chat's JSON body). @param {File} file @returns {Promise<string>} */
function dataUrl(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(/** @type {string} */ (reader.result));
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}
