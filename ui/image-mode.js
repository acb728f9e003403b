// @ts-check
/**
 * Image mode: the toggle (or a "/image ..." message), the controls panel with the model
 * family's defaults, the input image for img2img, and the session's gallery.
 */
import { api } from "./api.js";
import { t } from "./i18n.js";
import { pageState } from "./state.js";
import { imageUrl } from "./urls.js";

/** @param {string} id */
const el = (id) => /** @type {any} */ (document.getElementById(id));

const COMMAND = /^\/(image|img|이미지)\s+/i;

/**
 * @param {{config: any, showError: (m: string) => void}} options
 */
export function initImageMode({ config, showError }) {
  const image = config.image; // null when generation is off
  const toggle = el("image-mode-toggle");
  const panel = el("image-panel");
  const input = el("chat-input");
  const basePlaceholder = input.placeholder;
  /** @type {string|null} */
  let initImageId = null;

  toggle.hidden = false;
  if (image) {
    const { defaults } = image;
    el("img-width").value = Math.min(defaults.width, image.max_width);
    el("img-width").max = image.max_width;
    el("img-height").value = Math.min(defaults.height, image.max_height);
    el("img-height").max = image.max_height;
    el("img-steps").value = Math.min(defaults.steps, image.max_steps);
    el("img-steps").max = image.max_steps;
    el("img-batch").max = image.max_batch;
    el("img-cfg").value = defaults.cfg_scale;
    fillOptions(el("img-sampler"), image.samplers);
    fillOptions(el("img-scheduler"), image.schedulers);
  } else {
    toggle.title = t("imageOff");
  }

  /** @param {boolean} value */
  const setOn = (value) => {
    if (value && !image) {
      showError(t("imageOff"));
      return;
    }
    pageState.setMode(value ? "image" : "chat"); // the composer's mode lives in the page state
    panel.hidden = !value;
    toggle.setAttribute("aria-pressed", String(value));
    toggle.classList.toggle("active", value);
    input.placeholder = value ? t("imageModeOn") : basePlaceholder;
  };
  toggle.addEventListener("click", () => { setOn(pageState.mode !== "image"); input.focus(); });
  el("img-init-clear").addEventListener("click", () => setInit(null));

  /** @param {string|null} id */
  const setInit = (id) => {
    initImageId = id;
    el("img-init").hidden = !id;
    if (id) el("img-init-preview").src = imageUrl(id);
  };

  return {
    /** The prompt when this message asks for a picture, else null. @param {string} text */
    promptOf(text) {
      if (COMMAND.test(text)) return text.replace(COMMAND, "").trim();
      return pageState.mode === "image" ? text : null;
    },
    /** The request body from the controls; throws with a message the user can act on. @param {string} prompt */
    body(prompt) {
      if (!image) throw new Error(t("imageOff"));
      const number = (/** @type {string} */ id) => Number(el(id).value);
      const width = number("img-width");
      const height = number("img-height");
      if (width % 64 || height % 64 || width < 64 || height < 64) throw new Error(t("imgSize64"));
      /** @type {Record<string, unknown>} */
      const body = {
        prompt, width, height, steps: number("img-steps"), batch_count: number("img-batch"),
        cfg_scale: number("img-cfg"), seed: number("img-seed"),
        sampler: el("img-sampler").value, scheduler: el("img-scheduler").value,
        negative_prompt: el("img-negative").value,
      };
      if (initImageId) {
        body.init_image_id = initImageId;
        body.strength = number("img-strength");
      }
      return body;
    },
    /** "Use as input": the next picture starts from this one. @param {string} id */
    useAsInput(id) {
      setOn(true);
      setInit(id);
      input.focus();
    },
    /** Show the session's generated pictures in the sidebar. @param {string|null} sessionId */
    async refreshGallery(sessionId) {
      const box = el("gallery");
      const grid = el("gallery-grid");
      if (!sessionId) { box.hidden = true; return; }
      try {
        const { images } = await api.gallery(sessionId);
        grid.replaceChildren(...images.map((/** @type {any} */ picture) => thumbnail(picture, (id) => this.useAsInput(id))));
        box.hidden = images.length === 0;
      } catch {
        box.hidden = true; // a deleted session has no gallery
      }
    },
    /** Forget the input image (another session). */
    reset() { setInit(null); },
  };
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
  const use = document.createElement("button");
  use.type = "button";
  use.className = "icon-button gallery-use";
  use.textContent = "↺";
  use.title = t("imgUseAsInput");
  use.addEventListener("click", () => onUse(picture.id));
  figure.append(link, use);
  return figure;
}
