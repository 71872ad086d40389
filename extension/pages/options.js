// @ts-check
import { Client } from "../background/client.js";
import { api } from "../shared/browser.js";
import { MSG } from "../shared/messages.js";
import { getConnection, getSettings, normaliseServer, setServer, setSettings } from "../shared/settings.js";
import { SITES } from "../sites/index.js";
import { showFetcher, showStatus } from "./status-view.js";

/**
 * An element of this page's own HTML by id: it is there, and of the kind the HTML says.
 * @param {string} id
 * @returns {any}
 */
const $ = (id) => document.getElementById(id);

async function refreshStatus() {
  const answer = await api.runtime.sendMessage({ type: MSG.STATUS, refresh: true });
  showStatus($("status"), answer?.status);
  showFetcher($("fetcher"), answer?.status);
  await showLogin(answer?.status);
}

/**
 * "Posts behind a login": which browser's login the server can use (its --cookies-from-browser),
 * what that means (shown once, before any site can be turned on), and the sites it is on for.
 * @param {import("../shared/messages.js").Status | undefined} status
 */
async function showLogin(status) {
  const s = await getSettings();
  const browser = status?.fetcher?.cookies_from ?? null;
  const known = status?.state === "connected" && status.fetcher != null;
  $("login-state").textContent = !known
    ? "The server's settings are not known yet (it must be running and paired)."
    : browser
      ? `The server can fetch posts with your ${browser} login, for the sites turned on here (all are off until you turn them on). `
        + "For a check of such a site it reads only that site's cookies, on this machine, and sends them only to that site."
      : "Off: the server fetches every post anonymously. To check posts that need your login, start the server with "
        + "--cookies-from-browser BROWSER (firefox, chrome, chromium, edge, brave…), then turn on the sites here.";
  for (const el of document.querySelectorAll(".login-browser")) el.textContent = browser ?? "";
  $("login-notice").hidden = !browser || s.loginNoticeSeen;
  const usable = !!browser && s.loginNoticeSeen;
  const box = $("login-sites");
  box.replaceChildren();
  for (const site of SITES) {
    const label = document.createElement("label");
    label.className = "row";
    const input = document.createElement("input");
    input.type = "checkbox";
    input.id = `login-${site.id}`;
    input.checked = !!s.loginSites[site.id];
    input.disabled = !usable;
    input.addEventListener("change", async () => {
      const cur = await getSettings();
      await setSettings({ loginSites: { ...cur.loginSites, [site.id]: input.checked } });
    });
    label.append(input, `Use my login on ${site.name}`);
    box.append(label);
  }
}

/** "ABCD-2345" or "https://127.0.0.1:8765/pair#code=ABCD-2345" → {code, server?}. */
export function parsePairing(text) {
  const t = text.trim();
  const link = t.match(/^(https:\/\/[^/#]+)\/pair#code=([A-Za-z0-9-]+)/);
  if (link) return { server: link[1], code: link[2] };
  return /^[A-Za-z0-9]{4}-?[A-Za-z0-9]{4}$/.test(t) ? { code: t } : null;
}

/** @param {string} code @param {string | undefined} server */
async function pairWith(code, server) {
  const out = $("pair-result");
  out.dataset.ok = "";
  out.textContent = "Pairing…";
  /** @type {import("../shared/messages.js").PairAnswer} */
  const answer = await api.runtime.sendMessage({ type: MSG.PAIR, code, server });
  out.dataset.ok = String(!!answer?.ok);
  out.textContent = answer?.ok ? "Paired." : `Not paired: ${answer?.error?.message ?? "no answer"}`;
  if (answer?.ok) {
    $("code").value = "";
    $("server").value = (await getSettings()).server;
    showStatus($("status"), answer.status);
    showFetcher($("fetcher"), answer.status);
    await showLogin(answer.status);
  }
}

/** @param {string} text */
async function pair(text) {
  const out = $("pair-result");
  const parsed = parsePairing(text);
  if (!parsed) {
    out.dataset.ok = "false";
    out.textContent = "That is not a pairing code (like ABCD-2345) or a pairing link.";
    return;
  }
  if (parsed.server && !normaliseServer(parsed.server)) {
    out.dataset.ok = "false";
    out.textContent = "The link must point to https://127.0.0.1 or https://localhost.";
    return;
  }
  await pairWith(parsed.code, parsed.server);
}

const PROPOSAL_TTL_MS = 10 * 60_000; // the server's pairing code is valid this long

/**
 * Another server's pairing page asked to pair (the service worker keeps its proposal in
 * storage.session and opened this page): show it, and pair only on the user's yes.
 */
async function showProposal() {
  const { pairProposal: p } = /** @type {{pairProposal?: import("../shared/messages.js").PairProposal}} */ (
    await api.storage.session.get("pairProposal"));
  const box = $("confirm-box");
  box.hidden = !p || Date.now() - p.at > PROPOSAL_TTL_MS;
  if (box.hidden || !p) return;
  $("confirm-server").textContent = p.server;
  $("confirm-current").textContent = (await getSettings()).server;
  box.scrollIntoView({ block: "center" });
  $("confirm-pair").focus();
}

async function answerProposal(/** @type {boolean} */ yes) {
  const { pairProposal: p } = /** @type {{pairProposal?: import("../shared/messages.js").PairProposal}} */ (
    await api.storage.session.get("pairProposal"));
  await api.storage.session.remove("pairProposal");
  $("confirm-box").hidden = true;
  if (yes && p) await pairWith(p.code, p.server);
}

/**
 * The personal calibration: which cuts are in use, how many answers there are, and before/after on them.
 * @param {"get" | "refit" | "undo"} action
 */
async function calibration(action) {
  const out = $("calibration-state");
  const s = await getConnection();
  let c;
  try {
    c = await new Client(s.server, s.token).calibration(action);
  } catch (e) {
    out.dataset.state = "error";
    out.textContent = action === "get" ? `Not known: ${e.message}` : `Not done: ${e.message}`;
    if (action !== "get") await calibration("get").catch(() => {});
    return;
  }
  const p = c.personal;
  out.dataset.state = c.calibration;
  out.textContent = p
    ? `On: your personal cuts for ${p.model ?? "this model"} (REAL up to ${(p.threshold - p.uncertain_band).toFixed(3)}, FAKE from `
      + `${(p.threshold + p.uncertain_band).toFixed(3)}; the model's: FAKE from ${(p.model_threshold + p.model_band).toFixed(3)}), `
      + `fitted on ${p.answers} answered videos on ${p.date}`
      + `${p.fake_cut_fitted ? "" : `; too few real videos (${p.reals}) to move the FAKE cut`}.`
    : `Off: the model's own cuts. ${c.usable_answers} of the ${c.min_answers} answered videos needed on this model's checks.`;
  $("calibration-refit").disabled = c.usable_answers < c.min_answers;
  $("calibration-undo").disabled = !p;
  const table = $("calibration-table");
  table.hidden = !p;
  if (!p) return;
  const rows = [];
  for (const truth of ["real", "fake"]) {
    for (const v of ["REAL", "UNCERTAIN", "FAKE"]) {
      const tr = document.createElement("tr");
      for (const text of [`${truth} (${Object.values(p.before[truth]).reduce((a, b) => a + b, 0)})`, v, p.before[truth][v], p.after[truth][v]]) {
        const td = document.createElement("td");
        td.textContent = String(text);
        tr.append(td);
      }
      rows.push(tr);
    }
  }
  table.tBodies[0].replaceChildren(...rows);
}

async function main() {
  $("login-notice-ok").addEventListener("click", async () => {
    await setSettings({ loginNoticeSeen: true });
    await refreshStatus();
  });
  $("confirm-pair").addEventListener("click", () => answerProposal(true));
  $("confirm-ignore").addEventListener("click", () => answerProposal(false));
  api.storage.onChanged.addListener((changes, area) => {
    if (area === "session" && "pairProposal" in changes) showProposal();
  });
  showProposal();

  const s = await getSettings();
  $("server").value = s.server;
  $("band").value = s.uncertainBand ?? "";
  $("history-urls").checked = s.historyUrls;
  $("history-urls").addEventListener("change", () => setSettings({ historyUrls: $("history-urls").checked }));
  $("calibration-refit").addEventListener("click", () => calibration("refit"));
  $("calibration-undo").addEventListener("click", () => calibration("undo"));
  calibration("get");

  $("pair-form").addEventListener("submit", (e) => {
    e.preventDefault();
    pair($("code").value);
  });
  // One paste is enough: a pasted code or link pairs at once.
  $("code").addEventListener("paste", () => setTimeout(() => parsePairing($("code").value) && pair($("code").value), 0));

  $("server-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const server = normaliseServer($("server").value);
    if (!server) {
      $("server").setCustomValidity("Use https://127.0.0.1:PORT or https://localhost:PORT");
      $("server").reportValidity();
      return;
    }
    $("server").setCustomValidity("");
    await setServer(server); // another server: unpaired until paired with it
    refreshStatus();
  });

  $("band").addEventListener("change", async () => {
    const v = $("band").value === "" ? null : Math.min(1, Math.max(0, Number($("band").value)))  // up to 1: a model whose cut is far from 0.5 (0.62) must still be reachable from both ends;
    await setSettings({ uncertainBand: Number.isFinite(v) ? v : null });
  });
  $("band-reset").addEventListener("click", async () => {
    $("band").value = "";
    await setSettings({ uncertainBand: null });
  });

  const sites = $("sites");
  for (const site of SITES) {
    const label = document.createElement("label");
    label.className = "row";
    const box = document.createElement("input");
    box.type = "checkbox";
    box.id = `site-${site.id}`;
    box.checked = !!s.autoSites[site.id];
    box.addEventListener("change", async () => {
      const cur = await getSettings();
      await setSettings({ autoSites: { ...cur.autoSites, [site.id]: box.checked } });
    });
    label.append(box, site.name);
    sites.append(label);
  }
  const origins = Object.keys(s.autoOrigins);
  if (origins.length) {
    const ul = $("origins");
    ul.replaceChildren();
    for (const o of origins) {
      const li = document.createElement("li");
      const rm = document.createElement("button");
      rm.textContent = "Turn off";
      rm.addEventListener("click", async () => {
        const cur = await getSettings();
        delete cur.autoOrigins[o];
        await setSettings({ autoOrigins: cur.autoOrigins });
        li.remove();
      });
      li.append(`${o} `, rm);
      ul.append(li);
    }
  }
  refreshStatus();
}

main();
