// @ts-check
/** The sign-in form for a server that needs a token (shared on a LAN). The server sets an
 *  HttpOnly cookie on success, so the token never stays in the page's JavaScript. */
import { api } from "./api.js";
import { applyI18n, t } from "./i18n.js";

/** @returns {Promise<boolean>} true when the server needs a token this page has not given yet */
export async function needsSignIn() {
  const status = await api.authStatus().catch(() => ({ required: false }));
  return Boolean(status.required && !status.signed_in);
}

/** Replace the page with the sign-in form; reload once signed in. */
export async function showSignIn() {
  const html = await api.partial("/ui/signin.html");
  const overlay = document.createElement("main");
  overlay.className = "signin";
  overlay.innerHTML = html; // our own static partial, never user or model text
  document.body.replaceChildren(overlay);
  applyI18n(overlay);
  const form = /** @type {HTMLFormElement} */ (overlay.querySelector("#signin-form"));
  const input = /** @type {HTMLInputElement} */ (overlay.querySelector("#signin-token"));
  const error = /** @type {HTMLElement} */ (overlay.querySelector("#signin-error"));
  input.focus();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api.signIn(input.value);
      location.reload();
    } catch (failure) {
      const status = /** @type {any} */ (failure).status;
      error.textContent = status === 401 ? t("signInWrong") : String(/** @type {any} */ (failure).message);
      error.hidden = false;
      input.select();
    }
  });
  document.body.dataset.signin = "1";
}
