// @ts-check
// The background: the only place that talks to the server. Chrome runs it as a module service
// worker, Firefox as an event page (background.scripts); either may be stopped when idle, so every
// listener is registered synchronously here and all state that matters is in storage.
import { api } from "../shared/browser.js";
import { MSG, validTarget } from "../shared/messages.js";
import { getSettings, normaliseServer, setSettings } from "../shared/settings.js";
import { LIMITS_PAGE } from "../shared/verdict.js";
import { activity, requestCheck } from "./checks.js";
import { Client, ServerError, watchNetworkErrors } from "./client.js";
import { createMenus, onMenuClicked } from "./menus.js";
import { lastStatus, probeStatus } from "./status.js";

watchNetworkErrors();

api.runtime.onInstalled.addListener(() => {
  createMenus().catch((e) => console.error("menus", e));
  probeStatus().catch(() => {});
});
api.runtime.onStartup?.addListener(() => probeStatus().catch(() => {}));
(api.menus ?? api.contextMenus).onClicked.addListener((info, tab) => {
  onMenuClicked(info, tab).catch((e) => console.error("menu click", e));
});

api.storage.onChanged.addListener((changes, area) => {
  if (area === "local" && ("token" in changes || "server" in changes)) probeStatus().catch(() => {});
});

const HEATMAP_PATH = /^\/v1\/checks\/[\w.-]+\/heatmap\.png$/;

/** May this sender pair us with that server? The options page may; a /pair page only for itself. */
function pairServer(msg, sender) {
  const fromExtensionPage = sender.url?.startsWith(api.runtime.getURL(""));
  if (fromExtensionPage) return msg.server ? normaliseServer(msg.server) : undefined;
  const origin = sender.origin ?? (sender.url ? new URL(sender.url).origin : null);
  const server = normaliseServer(origin);
  return server && server === normaliseServer(msg.server) && new URL(sender.url).pathname === "/pair" ? server : null;
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

  async [MSG.STATUS](msg) {
    return { ok: true, status: (!msg.refresh && (await lastStatus())) || (await probeStatus()), activity: activity() };
  },

  async [MSG.PAIR](msg, sender) {
    const server = pairServer(msg, sender);
    if (server === null) return refuse("forbidden", "Pairing is only accepted from the server's own /pair page or the options.");
    const s = await getSettings();
    const client = new Client(server ?? s.server, null);
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
    const s = await getSettings();
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
