// @ts-check
// How a check looks to a person: one label, one colour class, one line of explanation.
// Used by the badge, the popup and the check-a-file page so all three say the same thing.

export const LIMITS_PAGE = "pages/limits.html";

// A post that needs a login can still be checked, two ways: the server fetches it with the
// browser's login (its --cookies-from-browser, for the sites turned on in the options), or the
// extension checks the frames playing in the page (page capture).
const WAYS_TO_CHECK_A_LOGIN = "Two ways to check it: let the server use your browser's login for this site "
  + "(Options → Posts behind a login), or check what is playing on your screen (right-click the video → “Check what's playing for deepfakes”).";
const ONE_WAY_LEFT = "You can still check what is playing on your screen (right-click the video → “Check what's playing for deepfakes”).";

/** @typedef {"busy" | "real" | "fake" | "unsure" | "noface" | "error"} Tone */
/** @typedef {{label: string, tone: Tone, detail: string}} View  what a badge, the popup or the file page shows */

/**
 * The verdict to show. With no override the server's verdict stands; an uncertain band set in the
 * options re-reads p_fake against the server's threshold (the same rule as model/verdict.py).
 * @param {any} result  the server's result
 * @param {number | null} [bandOverride]
 * @returns {string | null} REAL, FAKE, UNCERTAIN, NO_FACE (or whatever else the server said)
 */
export function displayVerdict(result, bandOverride = null) {
  if (!result) return null;
  const v = result.verdict;
  if (v !== "REAL" && v !== "FAKE" && v !== "UNCERTAIN") return v;
  if (bandOverride == null || typeof result.p_fake !== "number") return v;
  const t = typeof result.threshold === "number" ? result.threshold : 0.5;
  if (Math.abs(result.p_fake - t) < bandOverride - 1e-9) return "UNCERTAIN";
  return result.p_fake >= t ? "FAKE" : "REAL";
}

/** @param {any} result @param {string | null} verdict @returns {number | null} */
export function confidenceOf(result, verdict) {
  if (typeof result?.p_fake !== "number") return null;
  if (verdict === "FAKE") return result.p_fake;
  if (verdict === "REAL") return 1 - result.p_fake;
  return Math.max(result.p_fake, 1 - result.p_fake);
}

const pct = (/** @type {number} */ x) => `${Math.round(x * 100)}%`;

/**
 * A check's state (as the service worker reports it) → {label, tone, detail}.
 * tone is one of: busy, real, fake, unsure, noface, error (CSS classes; colour is never the only cue).
 * @param {Partial<import("./messages.js").Update> | null | undefined} update
 * @param {number | null} [bandOverride]
 * @returns {View}
 */
export function describe(update, bandOverride = null) {
  if (!update) return { label: "", tone: "busy", detail: "" };
  if (update.phase === "error" || update.phase === "failed") {
    /** @type {Partial<import("./messages.js").ErrorBody>} */
    const e = update.error || {};
    let detail = e.message || "The check failed.";
    if (e.error === "login_required") detail += ` ${update.cookies ? ONE_WAY_LEFT : WAYS_TO_CHECK_A_LOGIN}`;
    return { label: shortError(e.error), tone: "error", detail };
  }
  if (update.phase === "capturing") {
    const p = update.percent;
    return { label: typeof p === "number" && p > 0 ? `capturing… ${Math.round(p)}%` : "capturing…", tone: "busy",
      detail: "Taking frames from the video while it plays (nothing is downloaded)…" };
  }
  if (update.phase !== "done") {
    const p = update.percent;
    const label = typeof p === "number" && p > 0 ? `checking… ${Math.round(p)}%` : "checking…";
    return { label, tone: "busy", detail: statusText(update.status) };
  }
  const r = update.result;
  if (r?.error && r.verdict !== "NO_FACE") {
    return { label: "error", tone: "error", detail: r.error };
  }
  const v = displayVerdict(r, bandOverride);
  if (v === "NO_FACE") return { label: "No face", tone: "noface", detail: r.error || "No faces detected." };
  if (v === "UNCERTAIN") return { label: "UNSURE", tone: "unsure", detail: `P(fake) ${r.p_fake.toFixed(2)}: too close to call.` };
  const c = confidenceOf(r, v) ?? 0; // a number here: p_fake is one
  if (v === "REAL") return { label: `REAL ${pct(c)}`, tone: "real", detail: `P(fake) ${r.p_fake.toFixed(2)}` };
  if (v === "FAKE") return { label: `FAKE ${pct(c)}`, tone: "fake", detail: `P(fake) ${r.p_fake.toFixed(2)}` };
  return { label: String(v || "?"), tone: "error", detail: "" };
}

/** @param {string | undefined} status */
function statusText(status) {
  return {
    queued: "Waiting for the server…",
    busy: "The server is busy: trying again shortly…",
    downloading: "The server is downloading the video…",
    detecting: "Finding faces…",
    analysing: "Analysing faces…",
  }[status] || "Checking…";
}

// Short words that fit on a badge; the full message goes in the panel and the tooltip.
/** @type {Record<string, string>} */
const SHORT = {
  not_running: "server not running",
  cert_untrusted: "certificate not trusted",
  not_paired: "not paired",
  unauthorized: "not paired",
  busy: "server busy",
  rate_limited: "server busy",
  timeout: "timed out",
  fetch_failed: "can't fetch",
  unsupported_url: "unsupported",
  login_required: "login needed",
  site_changed: "site changed",
  too_large: "too large",
  too_long: "too long",
  not_media: "not a video",
  private_address: "private address",
  bad_url: "no usable URL",
  no_url: "no usable URL",
  // frames captured in the page (content/capture.js)
  cross_origin: "can't read this video's pixels (cross-origin)",
  protected: "protected video",
  no_picture: "no picture yet",
  capture_lost: "check again",
};

/**
 * Where a finished verdict came from, for the details panel.
 * @param {Partial<import("./messages.js").Update> | null | undefined} update
 * @returns {string}
 */
export function sourceText(update) {
  if (update?.source !== "frames") return "Downloaded from the post by your server.";
  const c = update.capture;
  if (!c) return "Frames captured while it played.";
  if (c.paused) return "1 frame captured while the video was paused: playing it gives a better check.";
  return `${c.frames} frame${c.frames === 1 ? "" : "s"} captured while it played${c.live ? " (live)" : ""}.`;
}

/** @param {string | undefined} code */
export function shortError(code) {
  return SHORT[code ?? ""] || "error";
}
