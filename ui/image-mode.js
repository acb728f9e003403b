// @ts-check
/**
 * Image mode: the toggle (or a "/image ..." message), the controls panel with the model
 * family's defaults, the input image for img2img, and the session's gallery.
 */
import { api } from "./api.js";
import { t } from "./i18n.js";
import { pageState } from "./state.js";
import { byId, fieldById, iconButton } from "./dom.js";
import { imageUrl } from "./urls.js";

const COMMAND = /^\/(image|img|이미지)\s+/i;

/**
 * @param {{config: any, showError: (m: string) => void}} options
 */
export function initImageMode({ config, showError }) {
  const image = config.image; // null when generation is off
  const toggle = byId("image-mode-toggle");
  const input = fieldById("chat-input");
  const basePlaceholder = input.placeholder;
  /** @type {string|null} */
  let initImageId = null;

  toggle.hidden = false;
  if (image) fillControls(image);
  else toggle.title = t("imageOff");

  /** @param {boolean} value */
  const setOn = (value) => {
    if (value && !image) showError(t("imageOff"));
    else pageState.setMode(value ? "image" : "chat"); // the composer's mode lives in the page state
  };
  pageState.onChange(() => { // the controls show the state's mode, whoever changed it
    const on = pageState.mode === "image";
    byId("image-panel").hidden = !on;
    toggle.setAttribute("aria-pressed", String(on));
    toggle.classList.toggle("active", on);
    input.placeholder = on ? t("imageModeOn") : basePlaceholder;
  });
  /** @param {string|null} id */
  const setInit = (id) => {
    initImageId = id;
    byId("img-init").hidden = !id;
    if (id) /** @type {HTMLImageElement} */ (byId("img-init-preview")).src = imageUrl(id);
  };
  toggle.addEventListener("click", () => { setOn(pageState.mode !== "image"); input.focus(); });
  byId("img-init-clear").addEventListener("click", () => setInit(null));
  /** "Use as input": the next picture starts from this one. @param {string} id */
  const useAsInput = (id) => { setOn(true); setInit(id); input.focus(); };

  return {
    /** The prompt when this message asks for a picture, else null. @param {string} text */
    promptOf(text) {
      if (COMMAND.test(text)) return text.replace(COMMAND, "").trim();
      return pageState.mode === "image" ? text : null;
    },
    /** The request body from the controls; throws with a message the user can act on. @param {string} prompt */
    body: (/** @type {string} */ prompt) => requestBody(image, prompt, initImageId),
    useAsInput,
    /** Show the session's generated pictures in the sidebar. @param {string|null} sessionId */
    refreshGallery: (/** @type {string|null} */ sessionId) => showGallery(sessionId, useAsInput),
    /** Forget the input image (another session). */
    reset() { setInit(null); },
  };
}

/** The controls set to the model family's defaults, within the server's limits. @param {any} image */
function fillControls(image) {
  const { defaults } = image;
  const limit = (/** @type {string} */ id, /** @type {number} */ value, /** @type {number} */ max) => {
    fieldById(id).value = String(Math.min(value, max));
    fieldById(id).max = String(max);
  };
  limit("img-width", defaults.width, image.max_width);
  limit("img-height", defaults.height, image.max_height);
  limit("img-steps", defaults.steps, image.max_steps);
  fieldById("img-batch").max = String(image.max_batch);
  fieldById("img-cfg").value = String(defaults.cfg_scale);
  fillOptions(/** @type {HTMLSelectElement} */ (byId("img-sampler")), image.samplers);
  fillOptions(/** @type {HTMLSelectElement} */ (byId("img-scheduler")), image.schedulers);
}

/** @param {any} image @param {string} prompt @param {string|null} initImageId @returns {Record<string, unknown>} */
function requestBody(image, prompt, initImageId) {
  if (!image) throw new Error(t("imageOff"));
  const number = (/** @type {string} */ id) => Number(fieldById(id).value);
  const width = number("img-width");
  const height = number("img-height");
  if (width % 64 || height % 64 || width < 64 || height < 64) throw new Error(t("imgSize64"));
  /** @type {Record<string, unknown>} */
  const body = {
    prompt, width, height, steps: number("img-steps"), batch_count: number("img-batch"),
    cfg_scale: number("img-cfg"), seed: number("img-seed"),
    sampler: fieldById("img-sampler").value, scheduler: fieldById("img-scheduler").value,
    negative_prompt: fieldById("img-negative").value,
  };
  if (initImageId) {
    body.init_image_id = initImageId;
    body.strength = number("img-strength");
  }
  return body;
}

/** @param {string|null} sessionId @param {(id: string) => void} onUse */
async function showGallery(sessionId, onUse) {
  const box = byId("gallery");
  if (!sessionId) { box.hidden = true; return; }
  try {
    const { images } = await api.gallery(sessionId);
    byId("gallery-grid").replaceChildren(...images.map((/** @type {any} */ picture) => thumbnail(picture, onUse)));
    box.hidden = images.length === 0;
  } catch {
    box.hidden = true; // a deleted session has no gallery
  }
}

/** @param {HTMLSelectElement} select @param {string[]} names */
function fillOptions(select, names) {
  select.replaceChildren(...names.map((name) => {
    const option = document.createElement("option");
    option.value = name;
    option.textContent = name;
    return option;
  }));
}

/** @param {any} picture @param {(id: string) => void} onUse */
function thumbnail(picture, onUse) {
  const figure = document.createElement("figure");
  figure.className = "gallery-item";
  figure.dataset.imageId = picture.id;
  const link = document.createElement("a");
  link.href = `${picture.url}?download=1`;
  link.title = `${picture.prompt}\nseed ${picture.seed} · ${picture.width}×${picture.height}`; // text, not HTML
  const img = document.createElement("img");
  img.src = picture.url;
  img.alt = picture.prompt;
  img.loading = "lazy";
  link.appendChild(img);
  figure.append(link, iconButton("gallery-use", "↺", t("imgUseAsInput"), () => onUse(picture.id)));
  return figure;
}
