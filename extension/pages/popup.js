// @ts-check
import { Client } from "../background/client.js";
import { api } from "../shared/browser.js";
import { falseAlarmText } from "../shared/feedback.js";
import { MSG } from "../shared/messages.js";
import { recentLine } from "../shared/recent.js";
import { autoCheckEnabled, getConnection, getSettings, setSettings } from "../shared/settings.js";
import { describe } from "../shared/verdict.js";
import { adapterFor } from "../sites/index.js";
import { showFetcher, showStatus } from "./status-view.js";

/**
 * An element of this page's own HTML by id: it is there, and of the kind the HTML says.
 * @param {string} id
 * @returns {any}
 */
const $ = (id) => document.getElementById(id);

async function status(refresh) {
  const answer = await api.runtime.sendMessage({ type: MSG.STATUS, refresh });
  showStatus($("status"), answer?.status);
  showFetcher($("fetcher"), answer?.status);
}

/**
 * A site adapter that finds videos but cannot tell their posts has stopped matching the site's
 * markup: say so, rather than let automatic checks skip them silently.
 * @param {import("../shared/messages.js").WhereAnswer | null} where
 * @param {{id: string, name: string}} adapter
 */
function showUnresolved(where, adapter) {
  const el = $("unresolved");
  const n = where?.unresolved ?? 0;
  el.hidden = !n || adapter.id === "generic";
  if (el.hidden) return;
  el.textContent = `${n} of ${where?.videos} videos found here ${n === 1 ? "is" : "are"} not resolvable to a post: `
    + `${adapter.name} may have changed its pages. Automatic checks skip ${n === 1 ? "it" : "them"}; `
    + "right-click a video to check it anyway.";
}

async function siteToggle() {
  const [tab] = await api.tabs.query({ active: true, currentWindow: true });
  const box = $("auto");
  // The page's content script says where it is: no "tabs" permission needed to read the tab's URL.
  const where = typeof tab?.id === "number"
    ? await api.tabs.sendMessage(tab.id, { type: MSG.WHERE }, { frameId: 0 }).catch(() => null) : null;
  let url;
  try {
    url = new URL(where?.url ?? "");
  } catch { /* not a page the extension runs on */ }
  if (!url || !/^https?:$/.test(url.protocol)) {
    box.disabled = true;
    $("auto-label").textContent = "Automatic checks: not available on this page";
    return;
  }
  const adapter = adapterFor(url.href);
  showUnresolved(where, adapter);
  const settings = await getSettings();
  const site = adapter.id === "generic" ? url.hostname : adapter.name;
  $("auto-label").textContent = `Check videos on ${site} automatically`;
  box.checked = autoCheckEnabled(settings, adapter.id, url.origin);
  box.addEventListener("change", async () => {
    const s = await getSettings();
    if (adapter.id === "generic") {
      if (box.checked) s.autoOrigins[url.origin] = true;
      else delete s.autoOrigins[url.origin];
      await setSettings({ autoOrigins: s.autoOrigins });
    } else {
      await setSettings({ autoSites: { ...s.autoSites, [adapter.id]: box.checked } });
    }
  });
}

async function recent() {
  const { recent: items = [] } = /** @type {{recent?: import("../background/checks.js").RecentItem[]}} */ (await api.storage.local.get("recent"));
  const { uncertainBand } = await getSettings();
  if (!items.length) return;
  $("caveat").hidden = false;
  const ul = $("recent");
  ul.replaceChildren();
  for (const item of items.slice(0, 8)) {
    /** @type {Partial<import("../shared/messages.js").Update>} */
    const update = item.phase === "done"
      ? { phase: "done", result: { verdict: item.verdict, p_fake: item.p_fake, threshold: item.threshold,
        provenance: item.provenance ?? null, error: item.error?.message ?? null } }
      : { phase: item.phase, error: item.error };
    const view = describe(update, uncertainBand);
    const li = document.createElement("li");
    const tag = document.createElement("span");
    tag.className = `tag ${view.tone}`;
    tag.textContent = view.label;
    tag.title = view.detail;
    // what and where, and when: the address itself is in the tooltip (and the link's target)
    const line = recentLine(item);
    const a = document.createElement("a");
    a.className = "url";
    a.href = item.pageUrl || line.address;
    a.target = "_blank";
    a.rel = "noreferrer";
    a.textContent = line.what;
    a.title = line.address;
    const when = document.createElement("span");
    when.className = "muted when";
    when.textContent = line.when;
    li.append(tag, a, when);
    ul.append(li);
  }
}

async function falseAlarms() {
  const s = await getConnection();
  if (!s.token) return;
  try {
    const c = await new Client(s.server, s.token).calibration();
    const text = falseAlarmText(c.answers, c.model.name);
    $("false-alarms").textContent = text + (text && c.calibration === "personal" ? " Your personal calibration is on." : "");
    $("false-alarms").hidden = !text;
  } catch { /* the status line says why the server cannot be asked */ }
}

$("options").addEventListener("click", (e) => {
  e.preventDefault();
  api.runtime.openOptionsPage();
});
status(false).then(() => status(true));
siteToggle();
recent();
falseAlarms();
