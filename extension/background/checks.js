// @ts-check
// Checks of URLs: one server job per resolved URL, at most MAX_ACTIVE automatic ones at a time,
// progress pushed to every tab frame that asked. State lives in storage.session (the service
// worker may be stopped at any time); only promises and timers live in memory.
import { api } from "../shared/browser.js";
import { MSG } from "../shared/messages.js";
import { getConnection, getSettings, loginEnabled } from "../shared/settings.js";
import { adapterFor } from "../sites/index.js";
import { Client, ServerError, updateFromCheck } from "./client.js";
import { probeStatus } from "./status.js";

export const MAX_ACTIVE = 2;
const RECENT_MAX = 20;
const KEEP_CHECKS = 400; // storage.session is ~10 MB: forget the oldest answers beyond this many
const KEY = (/** @type {string} */ url) => `check:${url}`;
const CONNECTION_ERRORS = new Set(["not_running", "cert_untrusted", "not_paired"]);

/** @typedef {import("../shared/messages.js").Target} Target */
/** @typedef {import("../shared/messages.js").Update} Update */
/** @typedef {import("../shared/messages.js").Reason} Reason */
/** @typedef {{tabId: number, frameId: number}} Subscriber  a frame that asked and gets check-update messages */
/**
 * A check as this worker keeps it, in storage.session under "check:URL".
 * @typedef {Target & Update & {subs?: Subscriber[], updated?: number, retryIn?: number}} CheckRecord
 */
/**
 * One line of the popup's "last checks" (storage.local "recent").
 * @typedef {object} RecentItem
 * @property {string} url
 * @property {string | null} pageUrl
 * @property {string} kind
 * @property {number} time
 * @property {Update["phase"]} phase
 * @property {string | null} id
 * @property {string | null} verdict
 * @property {number | null} p_fake
 * @property {number | null} confidence
 * @property {number | null} threshold
 * @property {import("../shared/messages.js").ErrorBody | null} error
 */

/** @type {Map<string, CheckRecord>} */
const recs = new Map(); // url → record (mirror of storage.session)
/** @type {Map<string, Promise<void>>} */
const running = new Map(); // url → Promise of the job this worker is following
let active = 0;
/** @type {(() => void)[]} */
const waiting = [];

/** @returns {Promise<void>} */
function acquire() {
  return new Promise((resolve) => {
    if (active < MAX_ACTIVE) {
      active++;
      resolve();
    } else waiting.push(resolve);
  });
}

function release() {
  const next = waiting.shift();
  if (next) next();
  else active--;
}

// Chrome stops an idle service worker after 30 s; a fetch stream alone does not count as activity.
let keepAlive = null;
function holdAlive() {
  keepAlive ??= setInterval(() => api.runtime.getPlatformInfo?.().catch(() => {}), 20_000);
}
function letGo() {
  if (running.size === 0 && keepAlive) {
    clearInterval(keepAlive);
    keepAlive = null;
  }
}

/** @param {string} url @returns {Promise<CheckRecord | null>} */
async function getRec(url) {
  if (!recs.has(url)) {
    const stored = /** @type {CheckRecord | undefined} */ ((await api.storage.session.get(KEY(url)))[KEY(url)]);
    if (stored && !recs.has(url)) recs.set(url, stored);
  }
  return recs.get(url) ?? null;
}

let saves = 0;
/** @param {CheckRecord} rec */
function save(rec) {
  rec.updated = Date.now();
  recs.set(rec.url, rec);
  api.storage.session.set({ [KEY(rec.url)]: rec }).catch(() => {});
  if (++saves % 50 === 0) prune().catch(() => {});
}

async function prune() {
  const all = /** @type {Record<string, CheckRecord>} */ (await api.storage.session.get(null));
  const checks = Object.entries(all).filter(([k]) => k.startsWith("check:"));
  if (checks.length <= KEEP_CHECKS) return;
  checks.sort((a, b) => (a[1].updated ?? 0) - (b[1].updated ?? 0));
  const old = checks.slice(0, checks.length - KEEP_CHECKS).filter(([, r]) => !running.has(r.url));
  for (const [, r] of old) recs.delete(r.url);
  await api.storage.session.remove(old.map(([k]) => k));
}

/** Badges need each face's score, not its boxes (the bulk of a result): those stay on the server. */
function slim(result) {
  if (!result?.faces) return result;
  return { ...result, faces: result.faces.map(({ boxes, ...face }) => face) };
}

/**
 * What a content script or page sees of a record.
 * @param {CheckRecord} rec
 * @returns {Update}
 */
export function publicUpdate(rec) {
  const { phase, id, status, percent, result, error, cached, cookies } = rec;
  return { phase, id, status, percent, result, error, cached, cookies };
}

/** Does the user want the server to use the browser's login for url's site? @param {string} url */
async function wantsLogin(url) {
  return loginEnabled(await getSettings(), adapterFor(url).id);
}

/** @param {CheckRecord} rec @param {{tab?: {id?: number}, frameId?: number} | undefined} sender */
function addSubscriber(rec, sender) {
  const tabId = sender?.tab?.id;
  if (typeof tabId !== "number") return;
  const frameId = sender?.frameId ?? 0;
  rec.subs ??= [];
  if (!rec.subs.some((s) => s.tabId === tabId && s.frameId === frameId)) rec.subs.push({ tabId, frameId });
}

/** @param {CheckRecord} rec @param {Partial<CheckRecord>} update */
function publish(rec, update) {
  Object.assign(rec, update);
  if (rec.result) rec.result = slim(rec.result);
  if (update.phase !== "done") delete rec.result;
  if (update.phase !== "failed" && update.phase !== "error") rec.error = null;
  save(rec);
  const message = { type: MSG.CHECK_UPDATE, url: rec.url, update: publicUpdate(rec) };
  for (const { tabId, frameId } of rec.subs ?? []) {
    api.tabs.sendMessage(tabId, message, { frameId }).catch(() => {
      rec.subs = (rec.subs ?? []).filter((s) => s.tabId !== tabId || s.frameId !== frameId);
    });
  }
}

/** @param {CheckRecord} rec */
async function remember(rec) {
  const { recent = [] } = /** @type {{recent?: RecentItem[]}} */ (await api.storage.local.get("recent"));
  const r = rec.result;
  /** @type {RecentItem} */
  const item = {
    url: rec.url, pageUrl: rec.pageUrl, kind: rec.kind, time: Date.now(), phase: rec.phase, id: rec.id ?? null,
    verdict: r?.verdict ?? null, p_fake: r?.p_fake ?? null, confidence: r?.confidence ?? null,
    threshold: r?.threshold ?? null, error: rec.error ?? (r?.error ? { error: "result", message: r.error } : null),
  };
  const rest = recent.filter((x) => x.url !== rec.url);
  await api.storage.local.set({ recent: [item, ...rest].slice(0, RECENT_MAX) });
}

/** @param {any} e @returns {import("../shared/messages.js").ErrorBody} */
function asError(e) {
  if (e instanceof ServerError) return e.toJSON();
  return { error: "internal", message: String(e?.message || e) };
}

/**
 * Ask for the check of target.url. Answers at once with the current state; progress follows as
 * check-update messages to the sender's frame. The same URL is never checked twice: a finished
 * check is answered from storage.session, a running one gains a subscriber.
 * @param {Target} target
 * @param {{tab?: {id?: number}, frameId?: number} | undefined} sender  the frame to send progress to
 * @param {Reason} [reason]
 * @returns {Promise<Update>}
 */
export async function requestCheck(target, sender, reason = "auto") {
  let rec = await getRec(target.url);
  const retry = !rec
    || rec.phase === "error" // could not reach/ask the server: try again now that someone asks
    || (rec.phase === "failed" && reason === "menu") // the user asked explicitly
    // it needed a login, and the user has turned the browser's login for its site on (or off) since
    || (rec.phase === "failed" && rec.error?.error === "login_required" && !!rec.cookies !== await wantsLogin(target.url))
    || ((rec.phase === "queued" || rec.phase === "checking") && !running.has(target.url)); // orphaned by a restart
  rec ??= { url: target.url, pageUrl: target.pageUrl, kind: target.kind, phase: "queued", subs: [] };
  addSubscriber(rec, sender);
  if (retry) {
    if (rec.phase === "failed") rec.id = null;
    publish(rec, { phase: "queued", status: "queued", percent: null });
    start(rec, reason);
  } else save(rec);
  return publicUpdate(rec);
}

/** @param {CheckRecord} rec @param {Reason} reason */
function start(rec, reason) {
  const job = run(rec, reason).finally(() => {
    running.delete(rec.url);
    letGo();
  });
  running.set(rec.url, job);
  holdAlive();
}

/** @param {CheckRecord} rec @param {Reason} reason */
async function run(rec, reason) {
  const priority = reason === "menu"; // what the user right-clicked does not wait behind the feed
  if (!priority) await acquire();
  try {
    const s = await getConnection();
    const client = new Client(s.server, s.token);
    if (!s.token) {
      await client.health(); // "server not running" says more than "not paired" when both are true
      throw new ServerError("not_paired", "The extension is not paired with the server yet. Open the options and pair it.");
    }
    const onUpdate = (check) => publish(rec, updateFromCheck(check));
    let check = null;
    if (rec.id) {
      try {
        check = await client.follow(rec.id, onUpdate);
      } catch (e) {
        if (e.code !== "not_found") throw e;
        rec.id = null; // the server forgot it (restarted): ask again
      }
    }
    if (!check) {
      rec.cookies = await wantsLogin(rec.url);
      const created = await client.createCheck(rec.url, rec.pageUrl, (wait) =>
        publish(rec, { phase: "queued", status: "busy", percent: null, retryIn: wait }), rec.cookies);
      if (created.status === "done" || created.status === "failed") check = created;
      else {
        publish(rec, { phase: "checking", id: created.id, status: created.status, percent: null });
        check = await client.follow(created.id, onUpdate);
      }
    }
    publish(rec, updateFromCheck(check));
  } catch (e) {
    publish(rec, { phase: "error", error: asError(e) });
    if (e instanceof ServerError && CONNECTION_ERRORS.has(e.code)) probeStatus().catch(() => {});
  } finally {
    if (!priority) release();
  }
  await remember(rec);
}

/**
 * For the popup and tests: how many checks this worker is following or has queued.
 * @returns {import("../shared/messages.js").Activity}
 */
export function activity() {
  return { active, waiting: waiting.length, running: [...running.keys()] };
}
