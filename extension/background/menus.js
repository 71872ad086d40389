// @ts-check
// The right-click items. The content script knows which element was right-clicked (it remembers it
// from a capture-phase contextmenu listener; Firefox: menus.getTargetElement), so the click is
// handed to that frame; only when no content script answers is the menu's own URL checked.
import { api } from "../shared/browser.js";
import { MSG, validTarget } from "../shared/messages.js";
import { requestCheck } from "./checks.js";

const menus = () => api.menus ?? api.contextMenus;

/**
 * @typedef {object} MenuItem
 * @property {string} id
 * @property {import("../shared/messages.js").MenuKind} kind
 * @property {string} title
 * @property {[`${chrome.contextMenus.ContextType}`]} contexts
 */

/** @type {MenuItem[]} */
export const ITEMS = [
  { id: "check-video", kind: "video", title: "Check this video for deepfakes", contexts: ["video"] },
  // whatever the video's source: frames taken in the page (a post behind a login, blob:, live)
  { id: "check-playing", kind: "playing", title: "Check what's playing for deepfakes", contexts: ["video"] },
  { id: "watch-video", kind: "watch", title: "Watch this video for deepfakes (live)", contexts: ["video"] },
  { id: "check-link", kind: "link", title: "Check this link for deepfakes", contexts: ["link"] },
  { id: "check-image", kind: "image", title: "Check this image for deepfakes", contexts: ["image"] },
];

export async function createMenus() {
  await menus().removeAll();
  for (const { id, title, contexts } of ITEMS) menus().create({ id, title, contexts });
}

/**
 * A right-click item was chosen: the frame's content script checks the element it remembers;
 * failing that, the URL the browser reports is checked.
 * @param {chrome.contextMenus.OnClickData & {targetElementId?: number}} info
 * @param {chrome.tabs.Tab | undefined} tab
 */
export async function onMenuClicked(info, tab) {
  const item = ITEMS.find((i) => i.id === info.menuItemId);
  if (!item || typeof tab?.id !== "number") return { ok: false };
  /** @type {import("../shared/messages.js").MenuInfo} */
  const payload = {
    kind: item.kind, srcUrl: info.srcUrl ?? null, linkUrl: info.linkUrl ?? null, pageUrl: info.pageUrl ?? null,
    frameUrl: info.frameUrl ?? null, targetElementId: info.targetElementId ?? null,
  };
  try {
    /** @type {import("../shared/messages.js").MenuTargetRequest} */
    const request = { type: MSG.MENU_TARGET, info: payload };
    /** @type {import("../shared/messages.js").MenuTargetAnswer | undefined} */
    const answer = await api.tabs.sendMessage(tab.id, request, { frameId: info.frameId ?? 0 });
    if (answer?.ok) return answer;
  } catch { /* no content script in that frame */ }
  if (item.kind === "playing" || item.kind === "watch") return { ok: false }; // only the page has the pixels
  const src = /^https?:/.test(info.srcUrl || "") ? info.srcUrl : null;
  const url = item.kind === "link" ? info.linkUrl : item.kind === "image" ? src : src || info.frameUrl || info.pageUrl;
  const target = validTarget({ url, pageUrl: info.pageUrl, kind: item.kind });
  if (!target) return { ok: false };
  const update = await requestCheck(target, { tab, frameId: info.frameId ?? 0 }, "menu");
  return { ok: true, target, update, fallback: true };
}
