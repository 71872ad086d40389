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

async function handle(msg, sender) {
  switch (msg?.type) {
    case MSG.CHECK: {
      const target = validTarget(msg.target);
      if (!target) return { ok: false, error: { error: "bad_url", message: "No usable http(s) address for this video." } };
      return { ok: true, update: await requestCheck(target, sender, msg.reason === "menu" ? "menu" : "auto") };
    }
    case MSG.STATUS:
      return { ok: true, status: (!msg.refresh && (await lastStatus())) || (await probeStatus()), activity: activity() };
    case MSG.PAIR: {
      const server = pairServer(msg, sender);
      if (server === null) return { ok: false, error: { error: "forbidden", message: "Pairing is only accepted from the server's own /pair page or the options." } };
      const s = await getSettings();
      const client = new Client(server ?? s.server, null);
      try {
        const token = await client.pair(String(msg.code || ""));
        await setSettings({ server: client.server, token });
      } catch (e) {
        return { ok: false, error: e instanceof ServerError ? e.toJSON() : { error: "internal", message: String(e) } };
      }
      return { ok: true, status: await probeStatus() };
    }
    case MSG.HEATMAP: {
      if (!HEATMAP_PATH.test(msg.path || "")) return { ok: false, error: { error: "bad_request", message: "Not a heatmap path." } };
      const s = await getSettings();
      try {
        return { ok: true, dataUrl: await new Client(s.server, s.token).heatmapDataUrl(msg.path) };
      } catch (e) {
        return { ok: false, error: e instanceof ServerError ? e.toJSON() : { error: "internal", message: String(e) } };
      }
    }
    case MSG.OPEN_LIMITS:
      await api.tabs.create({ url: api.runtime.getURL(LIMITS_PAGE) });
      return { ok: true };
    default:
      return { ok: false, error: { error: "bad_request", message: `Unknown message ${msg?.type}` } };
  }
}

api.runtime.onMessage.addListener((msg, sender, sendResponse) => {
  if (sender.id !== api.runtime.id) return false;
  handle(msg, sender).then(sendResponse, (e) => sendResponse({ ok: false, error: { error: "internal", message: String(e?.message || e) } }));
  return true; // answer asynchronously
});

// For the browser tests and the devtools console: the same functions the listeners call.
globalThis.deepfakeCheck = { onMenuClicked, requestCheck, probeStatus, activity };
