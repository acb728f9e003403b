// @ts-check
/** Korean UI text first; English where the browser is not Korean or a Korean string is missing. */

/** @type {Record<string, string>} */
const en = {
  menu: "Menu",
  newChat: "New chat",
  noSessions: "No conversations yet.",
  untitled: "New conversation",
  welcomeTitle: "How can I help?",
  welcomeBody: "Every conversation and file stays on this PC.",
  inputPlaceholder: "Type a message (Enter to send, Shift+Enter for a new line)",
  send: "Send",
  stop: "Stop",
  rename: "Rename",
  delete: "Delete",
  confirmDelete: "Delete this conversation? This cannot be undone.",
  copy: "Copy",
  copied: "Copied",
  you: "You",
  assistant: "AI-ONE",
  statusIdle: "idle",
  statusGenerating: "generating",
  statusLoading: "loading model",
  statusUnloading: "unloading model",
  statusQueued: "waiting in queue",
  statusNoModel: "no model loaded",
  statusOffline: "server unreachable",
  statusRetrying: "retrying the load",
  attachImage: "Attach images",
  visionOff: "Image questions are off: set AIONE_VISION__MODEL_PATH and AIONE_VISION__MMPROJ_PATH",
  removeImage: "Remove image",
  notAnImage: "not a png, jpeg, webp, gif or bmp image",
  imageTooLarge: "image too large",
  tooManyImages: "too many images",
  askAboutImage: "Keep asking about this image",
  documents: "Documents",
  uploadDocument: "Upload",
  noDocuments: "No documents yet.",
  ingesting: "ingesting",
  failed: "failed",
  attach: "Use in this chat",
  attached: "Used in this chat",
  confirmDeleteDocument: "Delete this document from the library?",
  docScope: "Documents",
  scopeAll: "all documents",
  scopeSession: "this chat's documents",
  scopeNone: "none",
  sources: "Sources",
  noDocumentMatched: "No document matched; answered without references.",
  page: "p.",
  chunks: "chunks",
  duplicateDocument: "already in the library (same content)",
  positionSuffix: " ahead",
  seconds: " s",
  gpu: "GPU",
  queue: "queue",
  estimated: "estimate",
  model: "Model",
  finishStopped: "stopped",
  finishError: "error",
  finishTrimmed: "cut at the length limit",
  historyTrimmed: "older messages were left out to fit the context",
  errorPrefix: "Error",
};

/** @type {Record<string, string>} */
const ko = {
  menu: "메뉴",
  newChat: "새 대화",
  noSessions: "아직 대화가 없습니다.",
  untitled: "새 대화",
  welcomeTitle: "무엇을 도와드릴까요?",
  welcomeBody: "모든 대화와 파일은 이 PC에만 저장됩니다.",
  inputPlaceholder: "메시지를 입력하세요 (Enter 전송, Shift+Enter 줄바꿈)",
  send: "전송",
  stop: "중지",
  rename: "이름 바꾸기",
  delete: "삭제",
  confirmDelete: "이 대화를 삭제할까요? 되돌릴 수 없습니다.",
  copy: "복사",
  copied: "복사됨",
  you: "나",
  assistant: "AI-ONE",
  statusIdle: "대기 중",
  statusGenerating: "답변 생성 중",
  statusLoading: "모델 불러오는 중",
  statusUnloading: "모델 내리는 중",
  statusQueued: "순서를 기다리는 중",
  statusNoModel: "불러온 모델 없음",
  statusOffline: "서버에 연결할 수 없음",
  statusRetrying: "다시 불러오는 중",
  attachImage: "이미지 첨부",
  visionOff: "이미지 질문이 꺼져 있습니다: AIONE_VISION__MODEL_PATH와 AIONE_VISION__MMPROJ_PATH를 설정하세요",
  removeImage: "이미지 빼기",
  notAnImage: "png, jpeg, webp, gif, bmp 이미지가 아닙니다",
  imageTooLarge: "이미지가 너무 큽니다",
  tooManyImages: "이미지가 너무 많습니다",
  askAboutImage: "이 이미지에 대해 계속 묻기",
  documents: "문서",
  uploadDocument: "문서 올리기",
  noDocuments: "올린 문서가 없습니다.",
  ingesting: "처리 중",
  failed: "실패",
  attach: "이 대화에 사용",
  attached: "이 대화에 사용 중",
  confirmDeleteDocument: "이 문서를 보관함에서 삭제할까요?",
  docScope: "참고 문서",
  scopeAll: "모든 문서",
  scopeSession: "이 대화에 붙인 문서",
  scopeNone: "사용 안 함",
  sources: "출처",
  noDocumentMatched: "일치하는 문서가 없어 참고 없이 답했습니다.",
  page: "쪽",
  chunks: "조각",
  duplicateDocument: "이미 보관함에 있는 문서입니다 (같은 내용)",
  positionSuffix: "번째",
  seconds: "초",
  gpu: "GPU",
  queue: "대기열",
  estimated: "추정",
  model: "모델",
  finishStopped: "중지됨",
  finishError: "오류",
  finishTrimmed: "길이 제한으로 잘림",
  historyTrimmed: "문맥 길이에 맞추려고 오래된 메시지를 뺐습니다",
  errorPrefix: "오류",
};

const lang = (navigator.language || "ko").toLowerCase().startsWith("en") ? "en" : "ko";

/** @param {string} key */
export function t(key) {
  const table = lang === "ko" ? ko : en;
  return table[key] ?? en[key] ?? key;
}

/** Fill data-i18n (text), data-i18n-placeholder and data-i18n-label attributes under root. */
export function applyI18n(root = document) {
  document.documentElement.lang = lang;
  root.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(/** @type {string} */ (el.getAttribute("data-i18n"))); });
  root.querySelectorAll("[data-i18n-placeholder]").forEach((el) => {
    el.setAttribute("placeholder", t(/** @type {string} */ (el.getAttribute("data-i18n-placeholder"))));
  });
  root.querySelectorAll("[data-i18n-label]").forEach((el) => {
    el.setAttribute("aria-label", t(/** @type {string} */ (el.getAttribute("data-i18n-label"))));
  });
}
