// @ts-check
/** How turn labels are shown: emotion names, emoji and chart colours; intent names. */
import { t } from "./i18n.js";

/** How the page draws an emotion it knows (the labels themselves, and their order, come from the
 *  server: the classifier's, GET /api/stats `emotions`); any other label is drawn plainly. */
const LOOKS = /** @type {Record<string, {key: string, emoji: string, color: string}>} */ ({
  공포: { key: "emoFear", emoji: "😨", color: "#7b5ea7" },
  놀람: { key: "emoSurprise", emoji: "😮", color: "#f0a202" },
  분노: { key: "emoAnger", emoji: "😠", color: "#d64545" },
  슬픔: { key: "emoSadness", emoji: "😢", color: "#3a7bd5" },
  중립: { key: "emoNeutral", emoji: "😐", color: "#9aa3b2" },
  행복: { key: "emoHappiness", emoji: "😊", color: "#2fa36b" },
  혐오: { key: "emoDisgust", emoji: "🤢", color: "#6b8e23" },
});

/** @typedef {{label: string, key: string, emoji: string, color: string, name: string}} Emotion */

/** @param {string} label @returns {Emotion} */
export function emotionInfo(label) {
  const known = LOOKS[label];
  return known ? { label, ...known, name: t(known.key) } : { label, key: "", emoji: "•", color: "#6b7385", name: label };
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
