// @ts-check
// The server's API (docs/api.md) as functions. Used by the service worker and by the extension's
// own pages (the check-a-file page uploads from here); never by content scripts, which run with the
// page's origin.
import { api } from "../shared/browser.js";

/** @typedef {import("../shared/messages.js").Update} Update */
/**
 * A check as the server describes it (docs/api.md: GET /v1/checks/{id}).
 * @typedef {object} Check
 * @property {string} id
 * @property {"queued" | "downloading" | "detecting" | "analysing" | "done" | "failed"} status
 * @property {{percent?: number} | null} [progress]
 * @property {any} [result]
 * @property {import("../shared/messages.js").ErrorBody} [error]
 * @property {boolean} [cached]
 */
/** @typedef {(waitSeconds: number, error: ServerError) => void} OnBusy  told before each wait while the server is busy */
/** @typedef {import("../shared/messages.js").HistoryEntry} HistoryEntry */
/**
 * GET /v1/calibration (docs/api.md): the cuts in use, and how the user's answers met this model's verdicts.
 * @typedef {object} Calibration
 * @property {{name: string | null, threshold: number, uncertain_band: number}} model  the model's own cuts
 * @property {"model" | "personal"} calibration
 * @property {any} personal  the personal cuts, with before/after on the answers, or null
 * @property {number} min_answers
 * @property {number} usable_answers
 * @property {{answers: number, fake_verdicts: number, fake_marked_real: number, real_verdicts: number,
 *   real_marked_fake: number, uncertain_answered: number}} answers
 */
/**
 * @typedef {object} RequestOptions
 * @property {string} [method]
 * @property {unknown} [json]  sent as the JSON body
 * @property {BodyInit} [body]
 * @property {Record<string, string>} [headers]
 * @property {number} [timeoutMs]
 * @property {AbortSignal} [signal]
 * @property {boolean} [auth]  send the token (every endpoint but health and pair needs it)
 */

export const REQUEST_TIMEOUT_MS = 15_000;
// Each message says what is wrong and what to do, without repeating the status title it is shown
// under ("Not paired: …"): pages/status-view.js puts the two together.
export const NOT_PAIRED_YET = "The extension has no token for this server yet: open the pairing link the server printed "
  + "and click the button on it, or paste the code in the options.";
const TOKEN_REFUSED = "The server did not accept the extension's token (it was rotated, or the server was set up again): "
  + "pair again with the link the server printed, or paste the code in the options.";
export const TRUST_COMMAND = ".venv/bin/python -m server trust";
export const UPLOAD_TIMEOUT_MS = 10 * 60_000;
const MAX_BUSY_RETRIES = 5;
const MAX_RETRY_WAIT_S = 30;

/** An error with a stable code, like the server's {"error", "message"} bodies. */
export class ServerError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {{status?: number, retryAfter?: number | null}} [details]  the HTTP status (0: none), Retry-After in seconds
   */
  constructor(code, message, { status = 0, retryAfter = null } = {}) {
    super(message);
    this.code = code;
    this.status = status;
    this.retryAfter = retryAfter;
  }
  toJSON() {
    return { error: this.code, message: this.message };
  }
}

// The last network error per server origin, from webRequest (when the browser lets us see it):
// the only way to tell "nothing listening" from "certificate not trusted", which fetch() reports alike.
/** @type {Map<string, {error: string, at: number}>} */
const lastNetError = new Map();

export function watchNetworkErrors() {
  const wr = api.webRequest;
  if (!wr?.onErrorOccurred) return;
  wr.onErrorOccurred.addListener(
    (d) => {
      try {
        lastNetError.set(new URL(d.url).origin, { error: d.error, at: Date.now() });
      } catch { /* not a URL we care about */ }
    },
    { urls: ["https://127.0.0.1/*", "https://localhost/*"] },
  );
}

const CERT = /CERT|SSL|SEC_ERROR|MOZILLA_PKIX|ERR_BAD_SSL|certificate/i;

/** @param {string} origin */
async function networkError(origin) {
  // webRequest's event can arrive just after fetch() rejects.
  await new Promise((r) => setTimeout(r, 50));
  const seen = lastNetError.get(origin);
  const recent = seen && Date.now() - seen.at < 5000;
  if (recent && CERT.test(seen.error)) {
    return new ServerError("cert_untrusted",
      `The browser refuses the server's certificate (${seen.error}). Run \`${TRUST_COMMAND}\` where the server runs, then restart the browser.`);
  }
  const detail = recent ? ` (${seen.error})` : "";
  return new ServerError("not_running",
    `Cannot reach the Deepfake Check server at ${origin}${detail}. Start it with \`make serve\` and keep it running.`
    + (recent ? "" : ` If it is running, its certificate may not be trusted: run \`${TRUST_COMMAND}\`.`),
    { status: 0 });
}

/** @param {Response} res */
function retryAfterSeconds(res) {
  const v = Number(res.headers.get("Retry-After"));
  return Number.isFinite(v) && v >= 0 ? Math.min(v, MAX_RETRY_WAIT_S) : null;
}

/** @param {Response} res @returns {Promise<ServerError>} */
async function errorFrom(res) {
  let body = null;
  try {
    body = await res.json();
  } catch { /* not JSON */ }
  const code = body?.error || (res.status === 401 ? "unauthorized" : `http_${res.status}`);
  const message = body?.message || `The server answered ${res.status} ${res.statusText}.`;
  if (res.status === 401) {
    return new ServerError("not_paired", TOKEN_REFUSED, { status: 401 });
  }
  return new ServerError(code, message, { status: res.status, retryAfter: retryAfterSeconds(res) });
}

export class Client {
  /** @param {string} server  "https://127.0.0.1:8765" @param {string | null} token  the bearer token */
  constructor(server, token) {
    this.server = server;
    this.token = token;
  }

  /**
   * fetch() with a timeout, the token, and the server's errors turned into ServerError.
   * @param {string} path
   * @param {RequestOptions} [options]
   * @returns {Promise<Response>}
   */
  async raw(path, { method = "GET", json, body, headers = {}, timeoutMs = REQUEST_TIMEOUT_MS, signal, auth = true } = {}) {
    /** @type {Record<string, string>} */
    const h = { ...headers };
    if (auth) {
      if (!this.token) throw new ServerError("not_paired", NOT_PAIRED_YET);
      h.Authorization = `Bearer ${this.token}`;
    }
    if (json !== undefined) {
      h["Content-Type"] = "application/json";
      body = JSON.stringify(json);
    }
    const signals = [AbortSignal.timeout(timeoutMs)];
    if (signal) signals.push(signal);
    let res;
    try {
      res = await fetch(this.server + path, { method, headers: h, body, signal: AbortSignal.any(signals), credentials: "omit", cache: "no-store" });
    } catch (e) {
      if (signal?.aborted) throw e;
      if (e?.name === "TimeoutError") throw new ServerError("timeout", `The server did not answer within ${Math.round(timeoutMs / 1000)} s.`);
      throw await networkError(this.server);
    }
    if (!res.ok) throw await errorFrom(res);
    return res;
  }

  /** @param {string} path @param {RequestOptions} [opts] @returns {Promise<any>} */
  async json(path, opts) {
    return (await this.raw(path, opts)).json();
  }

  /**
   * Like json(), but waits and retries while the server says it is busy (503/429 Retry-After).
   * @param {string} path @param {RequestOptions} [opts] @param {OnBusy} [onBusy]
   */
  async jsonRetrying(path, opts = {}, onBusy = () => {}) {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.json(path, opts);
      } catch (e) {
        const busy = e instanceof ServerError && (e.status === 503 || e.status === 429);
        if (!busy || attempt >= MAX_BUSY_RETRIES) throw e;
        const wait = e.retryAfter ?? Math.min(2 ** attempt, MAX_RETRY_WAIT_S);
        onBusy(wait, e);
        await new Promise((r) => setTimeout(r, wait * 1000));
      }
    }
  }

  health() {
    return this.json("/v1/health", { auth: false, timeoutMs: 5000 });
  }

  /** @param {string} code @returns {Promise<string>} the token */
  async pair(code) {
    const body = await this.json("/v1/pair", { method: "POST", json: { code: code.trim().toUpperCase() }, auth: false })
      .catch((e) => {
        if (e.status === 401) throw new ServerError("bad_code", "The server did not accept that pairing code (wrong, used or expired). Restart the server for a new one.", { status: 401 });
        throw e;
      });
    if (!body?.token) throw new ServerError("bad_response", "The server's pairing answer had no token.");
    return body.token;
  }

  model() {
    return this.json("/v1/model", { timeoutMs: 5000 });
  }

  /**
   * @param {string} url @param {string | null} pageUrl @param {OnBusy} [onBusy]
   * @param {boolean} [useCookies]  fetch with the browser's login for url's site (the server's --cookies-from-browser)
   * @param {boolean} [rememberUrl]  the history may keep the address (the options' choice; else only its host)
   * @returns {Promise<Check>}
   */
  createCheck(url, pageUrl, onBusy, useCookies = false, rememberUrl = false) {
    /** @type {{url: string, page_url?: string, use_cookies?: boolean, remember_url?: boolean}} */
    const json = { url };
    if (pageUrl && /^https?:/.test(pageUrl)) json.page_url = pageUrl;
    if (useCookies) json.use_cookies = true;
    if (rememberUrl) json.remember_url = true;
    return this.jsonRetrying("/v1/checks", { method: "POST", json }, onBusy);
  }

  /**
   * POST /v1/checks/frames: frames captured in the page. Waits and retries while the server is
   * busy (503/429 Retry-After), like every check.
   * @param {Blob[]} frames  JPEGs
   * @param {number[]} times  each frame's time in the video (seconds)
   * @param {string | null} pageUrl
   * @param {OnBusy} [onBusy]
   * @param {boolean} [rememberUrl]  the history may keep the page's address (else only its host)
   * @returns {Promise<Check>}
   */
  async checkFrames(frames, times, pageUrl, onBusy, rememberUrl = false) {
    const make = () => {
      const form = new FormData();
      frames.forEach((f, i) => form.append("frame", f, `frame-${i}.jpg`));
      form.append("times", JSON.stringify(times));
      if (pageUrl && /^https?:/.test(pageUrl)) form.append("page_url", pageUrl);
      if (rememberUrl) form.append("remember_url", "true");
      return form;
    };
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.json("/v1/checks/frames", { method: "POST", body: make(), timeoutMs: UPLOAD_TIMEOUT_MS });
      } catch (e) {
        if (!(e.status === 503 || e.status === 429) || attempt >= MAX_BUSY_RETRIES) throw e;
        const wait = e.retryAfter ?? Math.min(2 ** attempt, MAX_RETRY_WAIT_S);
        onBusy?.(wait, e);
        await new Promise((r) => setTimeout(r, wait * 1000));
      }
    }
  }

  /** @param {string} id @returns {Promise<Check>} */
  getCheck(id) {
    return this.json(`/v1/checks/${encodeURIComponent(id)}`);
  }

  /**
   * @param {File} file
   * @param {{onBusy?: OnBusy, signal?: AbortSignal}} [options]
   * @returns {Promise<Check>}
   */
  async uploadFile(file, { onBusy, signal } = {}) {
    const make = () => {
      const form = new FormData();
      form.append("file", file, file.name || "upload");
      return form;
    };
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.json("/v1/checks/upload", { method: "POST", body: make(), timeoutMs: UPLOAD_TIMEOUT_MS, signal });
      } catch (e) {
        if (!(e.status === 503 || e.status === 429) || attempt >= MAX_BUSY_RETRIES) throw e;
        const wait = e.retryAfter ?? Math.min(2 ** attempt, MAX_RETRY_WAIT_S);
        onBusy?.(wait, e);
        await new Promise((r) => setTimeout(r, wait * 1000));
      }
    }
  }

  // --- the user's answers and the history (docs/api.md) ---

  /**
   * @param {string} checkId @param {"REAL" | "FAKE" | null} label  null withdraws the answer
   * @param {string | null} [note]
   * @returns {Promise<HistoryEntry>}
   */
  feedback(checkId, label, note = null) {
    return this.json("/v1/feedback", { method: "POST", json: { check_id: checkId, label, note } });
  }

  /**
   * @param {{limit?: number, offset?: number, verdict?: string, feedback?: string}} [query]
   * @returns {Promise<{items: HistoryEntry[], total: number, limit: number, offset: number, kept_days: number}>}
   */
  history(query = {}) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== "") q.set(k, String(v));
    return this.json(`/v1/history${q.size ? `?${q}` : ""}`);
  }

  /** @param {string} [id]  one entry; none: the whole history @returns {Promise<{deleted: number}>} */
  deleteHistory(id) {
    return this.json(id ? `/v1/history/${encodeURIComponent(id)}` : "/v1/history", { method: "DELETE" });
  }

  /**
   * Keep a check's clip for retraining: an upload's file (the same bytes), or a post the server
   * fetches again (its address, or none when the history kept it).
   * @param {string} id @param {{file?: File, url?: string}} what
   * @returns {Promise<HistoryEntry>}
   */
  keepClip(id, { file, url } = {}) {
    const path = `/v1/history/${encodeURIComponent(id)}/clip`;
    if (file) {
      const form = new FormData();
      form.append("file", file, file.name || "upload");
      return this.json(path, { method: "PUT", body: form, timeoutMs: UPLOAD_TIMEOUT_MS });
    }
    return this.json(path, { method: "PUT", json: url ? { url } : {}, timeoutMs: UPLOAD_TIMEOUT_MS });
  }

  /** @param {string} id @returns {Promise<HistoryEntry>} */
  dropClip(id) {
    return this.json(`/v1/history/${encodeURIComponent(id)}/clip`, { method: "DELETE" });
  }

  /**
   * The cuts in use and the user's answers on this model's checks; "refit" fits personal cuts,
   * "undo" removes them.
   * @param {"get" | "refit" | "undo"} [action]
   * @returns {Promise<Calibration>}
   */
  calibration(action = "get") {
    const method = { get: "GET", refit: "POST", undo: "DELETE" }[action];
    return this.json("/v1/calibration", { method, timeoutMs: 60_000 });
  }

  /** @param {string} path  a result's heatmap_url @returns {Promise<string>} a data: URL */
  async heatmapDataUrl(path) {
    const res = await this.raw(path, { timeoutMs: 10_000 });
    const buf = new Uint8Array(await res.arrayBuffer());
    let bin = "";
    for (let i = 0; i < buf.length; i += 0x8000) bin += String.fromCharCode(...buf.subarray(i, i + 0x8000));
    return `data:image/png;base64,${btoa(bin)}`;
  }

  /**
   * Follows a check until it is done or failed, calling onUpdate(check) on each change. Reads the
   * event stream with fetch() (EventSource cannot send the token); falls back to polling.
   * @param {string} id
   * @param {(check: Check) => void} onUpdate
   * @param {{signal?: AbortSignal, deadlineMs?: number}} [options]
   * @returns {Promise<Check>} the final check (done or failed)
   */
  async follow(id, onUpdate, { signal, deadlineMs = 15 * 60_000 } = {}) {
    const deadline = Date.now() + deadlineMs;
    try {
      const final = await this.#stream(id, onUpdate, signal, deadline);
      if (final) return final;
    } catch (e) {
      if (signal?.aborted) throw e;
      if (e instanceof ServerError && (e.code === "not_paired" || e.code === "not_found")) throw e;
      // else: stream unsupported or cut: poll
    }
    let wait = 500;
    while (Date.now() < deadline) {
      const check = await this.getCheck(id);
      onUpdate(check);
      if (check.status === "done" || check.status === "failed") return check;
      await new Promise((r) => setTimeout(r, wait));
      wait = Math.min(wait * 1.5, 3000);
    }
    throw new ServerError("timeout", "The check took too long.");
  }

  /**
   * @param {string} id @param {(check: Check) => void} onUpdate @param {AbortSignal | undefined} signal
   * @param {number} deadline  Date.now() by which it must end
   * @returns {Promise<Check | null>} the final check, or null when the stream ended before it
   */
  async #stream(id, onUpdate, signal, deadline) {
    const res = await this.raw(`/v1/checks/${encodeURIComponent(id)}/events`, {
      headers: { Accept: "text/event-stream" }, timeoutMs: Math.max(1000, deadline - Date.now()), signal,
    });
    const body = /** @type {ReadableStream<any>} an event stream always has one */ (res.body);
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    let last = null;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value.replace(/\r\n/g, "\n");
      let cut;
      while ((cut = buf.indexOf("\n\n")) >= 0) {
        const event = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        const data = event.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
        if (!data) continue;
        last = JSON.parse(data);
        onUpdate(last);
        if (last.status === "done" || last.status === "failed") {
          reader.cancel().catch(() => {});
          return last;
        }
      }
    }
    return last && (last.status === "done" || last.status === "failed") ? last : null;
  }
}

/**
 * A server check JSON → the extension's update shape (the one message schema's payload).
 * @param {Check} check
 * @returns {Update}
 */
export function updateFromCheck(check) {
  if (check.status === "done") {
    return { phase: "done", id: check.id, status: "done", percent: 100, result: check.result, cached: !!check.cached };
  }
  if (check.status === "failed") {
    return { phase: "failed", id: check.id, status: "failed", error: check.error || { error: "internal", message: "The check failed." } };
  }
  return { phase: "checking", id: check.id, status: check.status, percent: check.progress?.percent ?? null };
}
