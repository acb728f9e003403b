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
import { applyI18n, t } from "./ui/i18n.js";
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

async function main() {
  if (await needsSignIn()) {
    await showSignIn();
    return;
  }
  await loadPartials();
  const config = await api.config().catch(() => ({ vision: false, max_images: 4, max_image_bytes: 10485760, image: null,
                                                  analysis: { enabled: false, show_badges: false } }));
  document.body.classList.toggle("hide-emotion-badges", !badgesShown(Boolean(config.analysis?.show_badges)));
  const toolsMenu = initToolsMenu(Boolean(config.image));
  const composer = initComposer({
    onSend: async (text) => {
      const prompt = imageMode.promptOf(text);
      if (prompt !== null) {
        try {
          generateImage(chat, prompt, imageMode.body(prompt));
        } catch (error) {
          composer.showError(String(/** @type {any} */ (error).message ?? error));
        }
        return;
      }
      const images = await attachments.dataUrls();
      const previews = attachments.previewUrls();
      attachments.clear();
      chat.send(text, { images, previews });
    },
    onStop: () => chat.stop(),
    hasAttachments: () => attachments.count() > 0,
  });
  const attachments = initAttachments({
    maxImages: config.max_images, maxBytes: config.max_image_bytes, enabled: config.vision,
    showError: (message) => composer.showError(message),
    onDocument: (file) => documents.upload(file),
  });
  const imageMode = initImageMode({ config, showError: (message) => composer.showError(message) });
  const documents = initDocuments({
    currentSession: () => chat.sessionId,
    showError: (message) => composer.showError(message),
  });

  const refreshSessions = async () => {
    try {
      const sessions = await api.listSessions();
      renderSessions(sessions, chat.sessionId, {
        onOpen: (id) => {
          imageMode.reset();
          chat.open(id).then(() => Promise.all([refreshSessions(), imageMode.refreshGallery(chat.sessionId)]));
          closeMenu();
        },
        onRename: async (id, title) => {
          try {
            await api.renameSession(id, title);
            if (id === chat.sessionId) setTitle(title);
          } catch (error) { composer.showError(String(/** @type {any} */ (error).message)); }
          refreshSessions();
        },
        onDelete: async (id) => {
          try {
            await api.deleteSession(id);
            if (id === chat.sessionId) await chat.open(null);
          } catch (error) { composer.showError(String(/** @type {any} */ (error).message)); }
          refreshSessions();
        },
      });
      const current = sessions.find((/** @type {any} */ s) => s.id === chat.sessionId);
      if (current) setTitle(current.title);
      personas.show(chat.sessionId, current?.persona_id);
      memorySwitch.show(chat.sessionId, Boolean(current?.memory_off)); // the list carries it: no request of its own
    } catch (error) {
      composer.showError(String(/** @type {any} */ (error).message ?? error));
    }
  };

  const contextMeter = initContextMeter(() => chat.sessionId);
  const personas = initPersonas((message) => composer.showError(message), () => { chat.newChat(); composer.focus(); });
  const memorySwitch = initMemorySwitch(() => chat.sessionId, (message) => composer.showError(message));
  const chat = new ChatController({
    onSessionsChanged: () => Promise.all([refreshSessions(), documents.refresh(),
                                          imageMode.refreshGallery(chat.sessionId)]).then(() => {}),
    // after a stream only what it changed: the sidebar's order and title; a picture, the gallery
    onStreamEnd: (kind) => Promise.all([refreshSessions(),
                                        kind === "image" ? imageMode.refreshGallery(chat.sessionId) : null]).then(() => {}),
    analysis: Boolean(config.analysis?.enabled),
    composerOptions: () => ({ ...composer.options(), ...toolsMenu.options() }),
    onSessionChanged: (id) => {
      toolsMenu.setSession(id);
      if (!id) memorySwitch.show(null, false);
      if (!id) personas.show(null, null);
    },
    personaForNew: () => personas.forNew(),
    onRemember: async (text, node) => {
      const memory = await rememberText(text, (message) => composer.showError(message));
      if (memory) showMemorySaved(node, { type: "memory", action: "added", memory, previous: null });
    },
    imageParams: (prompt) => imageMode.body(prompt),
    showFollowUp: (visible) => composer.showFollowUp(visible),
    onUseImage: (id) => imageMode.useAsInput(id),
    setBusy: (busy) => composer.setBusy(busy),
    showError: (message) => composer.showError(message),
    onContext: (state) => contextMeter.show(state),
    onShown: () => { contextMeter.load(); },
    codeRunner: initCodeRunner({
      sandbox: config.sandbox,
      onSendResult: (text) => {
        if (chat.busy) composer.showError(t("codeWaitForAnswer"));
        else chat.send(text);
      },
    }),
  });

  const sidebar = /** @type {HTMLElement} */ (document.getElementById("sidebar"));
  const closeMenu = () => sidebar.classList.remove("open");
  document.getElementById("menu-toggle")?.addEventListener("click", () => sidebar.classList.toggle("open"));
  document.getElementById("new-session")?.addEventListener("click", () => { chat.newChat(); closeMenu(); composer.focus(); });

  initSearch({
    onOpen: (sessionId, turnId) => {
      imageMode.reset();
      chat.open(sessionId, turnId).then(() => Promise.all([refreshSessions(), imageMode.refreshGallery(chat.sessionId)]));
      closeMenu();
    },
    showError: (message) => composer.showError(message),
  });
  initExport({ currentSession: () => chat.sessionId, onImported: () => refreshSessions(),
               showError: (message) => composer.showError(message) });
  const linked = new URLSearchParams(location.search).get("session"); // the dashboard's click-through
  if (linked) history.replaceState(null, "", "/");
  await chat.open(linked ?? chat.sessionId);
  await Promise.all([refreshSessions(), imageMode.refreshGallery(chat.sessionId)]);
  startStatusPolling();
  composer.focus();
  document.body.dataset.ready = "1";
}

main();
