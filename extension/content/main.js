// @ts-check
// The page side: find videos, resolve each to what the server should fetch (site adapters), ask
// the service worker to check visible ones on sites where automatic checks are on, and show the
// answers as badges. A video whose address the server cannot use (none, a blob:/MediaSource stream
// on a site without an adapter, a live stream, or a post the server could not download) is checked
// from frames taken here while it plays (capture.js). It never talks to the server itself, and
// never reads the extension's storage (it holds the token): what it needs of the settings, it asks
// the service worker for.
import { api } from "../shared/browser.js";
import { FINAL_PHASES, MSG } from "../shared/messages.js";
import { describe } from "../shared/verdict.js";
import { composedClosest } from "../sites/dom.js";
import { adapterFor, generic } from "../sites/index.js";
import { Badges } from "./badge.js";
import { CaptureError, captureFrames, DEFAULT_FRAMES, isLive, toBase64 } from "./capture.js";
import { feedbackSection } from "./feedback.js";
import { watchVideos } from "./finder.js";

const DEBOUNCE_MS = 500; // a video must stay visible this long before it is checked (fast scrolling checks nothing)
const STALE_MS = 45_000; // no news of a running check for this long: ask again (the worker may have restarted)
const RIGHT_CLICK_MEMORY_MS = 60_000;
// The server answered these for a post's address: the browser has the pixels, so they are checked instead.
const CAPTURE_INSTEAD = new Set(["login_required", "unsupported_url", "fetch_failed"]);
const LIVE_EVERY_MS = 10_000; // watching: a check over the last window's frames this often
const LIVE_TREND = 5; // the badge shows this many latest results
// A check that could not be made for these reasons is made again once the server answers: the
// page asks the service worker for the server's status (which probes it) every few seconds while
// it shows such a badge, and a badge scrolled back into view asks again too.
const RECOVERABLE = new Set(["not_running", "cert_untrusted", "not_paired", "unauthorized", "timeout", "busy", "rate_limited",
  "internal", "cancelled"]);
const SERVER_POLL_MS = [2000, 15_000]; // first wait, longest wait
const ASK_AGAIN_VISIBLE_MS = 3000; // a badge waiting for the server, scrolled back into view, asks again after this
const IN_VIEW_DEBOUNCE_MS = 250;

// What happened on the way to a verdict, said in the panel (content/panel.js "note").
const NOTE = {
  playingCrossOrigin: "Its picture could not be read in the page (the video comes from another site that does not allow "
    + "that), so your server downloaded the video file instead, and this is the check of that file.",
  watchCrossOrigin: "This video could not be watched: watching reads its picture as it plays, and the video comes from "
    + "another site that does not allow that. Your server downloaded the video file instead and checked it once; "
    + "this is that check.",
  /** @param {any} failed  the server's failure for the post's address */
  capturedCrossOrigin: (failed) => `Your server could not download this post either (${failed?.error?.message ?? "it failed"}).`
    + (failed?.error?.error === "login_required"
      ? " If it needs a login: Options → Posts behind a login lets your server use your browser's login for this site." : ""),
};

/** @type {import("../shared/messages.js").ContentSettings} */
let settings = { uncertainBand: null, autoCheck: false, captureFrames: DEFAULT_FRAMES };
/** @type {Promise<void> | null} */
let settingsLoaded = null; // asked for when first needed: most frames never show a video
const entries = new Map(); // resolved URL → {update, els: Set<Element>, kind, asked, heard}
const urlOf = new WeakMap(); // element → resolved URL
let lastRightClick = null;
/**
 * This page's adapter and what it saw: the videos on screen, and those it could not resolve.
 * `visible`: the videos in view now (the finder's set).
 * @typedef {{controller: AbortController, adapter: any, videos: Set<Element>, unresolved: Set<Element>, warned: boolean,
 *   visible: Set<Element>}} PageState
 */
/** @type {PageState | null} */
let page = null;
let currentHref = location.href;

const captureKeys = new WeakMap(); // video → the key of its capture check on this page
const capturing = new WeakSet(); // videos whose frames are being taken now
let captureSeq = 0;
/** @type {Map<Element, {key: string, controller: AbortController, trend: {tone: string, label: string}[], state: string}>} */
const watches = new Map(); // videos watched live

const badges = new Badges({
  heatmap: async (path) => (await send({ type: MSG.HEATMAP, path }))?.dataUrl ?? null,
  openLimits: () => send({ type: MSG.OPEN_LIMITS }),
  stopWatching: (el) => stopWatching(el, "stopped"),
  retry: (el) => {
    const url = urlOf.get(el);
    if (url) retry(url, "menu");
  },
  feedback: (view) => feedbackSection(view, send, settings.uncertainBand),
});

/** The settings for this frame, asked for once (and again when the service worker says they changed). */
function loadSettings() {
  settingsLoaded ??= askSettings();
  return settingsLoaded;
}

async function askSettings() {
  const answer = await send({ type: MSG.SETTINGS });
  if (answer?.ok) settings = answer.settings;
}

/** @param {import("../shared/messages.js").Request} msg */
async function send(msg) {
  try {
    return await api.runtime.sendMessage(msg);
  } catch (e) {
    // The extension was reloaded or updated: this content script is orphaned.
    return { ok: false, error: { error: "internal", message: String(e?.message || e) } };
  }
}

function render(url) {
  const entry = entries.get(url);
  if (!entry?.update) return;
  let view = { ...describe(entry.update, settings.uncertainBand), update: entry.update, note: entry.note ?? "",
    url: url.replace(/^capture:/, "").replace(/^live:/, "").replace(/#\d+$/, "") };
  if (entry.live) view = liveView(entry.live, view);
  for (const el of entry.els) {
    if (urlOf.get(el) === url) badges.set(el, view);
  }
  if (waitingForServer(entry)) watchForServer();
}

/** The check could not be made (the server was down, …) and will be made once the server answers. */
function waitingForServer(entry) {
  return entry?.update?.phase === "error" && RECOVERABLE.has(entry.update.error?.error);
}

let serverWatch = 0;
/**
 * While badges wait for the server, ask the service worker how the server is (it probes it), at
 * growing intervals, only while this page is shown; once it is connected, each is asked again.
 */
function watchForServer() {
  if (serverWatch) return;
  let wait = SERVER_POLL_MS[0];
  const tick = async () => {
    const stuck = [...entries].filter(([, e]) => waitingForServer(e)).map(([url]) => url);
    if (!stuck.length) {
      serverWatch = 0;
      return;
    }
    if (!document.hidden) {
      const answer = await send({ type: MSG.STATUS, refresh: true });
      if (answer?.ok && answer.status?.state === "connected") {
        serverWatch = 0;
        for (const url of stuck) retry(url, "auto");
        return;
      }
    }
    wait = Math.min(Math.round(wait * 1.5), SERVER_POLL_MS[1]);
    serverWatch = window.setTimeout(tick, wait);
  };
  serverWatch = window.setTimeout(tick, wait);
}

/**
 * Ask again for the check shown under `url` (a Retry, or the server is back): a post's address is
 * asked for again, a video checked from its frames is captured again; a watched video retries on
 * its own every window.
 * @param {string} url @param {"auto" | "menu"} reason
 */
function retry(url, reason) {
  const entry = entries.get(url);
  if (!entry || url.startsWith("live:")) return;
  if (url.startsWith("capture:")) {
    for (const el of [...entry.els]) {
      if (el.nodeName === "VIDEO" && el.isConnected && urlOf.get(el) === url) {
        capture(/** @type {HTMLVideoElement} */ (el), url, reason, entry.fallbackUrl ?? null, null, true);
      }
    }
    return;
  }
  ask(url, reason);
}

function attach(el, url, kind) {
  const old = urlOf.get(el);
  if (old && old !== url) entries.get(old)?.els.delete(el);
  urlOf.set(el, url);
  let entry = entries.get(url);
  if (!entry) {
    entry = { update: null, els: new Set(), kind, asked: 0, heard: 0 };
    entries.set(url, entry);
  }
  entry.els.add(el);
  return entry;
}

/** A post the server could not download (login, unsupported, fetch failed): its videos are captured instead. */
function fallBackToCapture(url) {
  const entry = entries.get(url);
  const code = entry?.update?.error?.error;
  if (!entry || entry.update.phase !== "failed" || !CAPTURE_INSTEAD.has(code) || entry.fellBack === entry.asked) return;
  entry.fellBack = entry.asked; // once per asking
  for (const el of [...entry.els]) {
    if (el.nodeName === "VIDEO" && el.isConnected && urlOf.get(el) === url) {
      capture(/** @type {HTMLVideoElement} */ (el), `capture:${url}`, entry.reason ?? "auto", null, entry.update);
    }
  }
}

async function ask(url, reason) {
  const entry = entries.get(url);
  entry.asked = Date.now();
  entry.reason = reason;
  if (!entry.update) {
    entry.update = { phase: "queued", status: "queued" };
    render(url);
  }
  await loadSettings(); // the badge needs the uncertain band
  const answer = await send({ type: MSG.CHECK, target: { url, pageUrl: location.href, kind: entry.kind }, reason });
  entry.heard = Date.now();
  // A check-update may have overtaken this answer: keep whichever says more.
  if (answer?.ok) {
    if (!(FINAL_PHASES.has(entry.update?.phase) && !FINAL_PHASES.has(answer.update.phase))) entry.update = answer.update;
  } else entry.update = { phase: "error", error: answer?.error ?? { error: "internal", message: "No answer from the extension." } };
  render(url);
  fallBackToCapture(url);
}

/**
 * Check a video from frames taken here (the server gets the frames, not an address). Answers the
 * key at once; the capture and the check run on. `fallbackUrl`: checked instead when the pixels
 * cannot be read (a cross-origin video without CORS).
 * `failed`: the server's failure for the post's address, shown again when the video has no picture to capture.
 * @param {HTMLVideoElement} video @param {string} key @param {"auto" | "menu"} reason @param {string | null} fallbackUrl
 * @param {any} [failed]
 * @param {boolean} [again]  a retry: capture again even when this capture was checked before
 */
function capture(video, key, reason, fallbackUrl, failed = null, again = false) {
  const entry = attach(video, key, "video");
  captureKeys.set(video, key);
  entry.fallbackUrl = fallbackUrl;
  const busy = entry.update && !FINAL_PHASES.has(entry.update.phase);
  if (capturing.has(video) || busy || (entry.update && reason !== "menu" && !again && entry.update.phase !== "error")) {
    render(key);
    return key;
  }
  runCapture(video, key, entry, reason, fallbackUrl, failed);
  return key;
}

async function runCapture(video, key, entry, reason, fallbackUrl, failed) {
  capturing.add(video);
  entry.asked = entry.heard = Date.now();
  const show = (update) => {
    entry.update = update;
    render(key);
  };
  try {
    await loadSettings();
    if (reason !== "menu" && entry.update?.phase !== "error") { // captured before in this session (a post seen again): that answer stands
      const known = await send({ type: MSG.CHECK_FRAMES, key, pageUrl: location.href });
      if (known?.ok && ["queued", "checking", "done"].includes(known.update.phase)) return show(known.update);
    }
    show({ phase: "capturing", percent: 0, source: "frames" });
    const cap = await captureFrames(video, {
      count: settings.captureFrames,
      onProgress: (p) => show({ phase: "capturing", percent: Math.round(p * 100), source: "frames" }),
    });
    show({ phase: "queued", status: "queued", source: "frames" });
    const frames = await Promise.all(cap.frames.map(toBase64));
    const answer = await send({ type: MSG.CHECK_FRAMES, key, pageUrl: location.href, frames, times: cap.times, reason,
      capture: { frames: frames.length, paused: cap.paused, live: cap.live } });
    entry.heard = Date.now();
    if (!answer?.ok) show({ phase: "error", error: answer?.error ?? { error: "internal", message: "No answer from the extension." } });
    else if (!(FINAL_PHASES.has(entry.update?.phase) && !FINAL_PHASES.has(answer.update.phase))) show(answer.update);
  } catch (e) {
    if (e instanceof CaptureError && e.code === "no_picture") {
      // Not loaded yet (a feed that loads videos late, a busy machine): say so, and capture once it has a picture.
      captureWhenPicture(video, key, reason, fallbackUrl, failed);
      if (failed) return show(failed); // nothing to add to the server's answer until then
    }
    if (e instanceof CaptureError && e.code === "cross_origin" && fallbackUrl) {
      capturing.delete(video);
      check(video, "video", fallbackUrl, reason, false, NOTE.playingCrossOrigin); // the address, then: and the panel says so
      return;
    }
    if (e instanceof CaptureError && e.code === "cross_origin" && failed) entry.note = NOTE.capturedCrossOrigin(failed); // neither way worked
    show({ phase: "error", source: "frames", error: e instanceof CaptureError
      ? { error: e.code, message: e.message } : { error: "internal", message: String(e?.message || e) } });
  } finally {
    capturing.delete(video);
  }
}

const awaitingPicture = new WeakSet(); // videos that had no picture to capture: captured once they have one

/**
 * A video that had no picture when its capture began is captured when it gets one (it loads or
 * starts playing), once, if it is still on the page and its badge still says why it was not checked.
 * @param {HTMLVideoElement} video @param {string} key @param {"auto" | "menu"} reason @param {string | null} fallbackUrl
 * @param {any} failed
 */
function captureWhenPicture(video, key, reason, fallbackUrl, failed) {
  if (awaitingPicture.has(video)) return;
  awaitingPicture.add(video);
  const events = ["loadeddata", "playing"];
  const go = () => {
    for (const ev of events) video.removeEventListener(ev, go);
    awaitingPicture.delete(video);
    const entry = entries.get(key);
    const shown = entry?.update;
    const stillWaiting = shown === failed || shown?.error?.error === "no_picture";
    if (!video.isConnected || captureKeys.get(video) !== key || !entry || !stillWaiting || capturing.has(video)) return;
    runCapture(video, key, entry, reason, fallbackUrl, failed);
  };
  for (const ev of events) video.addEventListener(ev, go);
  if (video.readyState >= 2 && video.videoWidth > 0) setTimeout(go, 0); // it came between the wait and now
}

/** Whether the server cannot be given this video's address, so its frames are checked instead. */
function mustCapture(video, url, adapter) {
  if (video.nodeName !== "VIDEO") return false;
  if (isLive(video) || !url) return true;
  // a stream assembled in the page (blob:/MediaSource) on a site without an adapter: the page's
  // address would be sent, which rarely leads to the clip
  return adapter === generic && url === location.href && /^blob:/.test(video.currentSrc || video.getAttribute("src") || "");
}

/**
 * Resolve and check one element. Returns the URL (or capture key) asked about, or null.
 * `note`: what happened on the way here, for the panel (a capture that fell back to the address).
 */
function check(el, kind, url, reason, captureOk = true, note = "") {
  if (captureOk && kind === "video" && mustCapture(el, url, page?.adapter ?? adapterFor(location.href))) {
    const file = generic.resolve(el, location.href);
    return capture(el, captureKeys.get(el) ?? (url ? `capture:${url}` : `capture:${location.href}#${++captureSeq}`),
      reason, file && file !== location.href ? file : null);
  }
  if (!url) {
    if (reason === "menu") badges.set(el, { ...describe({ phase: "error", error: { error: "no_url", message: "This video has no address the server could fetch (it is streamed from a blob:)." } }), url: "" });
    return null;
  }
  const entry = attach(el, url, kind);
  if (note || reason === "menu") entry.note = note;
  const phase = entry.update?.phase;
  if (!entry.asked || (reason === "menu" && (phase === "error" || phase === "failed"))
    || (waitingForServer(entry) && Date.now() - entry.asked > ASK_AGAIN_VISIBLE_MS)) ask(url, reason);
  else render(url);
  reportInView();
  return url;
}

function resolveVideo(video, adapter, reason) {
  const url = adapter.resolve(video, location.href);
  if (url) return url;
  // A site adapter that finds no post gives up on automatic checks; a right-click falls back to the file or page.
  return reason === "menu" || adapter === generic ? generic.resolve(video, location.href) : null;
}

/**
 * Counts the videos a site adapter sees but cannot resolve to a post, so that an adapter whose
 * selectors no longer match the site fails loudly (the popup shows the count) and not silently.
 * @param {PageState} p @param {Element} video
 */
function noteResolvable(p, video) {
  if (p.adapter === generic) return;
  p.videos.add(video);
  if (p.adapter.resolve(video, location.href)) {
    p.unresolved.delete(video);
    return;
  }
  p.unresolved.add(video);
  if (!p.warned) {
    p.warned = true;
    console.warn(`Deepfake Check: the ${p.adapter.name} adapter cannot tell which post a video on this page belongs to; `
      + "the site's pages may have changed (docs/extension.md: refreshing a site's fixture).");
  }
}

function startPage() {
  page?.controller.abort();
  const controller = new AbortController();
  const adapter = adapterFor(location.href);
  /** @type {PageState} */
  const p = { controller, adapter, videos: new Set(), unresolved: new Set(), warned: false, visible: new Set() };
  page = p;
  const timers = new Map();
  const watcher = watchVideos({
    find: adapter.findVideos,
    signal: controller.signal,
    onVisible(video) {
      noteResolvable(p, video);
      reportInView();
      loadSettings().then(() => {
        if (!settings.autoCheck || controller.signal.aborted || !watcher.visible.has(video)) return;
        clearTimeout(timers.get(video));
        timers.set(video, setTimeout(() => {
          timers.delete(video);
          if (!controller.signal.aborted && video.isConnected) check(video, "video", resolveVideo(video, adapter, "auto"), "auto");
        }, DEBOUNCE_MS));
      });
    },
    onHidden(video) {
      clearTimeout(timers.get(video));
      timers.delete(video);
      reportInView();
    },
    onRemoved(video) {
      stopWatching(video, "removed");
      p.videos.delete(video);
      p.unresolved.delete(video);
      badges.remove(video);
      const url = urlOf.get(video);
      if (url) entries.get(url)?.els.delete(video);
    },
    onMutate() {
      if (location.href !== currentHref) navigated();
    },
  });
  p.visible = watcher.visible;
  controller.signal.addEventListener("abort", () => {
    timers.forEach(clearTimeout);
    for (const video of [...watches.keys()]) stopWatching(video, "left");
  }, { once: true });
}

let inViewTimer = 0;
let inViewSent = "";
/**
 * Tells the service worker which of this page's checks are in view, nearest the middle of the
 * viewport first: it checks those before the ones scrolled away. Sent when that changes.
 */
function reportInView() {
  clearTimeout(inViewTimer);
  inViewTimer = window.setTimeout(() => {
    const shown = page?.visible ?? new Set();
    const middle = innerHeight / 2;
    const near = [...shown].map((v) => {
      const r = v.getBoundingClientRect();
      return { url: urlOf.get(v), d: Math.abs(r.top + r.height / 2 - middle) };
    }).filter((x) => x.url && !FINAL_PHASES.has(entries.get(x.url)?.update?.phase)).sort((a, b) => a.d - b.d);
    const urls = [...new Set(near.map((x) => /** @type {string} */ (x.url)))];
    const key = urls.join("\n");
    if (key === inViewSent) return;
    inViewSent = key;
    send({ type: MSG.IN_VIEW, urls });
  }, IN_VIEW_DEBOUNCE_MS);
}

// Single-page apps: YouTube tells us; others change history (seen on the next DOM change or popstate).
function navigated() {
  if (location.href === currentHref && page) return;
  currentHref = location.href;
  startPage();
}
addEventListener("yt-navigate-finish", () => { currentHref = ""; navigated(); });
addEventListener("popstate", navigated);
globalThis.navigation?.addEventListener?.("navigatesuccess", navigated);

// Remember what was right-clicked, before the page's own handlers can stop the event. Only the
// user's own right-click counts: a page's synthetic event must not choose what gets checked.
addEventListener("contextmenu", (e) => {
  if (!e.isTrusted) return;
  const path = /** @type {Element[]} */ (e.composedPath().filter((n) => /** @type {Node} */ (n).nodeType === 1));
  lastRightClick = { path, x: e.clientX, y: e.clientY, at: Date.now() };
}, { capture: true });

/**
 * The <video> under a point, looking into open shadow roots (players wrap theirs in layers).
 * @param {number} x @param {number} y @param {Document | ShadowRoot} [root] @param {number} [depth]
 * @returns {Element | null}
 */
function videoAtPoint(x, y, root = document, depth = 0) {
  for (const el of root.elementsFromPoint(x, y)) {
    if (el.nodeName === "VIDEO") return el;
    if (el.shadowRoot && depth < 4) {
      const inner = videoAtPoint(x, y, el.shadowRoot, depth + 1);
      if (inner) return inner;
    }
  }
  return null;
}

/**
 * What was right-clicked: Firefox names the element (menus.getTargetElement); otherwise, and when
 * it names none, the user's last right-click in this frame.
 */
function menuElement(info) {
  const recent = lastRightClick && Date.now() - lastRightClick.at < RIGHT_CLICK_MEMORY_MS ? lastRightClick : null;
  if (info.targetElementId != null && api.menus?.getTargetElement) {
    let el = null;
    try {
      el = api.menus.getTargetElement(info.targetElementId); // Firefox knows exactly
    } catch { /* an element this frame cannot reach */ }
    if (el) return { path: [el], x: null, y: null };
  }
  return recent;
}

/**
 * Every <video> of this document, open shadow roots included (players put theirs there).
 * @param {Document | ShadowRoot} root @param {number} [depth] @returns {HTMLVideoElement[]}
 */
function allVideos(root = document, depth = 0) {
  const out = [...root.querySelectorAll("video")];
  if (depth < 4) for (const el of root.querySelectorAll("*")) if (el.shadowRoot) out.push(...allVideos(el.shadowRoot, depth + 1));
  return out;
}

/** The video whose source is `src` (what the browser's menu reports): what plays, its src or a <source>. */
function videoBySource(src) {
  if (!src) return null;
  const same = (/** @type {string | null} */ u) => {
    try {
      return !!u && new URL(u, location.href).href === src;
    } catch {
      return false;
    }
  };
  return allVideos().find((v) => v.currentSrc === src || same(v.getAttribute("src"))
    || [...v.querySelectorAll("source")].some((s) => same(s.getAttribute("src")))) ?? null;
}

/** The right-clicked video: on the path, the video of a player element on it, under the pointer, or by its source. */
function menuVideo(hit, info) {
  const path = hit?.path ?? [];
  const onPath = path.find((n) => n.nodeName === "VIDEO") ?? path.map((n) => composedClosest(n, "video")).find(Boolean);
  if (onPath) return onPath;
  const atPoint = hit?.x != null ? videoAtPoint(hit.x, hit.y) : null;
  if (atPoint) return atPoint;
  const inside = path[0]?.querySelectorAll?.("video");
  if (inside?.length === 1) return inside[0]; // a player's wrapper: its one video
  return videoBySource(info.srcUrl);
}

function onMenuTarget(info) {
  const hit = menuElement(info);
  const path = hit?.path ?? [];
  const adapter = page?.adapter ?? adapterFor(location.href);
  if (info.kind === "video" || info.kind === "playing" || info.kind === "watch") {
    const video = menuVideo(hit, info);
    if (!video) return { ok: false };
    if (info.kind === "watch") return { ok: true, target: { url: watch(video), kind: "watch" } };
    if (info.kind === "playing") {
      stopWatching(video, "stopped");
      const url = resolveVideo(video, adapter, "menu");
      const key = capture(video, `capture:${location.href}#${++captureSeq}`, "menu", url && url !== location.href ? url : null);
      return { ok: true, target: { url: key, kind: "playing" } };
    }
    stopWatching(video, "stopped");
    const url = check(video, "video", resolveVideo(video, adapter, "menu"), "menu");
    return url ? { ok: true, target: { url, kind: "video" } } : { ok: false };
  }
  if (info.kind === "link") {
    const a = path.find((n) => n.nodeName === "A" && n.href) ?? null;
    const url = info.linkUrl || a?.href;
    const el = a?.querySelector("img, video") ?? a;
    if (!el || !/^https?:/.test(url || "")) return { ok: false };
    check(el, "link", url, "menu");
    return { ok: true, target: { url, kind: "link" } };
  }
  if (info.kind === "image") {
    const img = path.find((n) => n.nodeName === "IMG") ?? null;
    const url = /^https?:/.test(info.srcUrl || "") ? info.srcUrl : null;
    if (!img || !url) return { ok: false };
    check(img, "image", url, "menu");
    return { ok: true, target: { url, kind: "image" } };
  }
  return { ok: false };
}

api.runtime.onMessage.addListener((msg, sender, sendResponse) => {
  if (sender.id !== api.runtime.id) return false;
  if (msg?.type === MSG.CHECK_UPDATE) {
    const entry = entries.get(msg.url);
    if (entry) {
      entry.update = msg.update;
      entry.heard = Date.now();
      render(msg.url);
      fallBackToCapture(msg.url);
      entry.onUpdate?.(msg.update);
    }
    return false;
  }
  if (msg?.type === MSG.WHERE && window === window.top) {
    sendResponse({ url: location.href, origin: location.origin, siteId: page?.adapter.id ?? "generic",
      videos: page?.videos.size ?? 0, unresolved: page?.unresolved.size ?? 0 });
    return false;
  }
  if (msg?.type === MSG.MENU_TARGET) {
    sendResponse(onMenuTarget(msg.info));
    return false;
  }
  if (msg?.type === MSG.SETTINGS_CHANGED) {
    settingsChanged(!!msg.reconnected);
    return false;
  }
  return false;
});

/** @param {boolean} reconnected  the server or the token changed */
async function settingsChanged(reconnected) {
  if (!settingsLoaded) return; // not needed here yet: the first need asks afresh
  const before = settings;
  settingsLoaded = askSettings();
  await settingsLoaded;
  // Newly paired (or pointed at another server): checks that could not be made are asked again.
  if (reconnected) for (const [url, entry] of entries) if (waitingForServer(entry)) retry(url, "auto");
  if (settings.autoCheck !== before.autoCheck) startPage(); // visible videos are seen afresh
  if (settings.uncertainBand !== before.uncertainBand) for (const url of entries.keys()) render(url);
}

// A check we asked about has gone quiet (e.g. the service worker was stopped): ask again; it resumes.
setInterval(() => {
  for (const [url, entry] of entries) {
    if (!entry.asked || FINAL_PHASES.has(entry.update?.phase) || Date.now() - entry.heard <= STALE_MS) continue;
    if (/^(capture|live):/.test(url)) {
      if (entry.update?.phase === "capturing") continue;
      entry.heard = Date.now();
      send({ type: MSG.CHECK_FRAMES, key: url, pageUrl: location.href }).then((a) => {
        if (a?.ok && a.update.phase !== "none") {
          entry.update = a.update;
          render(url);
        }
      });
    } else ask(url, "auto");
  }
}, 15_000);

// --- watching a live video (right-click → "Watch this video for deepfakes") ---------------------

/** Start watching a video, or stop when it is watched already. Returns its key. */
function watch(video) {
  const running = watches.get(video);
  if (running) {
    stopWatching(video, "stopped");
    return running.key;
  }
  const w = { key: `live:${location.href}#${++captureSeq}`, controller: new AbortController(), trend: [], state: "watching" };
  watches.set(video, w);
  const entry = attach(video, w.key, "video");
  entry.live = w;
  entry.update = { phase: "capturing", percent: 0, source: "frames" };
  render(w.key);
  watchLoop(video, w, entry).catch((e) => console.debug("Deepfake Check: live", e));
  return w.key;
}

/** @param {Element} video @param {"stopped" | "removed" | "ended" | "left"} why */
function stopWatching(video, why) {
  const w = watches.get(video);
  if (!w) return;
  watches.delete(video);
  w.state = why;
  w.controller.abort();
  render(w.key);
}

/** Resolves after ms, or at once when signal aborts. */
function pause(ms, signal) {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => { clearTimeout(t); resolve(undefined); }, { once: true });
  });
}

async function watchLoop(video, w, entry) {
  const { signal } = w.controller;
  await loadSettings();
  while (!signal.aborted) {
    if (!video.isConnected) return stopWatching(video, "removed");
    if (video.ended) return stopWatching(video, "ended");
    if (document.hidden || video.paused) { // nothing is checked while the tab is hidden (or the video paused)
      await pause(1000, signal);
      continue;
    }
    const started = Date.now();
    let cap;
    try {
      cap = await captureFrames(video, { count: settings.captureFrames, signal });
    } catch (e) {
      if (signal.aborted) return;
      const file = e instanceof CaptureError && e.code === "cross_origin" && !isLive(video) ? fileAddress(video) : null;
      if (file) { // another site's file: its picture cannot be read as it plays, but the server can download it
        stopWatching(video, "stopped");
        check(video, "video", file, "menu", false, NOTE.watchCrossOrigin);
        return;
      }
      entry.update = { phase: "error", source: "frames", error: e instanceof CaptureError ? { error: e.code, message: e.message } : { error: "internal", message: String(e?.message || e) } };
      render(w.key);
      if (e instanceof CaptureError && e.code !== "no_picture") return stopWatching(video, "stopped");
      await pause(LIVE_EVERY_MS, signal);
      continue;
    }
    if (signal.aborted || !video.isConnected) continue;
    const frames = await Promise.all(cap.frames.map(toBase64));
    const done = new Promise((resolve) => {
      entry.onUpdate = (u) => FINAL_PHASES.has(u.phase) && resolve(u);
      signal.addEventListener("abort", () => resolve(null), { once: true });
    });
    const answer = await send({ type: MSG.CHECK_FRAMES, key: w.key, pageUrl: location.href, frames, times: cap.times,
      reason: "menu", capture: { frames: frames.length, paused: false, live: true } });
    entry.asked = entry.heard = Date.now();
    const final = answer?.ok ? (FINAL_PHASES.has(answer.update.phase) ? answer.update : await done) : { phase: "error", error: answer?.error };
    entry.onUpdate = null;
    if (final) {
      entry.update = final;
      if (final.phase === "done") {
        const v = describe(final, settings.uncertainBand);
        w.trend = [...w.trend, { tone: v.tone, label: v.label }].slice(-LIVE_TREND);
      }
      render(w.key);
    }
    await pause(Math.max(0, LIVE_EVERY_MS - (Date.now() - started)), signal);
  }
}

/** The address of the file a video plays, when it has a real one (not the page's, not a blob:). */
function fileAddress(video) {
  const file = generic.resolve(video, location.href);
  return file && file !== location.href ? file : null;
}

/** A watched video's badge: the latest verdict, "live", and the trend of the last results. */
function liveView(w, view) {
  const latest = w.trend.at(-1);
  const state = { watching: "live", stopped: "stopped", ended: "ended", removed: "stopped", left: "stopped" }[w.state] ?? "live";
  if (view.tone === "busy" && latest) view = { ...view, label: latest.label, tone: latest.tone }; // the next window is being checked
  return { ...view, label: `${state} · ${view.label}`, live: { state, trend: w.trend } };
}

startPage();
