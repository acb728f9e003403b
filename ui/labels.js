// @ts-check
/** How turn labels are shown: emotion names, emoji and chart colours; intent names. */
import { t } from "./i18n.js";

/** The seven emotions in the reference model's order, with what the page draws for each. */
export const EMOTIONS = /** @type {const} */ ([
  { label: "공포", key: "emoFear", emoji: "😨", color: "#7b5ea7" },
  { label: "놀람", key: "emoSurprise", emoji: "😮", color: "#f0a202" },
  { label: "분노", key: "emoAnger", emoji: "😠", color: "#d64545" },
  { label: "슬픔", key: "emoSadness", emoji: "😢", color: "#3a7bd5" },
  { label: "중립", key: "emoNeutral", emoji: "😐", color: "#9aa3b2" },
  { label: "행복", key: "emoHappiness", emoji: "😊", color: "#2fa36b" },
  { label: "혐오", key: "emoDisgust", emoji: "🤢", color: "#6b8e23" },
]);

/** @param {string} label */
export function emotionInfo(label) {
  const known = EMOTIONS.find((e) => e.label === label);
  return known ? { ...known, name: t(known.key) } : { label, key: "", emoji: "•", color: "#6b7385", name: label };
}

/** @param {string} label e.g. "image_generation" */
export function intentName(label) {
  return t(`intent_${label}`);
}

const BADGES_KEY = "aione.emotionBadges";

/** Whether the chat shows emotion badges: the page's own choice, else the server's default. @param {boolean} serverDefault */
export function badgesShown(serverDefault) {
  const saved = localStorage.getItem(BADGES_KEY);
  return saved === null ? serverDefault : saved === "1";
}

/** @param {boolean} shown */
export function setBadgesShown(shown) {
  localStorage.setItem(BADGES_KEY, shown ? "1" : "0");
}
