// @ts-check
// The page side: find videos, resolve each to what the server should fetch (site adapters), ask
// the service worker to check visible ones on sites where automatic checks are on, and show the
// answers as badges. It never talks to the server itself, and never reads the extension's storage
// (it holds the token): what it needs of the settings, it asks the service worker for.
import { api } from "../shared/browser.js";
import { FINAL_PHASES, MSG } from "../shared/messages.js";
import { describe } from "../shared/verdict.js";
import { adapterFor, generic } from "../sites/index.js";
import { Badges } from "./badge.js";
import { watchVideos } from "./finder.js";

const DEBOUNCE_MS = 500; // a video must stay visible this long before it is checked (fast scrolling checks nothing)
const STALE_MS = 45_000; // no news of a running check for this long: ask again (the worker may have restarted)
const RIGHT_CLICK_MEMORY_MS = 60_000;

/** @type {import("../shared/messages.js").ContentSettings} */
let settings = { uncertainBand: null, autoCheck: false };
/** @type {Promise<void> | null} */
let settingsLoaded = null; // asked for when first needed: most frames never show a video
const entries = new Map(); // resolved URL → {update, els: Set<Element>, kind, asked, heard}
const urlOf = new WeakMap(); // element → resolved URL
let lastRightClick = null;
/**
 * This page's adapter and what it saw: the videos on screen, and those it could not resolve.
 * @typedef {{controller: AbortController, adapter: any, videos: Set<Element>, unresolved: Set<Element>, warned: boolean}} PageState
 */
/** @type {PageState | null} */
let page = null;
let currentHref = location.href;

const badges = new Badges({
  heatmap: async (path) => (await send({ type: MSG.HEATMAP, path }))?.dataUrl ?? null,
  openLimits: () => send({ type: MSG.OPEN_LIMITS }),
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
  const view = { ...describe(entry.update, settings.uncertainBand), update: entry.update, url };
  for (const el of entry.els) {
    if (urlOf.get(el) === url) badges.set(el, view);
  }
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

async function ask(url, reason) {
  const entry = entries.get(url);
  entry.asked = Date.now();
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
}

/** Resolve and check one element. Returns the URL asked about, or null. */
function check(el, kind, url, reason) {
  if (!url) {
    if (reason === "menu") badges.set(el, { ...describe({ phase: "error", error: { error: "no_url", message: "This video has no address the server could fetch (it is streamed from a blob:)." } }), url: "" });
    return null;
  }
  const entry = attach(el, url, kind);
  const phase = entry.update?.phase;
  if (!entry.asked || (reason === "menu" && (phase === "error" || phase === "failed"))) ask(url, reason);
  else render(url);
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
  const p = { controller, adapter, videos: new Set(), unresolved: new Set(), warned: false };
  page = p;
  const timers = new Map();
  const watcher = watchVideos({
    find: adapter.findVideos,
    signal: controller.signal,
    onVisible(video) {
      noteResolvable(p, video);
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
    },
    onRemoved(video) {
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
  controller.signal.addEventListener("abort", () => timers.forEach(clearTimeout), { once: true });
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

function menuElement(info) {
  if (info.targetElementId != null && api.menus?.getTargetElement) {
    const el = api.menus.getTargetElement(info.targetElementId); // Firefox knows exactly
    if (el) return { path: [el], x: null, y: null };
  }
  if (lastRightClick && Date.now() - lastRightClick.at < RIGHT_CLICK_MEMORY_MS) return lastRightClick;
  return null;
}

function onMenuTarget(info) {
  const hit = menuElement(info);
  const path = hit?.path ?? [];
  const adapter = page?.adapter ?? adapterFor(location.href);
  if (info.kind === "video") {
    let video = path.find((n) => n.nodeName === "VIDEO") ?? (hit?.x != null ? videoAtPoint(hit.x, hit.y) : null);
    if (!video && info.srcUrl) video = [...document.querySelectorAll("video")].find((v) => v.currentSrc === info.srcUrl) ?? null;
    if (!video) return { ok: false };
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
  if (reconnected) for (const [url, entry] of entries) if (entry.update?.phase === "error") ask(url, "auto");
  if (settings.autoCheck !== before.autoCheck) startPage(); // visible videos are seen afresh
  if (settings.uncertainBand !== before.uncertainBand) for (const url of entries.keys()) render(url);
}

// A check we asked about has gone quiet (e.g. the service worker was stopped): ask again; it resumes.
setInterval(() => {
  for (const [url, entry] of entries) {
    if (entry.asked && !FINAL_PHASES.has(entry.update?.phase) && Date.now() - entry.heard > STALE_MS) ask(url, "auto");
  }
}, 15_000);

startPage();
