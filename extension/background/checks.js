// @ts-check
// Checks of URLs: one server job per resolved URL, at most MAX_ACTIVE automatic ones at a time,
// progress pushed to every tab frame that asked. The automatic checks waiting for a turn go in
// the order of what is in view (each page reports it, nearest the middle first), then newest
// first: the video the user looks at is checked before those scrolled past; a waiting check whose
// tabs all closed is dropped. State lives in storage.session (the service
// worker may be stopped at any time); only promises and timers live in memory, and so do frames
// captured in a page until they are posted (they are media: never written to storage).
import { api } from "../shared/browser.js";
import { MSG } from "../shared/messages.js";
import { getConnection, getSettings, loginEnabled } from "../shared/settings.js";
import { adapterFor } from "../sites/index.js";
import { Client, NOT_PAIRED_YET, ServerError, updateFromCheck } from "./client.js";
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
 *   (a frames check: url is its key, source "frames")
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
 * @property {import("../shared/credentials.js").Provenance | null} [provenance]  the file's Content Credentials
 * @property {import("../shared/messages.js").ErrorBody | null} error
 */

/** @type {Map<string, CheckRecord>} */
const recs = new Map(); // url → record (mirror of storage.session)
/** @type {Map<string, Promise<void>>} */
const running = new Map(); // url → Promise of the job this worker is following
/** @type {Map<string, {frames: Blob[], times: number[]}>} */
const captured = new Map(); // a frames check's key → its frames, until they are posted
/** @type {Map<number, string>} */
const liveByTab = new Map(); // tab → the key of its live check in flight (at most one per tab)
let active = 0;
/** @typedef {{url: string, seq: number, resolve: (go: boolean) => void}} Waiter  an automatic check waiting for a turn */
/** @type {Waiter[]} */
const waiting = [];
let seq = 0;
/** @type {Map<string, string[]>} */
const inView = new Map(); // "tabId:frameId" → the URLs (or capture keys) in view there, nearest the middle first

/** @param {string} url @returns {Promise<boolean>} true: its turn; false: dropped (nobody is waiting for it any more) */
function acquire(url) {
  return new Promise((resolve) => {
    if (active < MAX_ACTIVE) {
      active++;
      resolve(true);
    } else waiting.push({ url, seq: ++seq, resolve });
  });
}

/** How near the middle of some page's viewport `url` is: 0 the nearest, Infinity not in view. @param {string} url */
function rank(url) {
  let best = Infinity;
  for (const urls of inView.values()) {
    const i = urls.indexOf(url);
    if (i >= 0 && i < best) best = i;
  }
  return best;
}

/** The next waiting check: in view first (nearest the middle), then the newest. @returns {Waiter | undefined} */
function nextWaiting() {
  let best = -1;
  for (let i = 0; i < waiting.length; i++) {
    const a = waiting[i];
    const b = waiting[best];
    if (!b || rank(a.url) < rank(b.url) || (rank(a.url) === rank(b.url) && a.seq > b.seq)) best = i;
  }
  return best < 0 ? undefined : waiting.splice(best, 1)[0];
}

function release() {
  const next = nextWaiting();
  if (next) next.resolve(true);
  else active--;
}

/**
 * A page's checks in view (see InViewRequest).
 * @param {string[]} urls @param {{tab?: {id?: number}, frameId?: number} | undefined} sender
 */
export function setInView(urls, sender) {
  const tabId = sender?.tab?.id;
  if (typeof tabId !== "number") return;
  const key = `${tabId}:${sender?.frameId ?? 0}`;
  if (urls.length) inView.set(key, urls.slice(0, 100));
  else inView.delete(key);
}

/**
 * A tab closed: what it had in view no longer counts, and the checks only it was waiting for are
 * dropped (marked "cancelled": asking again starts them afresh).
 * @param {number} tabId
 */
export function tabClosed(tabId) {
  for (const key of [...inView.keys()]) if (key.startsWith(`${tabId}:`)) inView.delete(key);
  for (const w of [...waiting]) {
    const rec = recs.get(w.url);
    const subs = (rec?.subs ?? []).filter((s) => s.tabId !== tabId);
    if (rec) rec.subs = subs;
    if (!subs.length) {
      waiting.splice(waiting.indexOf(w), 1);
      w.resolve(false);
    }
  }
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
  const unboxed = (/** @type {any[]} */ faces) => faces.map(({ boxes, ...face }) => face);
  return { ...result, faces: unboxed(result.faces), faces_not_scored: unboxed(result.faces_not_scored ?? []) };
}

/**
 * What a content script or page sees of a record.
 * @param {CheckRecord} rec
 * @returns {Update}
 */
export function publicUpdate(rec) {
  const { phase, id, status, percent, result, error, cached, source = "url", capture = null, cookies } = rec;
  return { phase, id, status, percent, result, error, cached, source, capture, cookies };
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
    threshold: r?.threshold ?? null, provenance: r?.provenance ?? null, error: rec.error ?? (r?.error ? { error: "result", message: r.error } : null),
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
    captured.delete(rec.url); // posted, or failed before: the frames go either way
    letGo();
  });
  running.set(rec.url, job);
  holdAlive();
}

/** @param {CheckRecord} rec @param {Reason} reason */
async function run(rec, reason) {
  const priority = reason === "menu"; // what the user right-clicked does not wait behind the feed
  if (!priority && !(await acquire(rec.url))) {
    publish(rec, { phase: "error", error: { error: "cancelled", message: "Nobody is looking at this check any more: it was not made." } });
    return;
  }
  try {
    const s = await getConnection();
    const client = new Client(s.server, s.token);
    if (!s.token) {
      await client.health(); // "server not running" says more than "not paired" when both are true
      throw new ServerError("not_paired", NOT_PAIRED_YET);
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
      const onBusy = (wait) => publish(rec, { phase: "queued", status: "busy", percent: null, retryIn: wait });
      let created;
      if (rec.source === "frames") {
        const frames = captured.get(rec.url);
        if (!frames) throw new ServerError("capture_lost", "The captured frames were lost (the extension restarted): check the video again.");
        created = await client.checkFrames(frames.frames, frames.times, rec.pageUrl, onBusy, (await getSettings()).historyUrls);
        captured.delete(rec.url);
      } else {
        rec.cookies = await wantsLogin(rec.url);
        created = await client.createCheck(rec.url, rec.pageUrl, onBusy, rec.cookies, (await getSettings()).historyUrls);
      }
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
 * Check frames captured in a page (docs/api.md POST /v1/checks/frames), under `key` as a URL check
 * is under its URL: progress goes to the frames that asked, the answer is kept in storage.session
 * (a post's capture is not repeated while the browser session lasts, unless the user asks). Without
 * frames, says how the check under `key` stands ({phase: "none"}: no such check).
 * @param {ReturnType<typeof import("../shared/messages.js").validFrames> & {}} req  validated
 * @param {{tab?: {id?: number}, frameId?: number} | undefined} sender
 * @param {Reason} reason
 * @param {boolean} withFrames
 * @returns {Promise<Update | {phase: "none"}>}
 */
export async function requestFramesCheck(req, sender, reason, withFrames) {
  let rec = await getRec(req.key);
  if (!withFrames) {
    if (!rec) return { phase: "none" };
    addSubscriber(rec, sender);
    if ((rec.phase === "queued" || rec.phase === "checking") && !running.has(rec.url)) {
      if (rec.id) start(rec, reason); // orphaned by a restart: follow it again
      else publish(rec, { phase: "error", error: { error: "capture_lost", message: "The captured frames were lost (the extension restarted): check the video again." } });
    } else save(rec);
    return publicUpdate(rec);
  }
  const tabId = sender?.tab?.id;
  if (req.capture.live && typeof tabId === "number") {
    const inFlight = liveByTab.get(tabId);
    if (inFlight && running.has(inFlight)) throw new ServerError("busy", "A live check of this tab is still running.");
    liveByTab.set(tabId, req.key);
  }
  const subs = rec?.subs ?? [];
  rec = { url: req.key, pageUrl: req.pageUrl, kind: "video", phase: "queued", subs, source: "frames", capture: req.capture, id: null };
  addSubscriber(rec, sender);
  captured.set(req.key, { frames: req.frames.map(fromBase64), times: req.times });
  publish(rec, { phase: "queued", status: "queued", percent: null });
  start(rec, reason);
  return publicUpdate(rec);
}

/** @param {string} b64 @returns {Blob} */
function fromBase64(b64) {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new Blob([bytes], { type: "image/jpeg" });
}

/**
 * For the popup and tests: how many checks this worker is following or has queued.
 * @returns {import("../shared/messages.js").Activity}
 */
export function activity() {
  return { active, waiting: waiting.length, running: [...running.keys()] };
}
