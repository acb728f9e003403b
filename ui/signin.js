// @ts-check
/** The sign-in form for a server that needs a token (shared on a LAN). The server sets an
 *  HttpOnly cookie on success, so the token never stays in the page's JavaScript. */
import { applyI18n, t } from "./i18n.js";

/** @returns {Promise<boolean>} true when the page may go on (no token needed, or signed in) */
export async function needsSignIn() {
  const response = await fetch("/api/auth/status");
  if (!response.ok) return false;
  const status = await response.json();
  return Boolean(status.required && !status.signed_in);
}

/** Replace the page with the sign-in form; reload once signed in. */
export async function showSignIn() {
  const html = await (await fetch("/ui/signin.html")).text();
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
    const response = await fetch("/api/auth/login", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ token: input.value }),
    });
    if (response.ok) {
      location.reload();
      return;
    }
    const payload = await response.json().catch(() => ({}));
    error.textContent = response.status === 401 ? t("signInWrong") : (payload?.error?.message ?? response.statusText);
    error.hidden = false;
    input.select();
  });
  document.body.dataset.signin = "1";
}
