// @ts-check
// The one message schema between content scripts / extension pages and the service worker: one
// @typedef per message, and the answer it gets. Requests go through runtime.sendMessage and get one
// answer; the service worker pushes check progress to the frame that asked with tabs.sendMessage.
// The service worker dispatches requests through a handler map keyed by these types
// (background/service-worker.js), so a message without a typedef here has no handler either.

export const MSG = Object.freeze({
  CHECK: "check",
  STATUS: "status",
  PAIR: "pair",
  HEATMAP: "heatmap",
  OPEN_LIMITS: "open-limits",
  SETTINGS: "settings",
  CHECK_UPDATE: "check-update",
  SETTINGS_CHANGED: "settings-changed",
  MENU_TARGET: "menu-target",
  WHERE: "where",
});

// --- values carried by the messages ------------------------------------------------------------

/** @typedef {"video" | "link" | "image"} TargetKind */
/** @typedef {"auto" | "menu"} Reason  "menu": the user asked (right-click); it goes first and retries a failure. */

/**
 * What to check: the URL the server should fetch, and the page it was found on.
 * @typedef {object} Target
 * @property {string} url
 * @property {string | null} pageUrl
 * @property {TargetKind} kind
 */

/**
 * An error as the server sends it ({"error", "message"}), and as the extension reports its own.
 * @typedef {object} ErrorBody
 * @property {string} error  a stable code: not_running, cert_untrusted, not_paired, fetch_failed, …
 * @property {string} message  for people
 */

/**
 * A check's state as content scripts and pages see it. "failed": the server checked and failed
 * (fetch_failed, …); "error": the extension could not get a check made (not_running,
 * cert_untrusted, not_paired, busy, …) and will try again when asked.
 * @typedef {object} Update
 * @property {"queued" | "checking" | "done" | "failed" | "error"} phase
 * @property {string | null} [id]  the server's check id
 * @property {string} [status]  the server's status (queued, downloading, detecting, analysing, done, failed) or "busy"
 * @property {number | null} [percent]
 * @property {any} [result]  the server's result (docs/api.md), without face boxes
 * @property {ErrorBody | null} [error]
 * @property {boolean} [cached]
 * @property {boolean} [cookies]  the check asked the server to use the browser's login for the post's site
 */

/**
 * The connection to the server, as the popup and the options page show it.
 * @typedef {object} Status
 * @property {"connected" | "not_running" | "cert_untrusted" | "not_paired" | "error"} state
 * @property {string} message
 * @property {string} [server]
 * @property {any} [model]  the server's /v1/model answer
 * @property {string} [version]
 * @property {Fetcher | null} [fetcher]  the server's fetcher (/v1/health); null while it checks itself
 * @property {number} [checkedAt]
 */

/**
 * The server's fetcher (yt-dlp) as /v1/health describes it (docs/api.md).
 * @typedef {object} Fetcher
 * @property {string} yt_dlp
 * @property {string | null} ejs
 * @property {string | null} deno
 * @property {boolean} challenge_solver  YouTube's JavaScript challenges can be solved
 * @property {string[]} problems
 * @property {string | null} released
 * @property {number | null} age_days
 * @property {boolean} stale  older than max_age_days: site downloads may fail
 * @property {number} max_age_days
 * @property {string} update_command
 * @property {string | null} cookies_from  the browser whose login the server can use; null: none
 */

/** @typedef {{active: number, waiting: number, running: string[]}} Activity  what the worker is checking now */

/** @typedef {{ok: false, error: ErrorBody}} Failure  any request's answer when it could not be done */

// --- content script or extension page → service worker (runtime.sendMessage) -------------------

/** @typedef {{type: "check", target: Target, reason?: Reason}} CheckRequest  check target.url (or say how its check is going) */
/** @typedef {{ok: true, update: Update} | Failure} CheckAnswer  progress follows as CheckUpdate messages */

/** @typedef {{type: "status", refresh?: boolean}} StatusRequest  the last known status, or a fresh one */
/** @typedef {{ok: true, status: Status, activity: Activity}} StatusAnswer */

/**
 * Exchange a pairing code for the token. From the options page, with the server it names (default:
 * the configured one). From a server's /pair page (content/pair.js), with that server only if it is
 * the configured one; another server's page gets error "confirm_needed" and the options page opens
 * with a PairProposal for the user to confirm.
 * @typedef {{type: "pair", code: string, server?: string}} PairRequest
 */
/** @typedef {{ok: true, status: Status} | Failure} PairAnswer */
/**
 * A pairing waiting for the user's yes on the options page (storage.session "pairProposal").
 * @typedef {{server: string, code: string, at: number}} PairProposal
 */

/** @typedef {{type: "heatmap", path: string}} HeatmapRequest  path: a result's heatmap_url (/v1/checks/ID/heatmap.png) */
/** @typedef {{ok: true, dataUrl: string} | Failure} HeatmapAnswer */

/** @typedef {{type: "open-limits"}} OpenLimitsRequest  open the "why a verdict can be wrong" page */
/** @typedef {{ok: true}} OpenLimitsAnswer */

/**
 * The settings a content script needs, for the frame that asks (content scripts never read
 * storage: it holds the token).
 * @typedef {{type: "settings"}} SettingsRequest
 */
/**
 * @typedef {object} ContentSettings
 * @property {number | null} uncertainBand  the options' override of the server's band
 * @property {boolean} autoCheck  check visible videos on this page without being asked
 */
/** @typedef {{ok: true, settings: ContentSettings}} SettingsAnswer */

/** @typedef {CheckRequest | StatusRequest | PairRequest | HeatmapRequest | OpenLimitsRequest | SettingsRequest} Request */
/**
 * The answer each request type gets.
 * @typedef {{check: CheckAnswer, status: StatusAnswer, pair: PairAnswer, heatmap: HeatmapAnswer,
 *   "open-limits": OpenLimitsAnswer, settings: SettingsAnswer}} AnswerTo
 */

// --- service worker → content script (tabs.sendMessage, to the frame that asked) ---------------

/** @typedef {{type: "check-update", url: string, update: Update}} CheckUpdate  no answer */

/**
 * To every tab (all frames): the settings changed; ask again (SettingsRequest). reconnected: the
 * server or the token changed, so checks that could not be made are worth asking for again.
 * @typedef {{type: "settings-changed", reconnected: boolean}} SettingsChanged  no answer
 */

/**
 * What the browser told the service worker about a right-click (menus.onClicked's info).
 * @typedef {object} MenuInfo
 * @property {TargetKind} kind
 * @property {string | null} srcUrl
 * @property {string | null} linkUrl
 * @property {string | null} pageUrl
 * @property {string | null} frameUrl
 * @property {number | null} targetElementId  Firefox: menus.getTargetElement() finds the element
 */
/** @typedef {{type: "menu-target", info: MenuInfo}} MenuTargetRequest  check the element that was right-clicked */
/** @typedef {{ok: true, target: {url: string, kind: TargetKind}} | {ok: false}} MenuTargetAnswer */

// --- popup → content script (tabs.sendMessage, top frame) --------------------------------------
// The popup needs no "tabs" permission to know the site: the page's content script says.

/** @typedef {{type: "where"}} WhereRequest */
/**
 * videos: the videos the site adapter found on the page and saw on screen; unresolved: those of
 * them it could not resolve to a post (its selectors no longer match the site's markup).
 * @typedef {{url: string, origin: string, siteId: string, videos: number, unresolved: number}} WhereAnswer
 */

export const FINAL_PHASES = new Set(["done", "failed", "error"]);

/**
 * Validates a check target coming from a content script (it runs beside untrusted pages).
 * @param {any} t
 * @returns {Target | null}
 */
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
