// @ts-check
// The one message schema between content scripts / extension pages and the service worker: one
// @typedef per message, and the answer it gets. Requests go through runtime.sendMessage and get one
// answer; the service worker pushes check progress to the frame that asked with tabs.sendMessage.
// The service worker dispatches requests through a handler map keyed by these types
// (background/service-worker.js), so a message without a typedef here has no handler either.

export const MSG = Object.freeze({
  CHECK: "check",
  CHECK_FRAMES: "check-frames",
  STATUS: "status",
  PAIR: "pair",
  HEATMAP: "heatmap",
  OPEN_LIMITS: "open-limits",
  SETTINGS: "settings",
  IN_VIEW: "in-view",
  PAIR_STATE: "pair-state",
  CHECK_UPDATE: "check-update",
  SETTINGS_CHANGED: "settings-changed",
  MENU_TARGET: "menu-target",
  WHERE: "where",
  FEEDBACK: "feedback",
  KEEP_CLIP: "keep-clip",
});

// --- values carried by the messages ------------------------------------------------------------

/** @typedef {"video" | "link" | "image"} TargetKind */
/**
 * What a right-click item asks for: check the element's address (its kind), check what the video
 * shows now ("playing": frames captured in the page), or watch it ("watch": live mode, on/off).
 * @typedef {TargetKind | "playing" | "watch"} MenuKind
 */
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
 * Frames captured in the page: how many, and whether the video was paused (one frame of what was
 * on screen) or live.
 * @typedef {{frames: number, paused: boolean, live: boolean}} CaptureInfo
 */

/**
 * A check's state as content scripts and pages see it. "failed": the server checked and failed
 * (fetch_failed, …); "error": the extension could not get a check made (not_running,
 * cert_untrusted, not_paired, busy, …) and will try again when asked. "capturing": the content
 * script is taking frames from the video (before anything is sent).
 * @typedef {object} Update
 * @property {"capturing" | "queued" | "checking" | "done" | "failed" | "error"} phase
 * @property {"url" | "frames"} [source]  where the verdict comes from: the post downloaded by the server, or frames captured in the page
 * @property {CaptureInfo | null} [capture]  for source "frames"
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

/**
 * Check frames captured from a video in the page (POST /v1/checks/frames). `key` names the check
 * as `url` does for CheckRequest ("capture:<post URL>" for a post the server could not fetch,
 * "live:<n>" for a watched video); progress follows as CheckUpdate messages with url = key.
 * Without `frames` it only asks how the check under `key` stands ({phase: "none"} for none).
 * `frames`: base64 JPEGs (runtime messages carry JSON only), `times`: each one's time in the video.
 * @typedef {object} FramesCheckRequest
 * @property {"check-frames"} type
 * @property {string} key
 * @property {string | null} pageUrl
 * @property {string[]} [frames]
 * @property {number[]} [times]
 * @property {CaptureInfo} [capture]
 * @property {Reason} [reason]
 */
/** @typedef {{ok: true, update: Update | {phase: "none"}} | Failure} FramesCheckAnswer */

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
 * @property {number} captureFrames  frames to capture from a playing video (spread over up to ~8 s)
 */
/** @typedef {{ok: true, settings: ContentSettings}} SettingsAnswer */

/**
 * The checks of the sender's frame that are in view now, nearest the middle of the viewport first
 * (URLs or capture keys, as asked). Waiting checks go in this order, before those scrolled away.
 * @typedef {{type: "in-view", urls: string[]}} InViewRequest
 */
/** @typedef {{ok: true}} InViewAnswer */

/**
 * From a server's /pair page (content/pair.js): is the extension already paired with this server,
 * and connected to it? Then the page says so instead of offering a code that has been used.
 * @typedef {{type: "pair-state"}} PairStateRequest
 */
/** @typedef {{ok: true, paired: boolean}} PairStateAnswer */

/** @typedef {"REAL" | "FAKE"} Truth  the user's view of what a video is */
/**
 * A check in the server's history (docs/api.md, GET /v1/history), with the user's answer.
 * @typedef {object} HistoryEntry
 * @property {string} id  the check's id
 * @property {string} created
 * @property {"url" | "upload" | "frames"} source
 * @property {string | null} site  the post's (or page's) host; null for a file
 * @property {string | null} url  only when the user lets the history keep addresses (options)
 * @property {string | null} content_sha256
 * @property {string} verdict  as it was shown: REAL, FAKE, UNCERTAIN, NO_FACE
 * @property {number | null} p_fake
 * @property {number | null} confidence
 * @property {string | null} model
 * @property {"model" | "personal"} calibration  whose cuts decided the verdict
 * @property {{label: Truth, note: string | null, agrees: boolean, at: string} | null} feedback
 * @property {boolean} clip_kept
 */

/**
 * The user's answer to "Is this right?" on a badge's details: the truth as they see it (Yes sends
 * the verdict's own label), null to withdraw it; a later answer replaces it.
 * @typedef {{type: "feedback", checkId: string, label: Truth | null, note?: string | null}} FeedbackRequest
 */
/** @typedef {{ok: true, entry: HistoryEntry} | Failure} FeedbackAnswer */
/**
 * Keep (or stop keeping) a checked post's clip for retraining: the server fetches the post at `url`
 * again, which must be the address that was checked.
 * @typedef {{type: "keep-clip", checkId: string, url: string, keep: boolean}} KeepClipRequest
 */
/** @typedef {{ok: true, entry: HistoryEntry} | Failure} KeepClipAnswer */

/** @typedef {CheckRequest | FramesCheckRequest | StatusRequest | PairRequest | HeatmapRequest | OpenLimitsRequest | SettingsRequest | InViewRequest | PairStateRequest | FeedbackRequest | KeepClipRequest} Request */
/**
 * The answer each request type gets.
 * @typedef {{check: CheckAnswer, "check-frames": FramesCheckAnswer, status: StatusAnswer, pair: PairAnswer,
 *   heatmap: HeatmapAnswer, "open-limits": OpenLimitsAnswer, settings: SettingsAnswer, "in-view": InViewAnswer,
 *   "pair-state": PairStateAnswer, feedback: FeedbackAnswer, "keep-clip": KeepClipAnswer}} AnswerTo
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
 * @property {MenuKind} kind
 * @property {string | null} srcUrl
 * @property {string | null} linkUrl
 * @property {string | null} pageUrl
 * @property {string | null} frameUrl
 * @property {number | null} targetElementId  Firefox: menus.getTargetElement() finds the element
 */
/** @typedef {{type: "menu-target", info: MenuInfo}} MenuTargetRequest  check the element that was right-clicked */
/** @typedef {{ok: true, target: {url: string, kind: MenuKind}} | {ok: false}} MenuTargetAnswer */

// --- popup → content script (tabs.sendMessage, top frame) --------------------------------------
// The popup needs no "tabs" permission to know the site: the page's content script says.

/** @typedef {{type: "where"}} WhereRequest */
/**
 * videos: the videos the site adapter found on the page and saw on screen; unresolved: those of
 * them it could not resolve to a post (its selectors no longer match the site's markup).
 * @typedef {{url: string, origin: string, siteId: string, videos: number, unresolved: number}} WhereAnswer
 */

export const FINAL_PHASES = new Set(["done", "failed", "error"]);

// The server's limits for an answer (server/config.py, docs/api.md): a check id, and a note.
export const CHECK_ID = /^[A-Za-z0-9_-]{16}$/;
export const MAX_NOTE_CHARS = 1000;

/**
 * Validates an answer coming from a content script (it runs beside untrusted pages).
 * @param {any} msg
 * @returns {{checkId: string, label: "REAL" | "FAKE" | null, note: string | null} | null}
 */
export function validFeedback(msg) {
  const { checkId, label, note = null } = msg ?? {};
  if (typeof checkId !== "string" || !CHECK_ID.test(checkId)) return null;
  if (label !== null && label !== "REAL" && label !== "FAKE") return null;
  if (note !== null && (typeof note !== "string" || note.length > MAX_NOTE_CHARS)) return null;
  return { checkId, label, note: note?.trim() || null };
}

// Captured frames as the service worker accepts them from a content script (the server's limits:
// server/config.py): at most this many, each at most this many base64 characters (4 MB).
export const MAX_CAPTURED_FRAMES = 100;
export const MAX_FRAME_BASE64 = Math.ceil((4 * 1024 * 1024) / 3) * 4;

/**
 * Validates captured frames coming from a content script.
 * @param {any} msg
 * @returns {{key: string, pageUrl: string | null, frames: string[], times: number[], capture: CaptureInfo} | null}
 */
export function validFrames(msg) {
  const { key, frames, times } = msg ?? {};
  if (typeof key !== "string" || !/^(capture|live):/.test(key) || key.length > 4200) return null;
  if (!Array.isArray(frames) || !Array.isArray(times) || frames.length < 1 || frames.length > MAX_CAPTURED_FRAMES
    || times.length !== frames.length) return null;
  if (!frames.every((f) => typeof f === "string" && f.length <= MAX_FRAME_BASE64 && /^[A-Za-z0-9+/]+=*$/.test(f))) return null;
  if (!times.every((t) => typeof t === "number" && Number.isFinite(t) && t >= 0)) return null;
  let pageUrl = null;
  try {
    if (msg.pageUrl && /^https?:$/.test(new URL(msg.pageUrl).protocol)) pageUrl = msg.pageUrl;
  } catch { /* no page URL */ }
  const c = msg.capture ?? {};
  return { key, pageUrl, frames, times, capture: { frames: frames.length, paused: !!c.paused, live: !!c.live } };
}

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
