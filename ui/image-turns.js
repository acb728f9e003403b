// @ts-check
/** Image generation in the conversation: a prompt's request and its pictures, live from the
 *  stream or restored from a stored turn. */
import { t } from "./i18n.js";
import { MessageView } from "./messages.js";
import { pageState } from "./state.js";
import { imageUrl } from "./urls.js";

/** @typedef {import("./chat.js").ChatController} ChatController */

/**
 * A prompt and the controls' parameters in, progress and pictures out.
 * @param {ChatController} chat @param {string} prompt @param {Record<string, unknown>} params
 */
export async function generateImage(chat, prompt, params) {
  const request = new MessageView("user", prompt, params.init_image_id ? [imageUrl(String(params.init_image_id))] : []).show();
  request.node.classList.add("image-request");
  const answer = new MessageView("assistant").show();
  answer.node.classList.add("image-answer");
  try {
    await chat.runStream("/api/images/generate", { ...params, session_id: chat.sessionId }, answer, (event) => {
      if (event.type === "turn") keep(chat, request, { ...event, kind: "image", text: prompt });
      else if (event.type === "done" && event.turn_id && request.turnId) {
        keep(chat, answer, { id: event.turn_id, role: "assistant", kind: "image", parent_id: request.turnId,
                             sibling_ids: [event.turn_id], text: "" });
      }
      if (event.type === "progress") {
        const batch = event.images > 1 ? ` · ${event.image}/${event.images}` : "";
        answer.setProgress(event.step, event.steps, `${t("imgProgress")} ${event.step}/${event.steps}${batch}`);
      } else if (event.type === "image") {
        // the stream carries the PNG itself: it shows at once, with no second request
        answer.addPicture({ id: event.id, src: `data:image/png;base64,${event.png_base64}`,
                            caption: `seed ${event.seed} · ${event.width}×${event.height}` }, chat.hooks.onUseImage);
      } else if (event.type === "done") {
        answer.finish({ finish_reason: event.finish_reason, model: event.model });
      }
    });
  } finally {
    answer.clearProgress();
  }
  await chat.hooks.onStreamEnd("image");
}

/** A saved image turn: in the page's state and among the conversation's views (no controls: a
 *  picture request is not edited or answered again). @param {ChatController} chat @param {MessageView} view
 *  @param {import("./api.js").Placement & {kind: string, text: string}} placed */
function keep(chat, view, placed) {
  pageState.place(placed);
  view.setTurnId(placed.id);
  chat.views.set(placed.id, view);
}

/** A stored image-generation turn: the prompt, or the pictures it made.
 * @param {ChatController} chat @param {any} turn @returns {MessageView} */
export function showImageTurn(chat, turn) {
  if (turn.role === "user") {
    const request = new MessageView("user", turn.text, (turn.images ?? []).map(imageUrl)).show();
    request.node.classList.add("image-request");
    request.setTurnId(turn.id);
    return request;
  }
  const view = new MessageView("assistant").show();
  view.setTurnId(turn.id);
  view.node.classList.add("image-answer");
  for (const picture of turn.pictures ?? []) {
    const caption = picture.seed === undefined ? "" : `seed ${picture.seed} · ${picture.width}×${picture.height}`;
    view.addPicture({ id: picture.id, src: imageUrl(picture.id), caption }, chat.hooks.onUseImage);
  }
  view.finish(turn);
  return view;
}
