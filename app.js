// @ts-check
/** Wires the page: loads the HTML partials, then connects the modules in ui/. */
import { api } from "./ui/api.js";
import { ChatController, setTitle } from "./ui/chat.js";
import { generateImage } from "./ui/image-turns.js";
import { initAttachments } from "./ui/attachments.js";
import { initCodeRunner } from "./ui/code-runner.js";
import { initContextMeter } from "./ui/context-meter.js";
import { initComposer } from "./ui/composer.js";
import { initToolsMenu } from "./ui/tool-steps.js";
import { initDocuments } from "./ui/documents.js";
import { initExport } from "./ui/export.js";
import { initMemorySwitch, rememberText, showMemorySaved } from "./ui/memory-notes.js";
import { initPersonas } from "./ui/personas.js";
import { initImageMode } from "./ui/image-mode.js";
import { initSearch } from "./ui/search.js";
import { applyI18n, errorText, t } from "./ui/i18n.js";
import { badgesShown } from "./ui/labels.js";
import { renderSessions } from "./ui/sidebar.js";
import { needsSignIn, showSignIn } from "./ui/signin.js";
import { startStatusPolling } from "./ui/status.js";

async function loadPartials() {
  const slots = [...document.querySelectorAll("[data-partial]")];
  await Promise.all(slots.map(async (slot) => {
    slot.innerHTML = await api.partial(/** @type {string} */ (slot.getAttribute("data-partial"))); // our own files
  }));
  applyI18n();
}

/**
 * The page's parts, made in main() and wired to each other through this object (a part's
 * callbacks read the others when they run, not when they are made).
 * @typedef {{ config: any, composer: ReturnType<typeof initComposer>, attachments: ReturnType<typeof initAttachments>,
 *   imageMode: ReturnType<typeof initImageMode>, documents: ReturnType<typeof initDocuments>,
 *   toolsMenu: ReturnType<typeof initToolsMenu>, contextMeter: ReturnType<typeof initContextMeter>,
 *   personas: ReturnType<typeof initPersonas>, memorySwitch: ReturnType<typeof initMemorySwitch>,
 *   chat: ChatController, closeMenu: () => void }} Page
 */

const FALLBACK_CONFIG = { vision: false, max_images: 4, max_image_bytes: 10485760, image: null,
                          analysis: { enabled: false, show_badges: false } };

async function main() {
  if (await needsSignIn()) {
    await showSignIn();
    return;
  }
  await loadPartials();
  const page = /** @type {Page} */ ({ config: await api.config().catch(() => FALLBACK_CONFIG) });
  document.body.classList.toggle("hide-emotion-badges", !badgesShown(Boolean(page.config.analysis?.show_badges)));
  makeInputs(page);
  makeSideParts(page);
  page.chat = new ChatController(chatHooks(page));
  wireNavigation(page);
  const linked = new URLSearchParams(location.search).get("session"); // the dashboard's click-through
  if (linked) history.replaceState(null, "", "/");
  await page.chat.open(linked ?? page.chat.sessionId);
  await Promise.all([refreshSessions(page), page.imageMode.refreshGallery(page.chat.sessionId)]);
  startStatusPolling();
  page.composer.focus();
  document.body.dataset.ready = "1";
}

/** What the user types and attaches: the composer, attachments, image mode, documents, tools. @param {Page} page */
function makeInputs(page) {
  const { config } = page;
  const showError = (/** @type {string} */ message) => page.composer.showError(message);
  page.toolsMenu = initToolsMenu(Boolean(config.image));
  page.composer = initComposer({ onSend: (text) => send(page, text), onStop: () => page.chat.stop(),
                                 hasAttachments: () => page.attachments.count() > 0 });
  page.attachments = initAttachments({ maxImages: config.max_images, maxBytes: config.max_image_bytes,
                                       enabled: config.vision, showError,
                                       onDocument: (file) => page.documents.upload(file) });
  page.imageMode = initImageMode({ config, showError });
  page.documents = initDocuments({ currentSession: () => page.chat.sessionId, showError });
}

/** The parts beside the conversation: the context meter, personas, the memory switch. @param {Page} page */
function makeSideParts(page) {
  const showError = (/** @type {string} */ message) => page.composer.showError(message);
  page.contextMeter = initContextMeter(() => page.chat.sessionId);
  page.personas = initPersonas(showError, () => { page.chat.newChat(); page.composer.focus(); });
  page.memorySwitch = initMemorySwitch(() => page.chat.sessionId, showError);
}

/** A message, or an image prompt in image mode. @param {Page} page @param {string} text */
async function send(page, text) {
  const { imageMode, attachments, chat, composer } = page;
  const prompt = imageMode.promptOf(text);
  if (prompt !== null) {
    try {
      generateImage(chat, prompt, imageMode.body(prompt));
    } catch (error) {
      composer.showError(errorText(error));
    }
    return;
  }
  const images = await attachments.dataUrls();
  const previews = attachments.previewUrls();
  attachments.clear();
  chat.send(text, { images, previews });
}

/** What the conversation asks of the rest of the page. @param {Page} page */
function chatHooks(page) {
  const { composer, imageMode, toolsMenu, personas, memorySwitch, contextMeter } = page;
  const gallery = () => imageMode.refreshGallery(page.chat.sessionId);
  return {
    onSessionsChanged: () => Promise.all([refreshSessions(page), page.documents.refresh(), gallery()]).then(() => {}),
    // after a stream only what it changed: the sidebar's order and title; a picture, the gallery
    onStreamEnd: (/** @type {"chat"|"image"} */ kind) => Promise.all([refreshSessions(page),
                                                                      kind === "image" ? gallery() : null]).then(() => {}),
    analysis: Boolean(page.config.analysis?.enabled),
    composerOptions: () => ({ ...composer.options(), ...toolsMenu.options() }),
    onSessionChanged: (/** @type {string|null} */ id) => {
      toolsMenu.setSession(id);
      if (!id) memorySwitch.show(null, false);
      if (!id) personas.show(null, null);
    },
    personaForNew: () => personas.forNew(),
    onRemember: async (/** @type {string} */ text, /** @type {HTMLElement} */ node) => {
      const memory = await rememberText(text, (message) => composer.showError(message));
      if (memory) showMemorySaved(node, { type: "memory", action: "added", memory, previous: null });
    },
    imageParams: (/** @type {string} */ prompt) => imageMode.body(prompt),
    showFollowUp: (/** @type {boolean} */ visible) => composer.showFollowUp(visible),
    onUseImage: (/** @type {string} */ id) => imageMode.useAsInput(id),
    setBusy: (/** @type {boolean} */ busy) => composer.setBusy(busy),
    showError: (/** @type {string} */ message) => composer.showError(message),
    onContext: (/** @type {any} */ state) => contextMeter.show(state),
    onShown: () => { contextMeter.load(); },
    codeRunner: initCodeRunner({
      sandbox: page.config.sandbox,
      onSendResult: (text) => {
        if (page.chat.busy) composer.showError(t("codeWaitForAnswer"));
        else page.chat.send(text);
      },
    }),
  };
}

/** The sidebar's menu, new chat, search and export. @param {Page} page */
function wireNavigation(page) {
  const { chat, composer, imageMode } = page;
  const sidebar = /** @type {HTMLElement} */ (document.getElementById("sidebar"));
  page.closeMenu = () => sidebar.classList.remove("open");
  document.getElementById("menu-toggle")?.addEventListener("click", () => sidebar.classList.toggle("open"));
  document.getElementById("new-session")?.addEventListener("click", () => {
    chat.newChat();
    page.closeMenu();
    composer.focus();
  });
  initSearch({
    onOpen: (sessionId, turnId) => {
      imageMode.reset();
      chat.open(sessionId, turnId).then(() => Promise.all([refreshSessions(page), imageMode.refreshGallery(chat.sessionId)]));
      page.closeMenu();
    },
    showError: (message) => composer.showError(message),
  });
  initExport({ currentSession: () => chat.sessionId, onImported: () => refreshSessions(page),
               showError: (message) => composer.showError(message) });
}

/** The sidebar's list, and what the open chat's entry says (title, persona, memory switch). @param {Page} page */
async function refreshSessions(page) {
  const { chat, composer } = page;
  try {
    const sessions = await api.listSessions();
    renderSessions(sessions, chat.sessionId, sessionActions(page));
    const current = sessions.find((/** @type {any} */ s) => s.id === chat.sessionId);
    if (current) setTitle(current.title);
    page.personas.show(chat.sessionId, current?.persona_id);
    page.memorySwitch.show(chat.sessionId, Boolean(current?.memory_off)); // the list carries it: no request of its own
  } catch (error) {
    composer.showError(errorText(error));
  }
}

/** What the sidebar's entries do. @param {Page} page */
function sessionActions(page) {
  const { chat, composer, imageMode } = page;
  const failed = (/** @type {any} */ error) => composer.showError(errorText(error));
  return {
    onOpen: (/** @type {string} */ id) => {
      imageMode.reset();
      chat.open(id).then(() => Promise.all([refreshSessions(page), imageMode.refreshGallery(chat.sessionId)]));
      page.closeMenu();
    },
    onRename: async (/** @type {string} */ id, /** @type {string} */ title) => {
      try {
        await api.renameSession(id, title);
        if (id === chat.sessionId) setTitle(title);
      } catch (error) { failed(error); }
      refreshSessions(page);
    },
    onDelete: async (/** @type {string} */ id) => {
      try {
        await api.deleteSession(id);
        if (id === chat.sessionId) await chat.open(null);
      } catch (error) { failed(error); }
      refreshSessions(page);
    },
  };
}

main();
