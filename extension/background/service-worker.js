// @ts-check
// The background: the only place that talks to the server. Chrome runs it as a module service
// worker, Firefox as an event page (background.scripts); either may be stopped when idle, so every
// listener is registered synchronously here and all state that matters is in storage.
import { api } from "../shared/browser.js";
import { CHECK_ID, MSG, validFeedback, validFrames, validTarget } from "../shared/messages.js";
import {
  autoCheckEnabled, CONTENT_SETTING_KEYS, closeStorageToContentScripts, DEFAULTS, getConnection, getSettings, normaliseServer, setSettings,
} from "../shared/settings.js";
import { LIMITS_PAGE } from "../shared/verdict.js";
import { adapterFor } from "../sites/index.js";
import { activity, requestCheck, requestFramesCheck, setInView, tabClosed } from "./checks.js";
import { Client, ServerError, watchNetworkErrors } from "./client.js";
import { createMenus, onMenuClicked } from "./menus.js";
import { lastStatus, probeStatus } from "./status.js";

/** @typedef {import("../shared/messages.js").PairProposal} PairProposal */

watchNetworkErrors();
closeStorageToContentScripts(); // the token is in storage.local; content scripts run beside every page

api.runtime.onInstalled.addListener(() => {
  createMenus().catch((e) => console.error("menus", e));
  probeStatus().catch(() => {});
});
api.runtime.onStartup?.addListener(() => probeStatus().catch(() => {}));
api.tabs.onRemoved.addListener((tabId) => tabClosed(tabId));
(api.menus ?? api.contextMenus).onClicked.addListener((info, tab) => {
  onMenuClicked(info, tab).catch((e) => console.error("menu click", e));
});

api.storage.onChanged.addListener((changes, area) => {
  if (area !== "local") return;
  const reconnected = "token" in changes || "server" in changes;
  if (reconnected) probeStatus().catch(() => {});
  if (CONTENT_SETTING_KEYS.some((k) => k in changes)) announceSettingsChanged(reconnected).catch(() => {});
});

/**
 * Content scripts read no storage, so they hear of changed settings from here (and ask again for
 * their own). Every tab, every frame; tabs without our content script just don't answer.
 * @param {boolean} reconnected
 */
async function announceSettingsChanged(reconnected) {
  /** @type {import("../shared/messages.js").SettingsChanged} */
  const message = { type: MSG.SETTINGS_CHANGED, reconnected };
  for (const tab of await api.tabs.query({})) {
    if (typeof tab.id === "number") api.tabs.sendMessage(tab.id, message).catch(() => {});
  }
}

/**
 * What a content script needs of the settings for its frame, and nothing more: not the token,
 * not the server, not the other sites the user turned on.
 * @param {import("../shared/settings.js").Settings} settings
 * @param {string} frameUrl
 * @returns {import("../shared/messages.js").ContentSettings}
 */
function contentSettings(settings, frameUrl) {
  let origin = "";
  try {
    origin = new URL(frameUrl).origin;
  } catch { /* not a page: no automatic checks */ }
  const autoCheck = /^https?:/.test(origin) && autoCheckEnabled(settings, adapterFor(frameUrl).id, origin);
  const n = Number(settings.captureFrames);
  const captureFrames = Number.isInteger(n) && n >= 1 && n <= 100 ? n : DEFAULTS.captureFrames;
  return { uncertainBand: settings.uncertainBand, autoCheck, captureFrames };
}

const HEATMAP_PATH = /^\/v1\/checks\/[\w.-]+\/heatmap\.png$/;

/** @param {chrome.runtime.MessageSender} sender */
const fromExtensionPage = (sender) => !!sender.url?.startsWith(api.runtime.getURL(""));

/**
 * The server whose own pairing page (https on loopback, path /pair) sent this, or null.
 * @param {chrome.runtime.MessageSender} sender
 */
function pairPageServer(sender) {
  if (!sender.url) return null;
  const url = new URL(sender.url);
  return url.pathname === "/pair" ? normaliseServer(sender.origin ?? url.origin) : null;
}

/**
 * A pairing page of a server other than the configured one asked to pair: any page can send the
 * browser there, so the switch waits for the user's yes on the options page, which shows it.
 * @param {string} server @param {string} code
 */
async function proposePairing(server, code) {
  /** @type {PairProposal} */
  const pairProposal = { server, code, at: Date.now() };
  await api.storage.session.set({ pairProposal });
  await api.runtime.openOptionsPage();
}

/** @param {unknown} e @returns {import("../shared/messages.js").Failure} */
function failure(e) {
  return { ok: false, error: e instanceof ServerError ? e.toJSON() : { error: "internal", message: String(e) } };
}

/** @param {string} error @param {string} message @returns {import("../shared/messages.js").Failure} */
const refuse = (error, message) => ({ ok: false, error: { error, message } });

/** @typedef {import("../shared/messages.js").Request} Request */
/**
 * @template {Request["type"]} T
 * @typedef {(msg: Extract<Request, {type: T}>, sender: chrome.runtime.MessageSender) => Promise<import("../shared/messages.js").AnswerTo[T]>} Handler
 */

// One handler per request type of shared/messages.js: (request, sender) → its answer. The type
// makes tsc fail when a request type has no handler here, a handler no request type, or an
// answer does not match its typedef.
/** @type {{[T in Request["type"]]: Handler<T>}} */
const handlers = {
  async [MSG.CHECK](msg, sender) {
    const target = validTarget(msg.target);
    if (!target) return refuse("bad_url", "No usable http(s) address for this video.");
    return { ok: true, update: await requestCheck(target, sender, msg.reason === "menu" ? "menu" : "auto") };
  },

  async [MSG.CHECK_FRAMES](msg, sender) {
    const withFrames = msg.frames !== undefined;
    const req = validFrames(withFrames ? msg : { ...msg, frames: ["AA=="], times: [0] });
    if (!req) return refuse("bad_request", "Not a usable set of captured frames.");
    try {
      return { ok: true, update: await requestFramesCheck(req, sender, msg.reason === "menu" ? "menu" : "auto", withFrames) };
    } catch (e) {
      return failure(e);
    }
  },

  async [MSG.STATUS](msg) {
    return { ok: true, status: (!msg.refresh && (await lastStatus())) || (await probeStatus()), activity: activity() };
  },

  // The options page may pair with any loopback server (the user typed, pasted or confirmed it);
  // a /pair page only with the server already configured: a success replaces the token, and with
  // another server it would receive every checked URL and decide every verdict.
  async [MSG.PAIR](msg, sender) {
    const s = await getSettings();
    let server = s.server;
    if (fromExtensionPage(sender)) {
      if (msg.server !== undefined) server = normaliseServer(msg.server) ?? "";
      if (!server) return refuse("bad_server", "The server must be https://127.0.0.1:PORT or https://localhost:PORT.");
    } else {
      const page = pairPageServer(sender);
      if (!page) return refuse("forbidden", "Pairing is only accepted from the server's own /pair page or the options.");
      if (page !== s.server) {
        await proposePairing(page, String(msg.code || ""));
        return refuse("confirm_needed", `Deepfake Check is set to use ${s.server}, not this server. `
          + "To switch, confirm it on the extension's options page (it has opened).");
      }
    }
    const client = new Client(server, null);
    try {
      const token = await client.pair(String(msg.code || ""));
      await setSettings({ server: client.server, token });
    } catch (e) {
      return failure(e);
    }
    return { ok: true, status: await probeStatus() };
  },

  async [MSG.HEATMAP](msg) {
    if (!HEATMAP_PATH.test(msg.path || "")) return refuse("bad_request", "Not a heatmap path.");
    const s = await getConnection();
    try {
      return { ok: true, dataUrl: await new Client(s.server, s.token).heatmapDataUrl(msg.path) };
    } catch (e) {
      return failure(e);
    }
  },

  async [MSG.OPEN_LIMITS]() {
    await api.tabs.create({ url: api.runtime.getURL(LIMITS_PAGE) });
    return { ok: true };
  },

  async [MSG.SETTINGS](msg, sender) {
    return { ok: true, settings: contentSettings(await getSettings(), sender.url ?? "") };
  },

  async [MSG.IN_VIEW](msg, sender) {
    const urls = Array.isArray(msg.urls) ? msg.urls.filter((u) => typeof u === "string" && u.length <= 4200) : [];
    setInView(urls, sender);
    return { ok: true };
  },

  // Only the configured server's own /pair page learns this, and only whether it is paired with it.
  async [MSG.PAIR_STATE](msg, sender) {
    const page = pairPageServer(sender);
    const { server, token } = await getConnection();
    if (!page || page !== server || !token) return { ok: true, paired: false };
    const status = await probeStatus();
    return { ok: true, paired: status.state === "connected" };
  },

  // "Is this right?" in a badge's panel: the user's answer on a finished check (docs/api.md POST /v1/feedback).
  async [MSG.FEEDBACK](msg) {
    const answer = validFeedback(msg);
    if (!answer) return refuse("bad_request", "Not a usable answer (REAL, FAKE or none, a note of at most 1000 characters).");
    const s = await getConnection();
    try {
      return { ok: true, entry: await new Client(s.server, s.token).feedback(answer.checkId, answer.label, answer.note) };
    } catch (e) {
      return failure(e);
    }
  },

  // "Keep this clip for retraining": the server fetches the post again, and keeps it only if it is
  // the address that was checked (it compares it with the check's own).
  async [MSG.KEEP_CLIP](msg) {
    const target = validTarget({ url: msg.url });
    if (typeof msg.checkId !== "string" || !CHECK_ID.test(msg.checkId) || !target) {
      return refuse("bad_request", "Not a check and an http(s) address.");
    }
    const s = await getConnection();
    const client = new Client(s.server, s.token);
    try {
      return { ok: true, entry: msg.keep ? await client.keepClip(msg.checkId, { url: target.url }) : await client.dropClip(msg.checkId) };
    } catch (e) {
      return failure(e);
    }
  },
};

async function handle(msg, sender) {
  // Own keys only: a message typed "constructor" or "__proto__" must not find Object's.
  if (!Object.hasOwn(handlers, msg?.type)) return refuse("bad_request", `Unknown message ${msg?.type}`);
  return handlers[msg.type](msg, sender);
}

api.runtime.onMessage.addListener((msg, sender, sendResponse) => {
  if (sender.id !== api.runtime.id) return false;
  handle(msg, sender).then(sendResponse, (e) => sendResponse({ ok: false, error: { error: "internal", message: String(e?.message || e) } }));
  return true; // answer asynchronously
});

// For the browser tests and the devtools console: the same functions the listeners call.
globalThis.deepfakeCheck = { onMenuClicked, requestCheck, probeStatus, activity };
