// The one message schema between content scripts / extension pages and the service worker.
// Requests go through runtime.sendMessage and get one answer; the service worker pushes check
// progress to the tab that asked with tabs.sendMessage.
//
// content/page → service worker
//   {type: "check", target: {url, pageUrl, kind: "video"|"link"|"image"}, reason: "auto"|"menu"}
//        → {ok: true, update}                       (the current state of that URL's check)
//   {type: "status", refresh?: boolean}  → {ok: true, status: {state, message, server, model?, version?}}
//   {type: "pair", code, server?}        → {ok: true, status} | {ok: false, error}
//   {type: "heatmap", id}                → {ok: true, dataUrl} | {ok: false, error}
//   {type: "open-limits"}                → {ok: true}
// service worker → content (tabs.sendMessage, to the frame that asked)
//   {type: "check-update", url, update}
//   {type: "menu-target", info}          → {ok: true, target} | {ok: false}   (the right-clicked element)
// popup → content (tabs.sendMessage, top frame): the popup needs no "tabs" permission to know the site
//   {type: "where"}                      → {url, origin, siteId}
//
// update: {phase: "queued"|"checking"|"done"|"failed"|"error", id?, status?, percent?, result?, error?: {error, message}}
//   "failed" = the server checked and failed (fetch_failed, …); "error" = the extension could not get a
//   check made (not_running, cert_untrusted, not_paired, busy, …) and will try again when asked.

export const MSG = Object.freeze({
  CHECK: "check",
  STATUS: "status",
  PAIR: "pair",
  HEATMAP: "heatmap",
  OPEN_LIMITS: "open-limits",
  CHECK_UPDATE: "check-update",
  MENU_TARGET: "menu-target",
  WHERE: "where",
});

export const FINAL_PHASES = new Set(["done", "failed", "error"]);

/** Validates a check target coming from a content script (it runs beside untrusted pages). */
export function validTarget(t) {
  if (!t || typeof t.url !== "string" || t.url.length > 4096) return null;
  let u;
  try {
    u = new URL(t.url);
  } catch {
    return null;
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") return null;
  const kind = ["video", "link", "image"].includes(t.kind) ? t.kind : "video";
  let pageUrl = null;
  try {
    if (t.pageUrl && /^https?:$/.test(new URL(t.pageUrl).protocol)) pageUrl = t.pageUrl;
  } catch { /* no page URL */ }
  return { url: u.href, pageUrl, kind };
}
