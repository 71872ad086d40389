// @ts-check
// Takes frames from a <video> in the page, for the videos the server cannot download (a post behind
// a login, a blob:/MediaSource player, a live stream): N frames spread over up to WINDOW_S seconds
// of playback, downscaled to at most MAX_SIDE px on the long side and encoded as JPEG. The pixels
// never leave the browser except to the user's own server, through the service worker.

export const DEFAULT_FRAMES = 20;
export const WINDOW_S = 8; // the frames are spread over this much playback (or less: a short clip ends first)
export const MAX_SIDE = 1280;
export const QUALITY = 0.92;
const PROBE = 16; // px: each frame is also drawn this small to tell a black (protected) picture and a tainted canvas
const DARK = 12; // max channel value (0-255) below which a probe counts as black
const WAIT_FOR_PICTURE_MS = 5000;
// Firefox runs content scripts behind Xray wrappers: a promise made by the page's OffscreenCanvas
// cannot be awaited here ("Permission denied to access property constructor"), so in Firefox the
// frames are encoded with canvas.toBlob (asynchronous too, off the main thread) and read with a
// FileReader, both callback APIs.
const FIREFOX_CONTENT_SCRIPT = "wrappedJSObject" in globalThis;

/** Why frames could not be taken; `code` is what the badge says (shared/verdict.js). */
export class CaptureError extends Error {
  /** @param {"cross_origin" | "protected" | "no_picture"} code @param {string} message */
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/**
 * @typedef {object} Captured
 * @property {Blob[]} frames  JPEGs, in the order taken
 * @property {number[]} times  each frame's time in the video (seconds)
 * @property {number} width
 * @property {number} height
 * @property {boolean} paused  the video was paused: one frame of what was on screen
 * @property {boolean} live  a live stream (no end)
 */

/**
 * @typedef {object} CaptureOptions
 * @property {number} [count]  frames wanted (a paused video gives one)
 * @property {number} [windowS]
 * @property {AbortSignal} [signal]  stops early: the frames taken so far are kept
 * @property {(done: number) => void} [onProgress]  0..1
 */

/** @param {number} w @param {number} h @returns {OffscreenCanvas | HTMLCanvasElement} */
function makeCanvas(w, h) {
  if (typeof OffscreenCanvas === "function" && !FIREFOX_CONTENT_SCRIPT) return new OffscreenCanvas(w, h);
  const c = document.createElement("canvas");
  c.width = w;
  c.height = h;
  return c;
}

/**
 * JPEG of the canvas as it is now (both APIs copy the bitmap at once: the next frame may be drawn
 * while this one is encoded, off the main thread where the browser can).
 * @param {OffscreenCanvas | HTMLCanvasElement} canvas
 * @returns {Promise<Blob>}
 */
function encode(canvas) {
  if ("convertToBlob" in canvas) return canvas.convertToBlob({ type: "image/jpeg", quality: QUALITY });
  return new Promise((resolve, reject) => canvas.toBlob((b) => (b ? resolve(b) : reject(new Error("toBlob failed"))), "image/jpeg", QUALITY));
}

/** @param {HTMLVideoElement} video @param {number} ms */
function waitForPicture(video, ms) {
  if (video.readyState >= 2 && video.videoWidth > 0) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (/** @type {boolean} */ ok) => {
      clearTimeout(timer);
      video.removeEventListener("loadeddata", onData);
      resolve(ok);
    };
    const onData = () => done(true);
    const timer = setTimeout(() => done(video.readyState >= 2 && video.videoWidth > 0), ms);
    video.addEventListener("loadeddata", onData);
  });
}

/** A live stream: no end (MediaSource live players report Infinity; some report a growing seekable range). */
export function isLive(/** @type {HTMLVideoElement} */ video) {
  return video.duration === Infinity;
}

/**
 * Frames from a video, as the server's POST /v1/checks/frames takes them. Throws CaptureError when
 * the pixels cannot be read (a cross-origin video without CORS taints the canvas), when every frame
 * is black (DRM, or nothing shown yet: never sent as a verdict), or when there is no picture.
 * @param {HTMLVideoElement} video
 * @param {CaptureOptions} [options]
 * @returns {Promise<Captured>}
 */
export async function captureFrames(video, { count = DEFAULT_FRAMES, windowS = WINDOW_S, signal, onProgress } = {}) {
  if (!(await waitForPicture(video, WAIT_FOR_PICTURE_MS))) {
    throw new CaptureError("no_picture", "This video has no picture to check yet: play it, then check again.");
  }
  const scale = Math.min(1, MAX_SIDE / Math.max(video.videoWidth, video.videoHeight));
  const width = Math.max(1, Math.round(video.videoWidth * scale));
  const height = Math.max(1, Math.round(video.videoHeight * scale));
  const canvas = makeCanvas(width, height);
  const probe = makeCanvas(PROBE, PROBE);
  const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
  const pctx = /** @type {CanvasRenderingContext2D} */ (probe.getContext("2d", { willReadFrequently: true }));
  const paused = video.paused || video.ended;
  const want = paused ? 1 : Math.max(1, Math.min(100, count));
  const step = windowS / want;
  /** @type {Promise<Blob>[]} */
  const blobs = [];
  /** @type {number[]} */
  const times = [];
  let dark = true;

  const take = (/** @type {number} */ t) => {
    pctx.drawImage(video, 0, 0, PROBE, PROBE);
    let px;
    try {
      px = pctx.getImageData(0, 0, PROBE, PROBE).data;
    } catch (e) {
      if (e?.name === "SecurityError") {
        throw new CaptureError("cross_origin", "Can't read this video's pixels: it comes from another site that does not allow it (cross-origin).");
      }
      throw e;
    }
    for (let i = 0; i < px.length && dark; i += 4) if (px[i] > DARK || px[i + 1] > DARK || px[i + 2] > DARK) dark = false;
    ctx.drawImage(video, 0, 0, width, height);
    blobs.push(encode(canvas));
    times.push(Math.max(0, t));
    onProgress?.(blobs.length / want);
  };

  take(video.currentTime);
  if (blobs.length < want) await spread(video, want, step, windowS, take, signal);
  const frames = await Promise.all(blobs);
  if (dark) {
    throw new CaptureError("protected", "The captured picture is black: the video is protected (DRM) or shows nothing. Nothing was sent.");
  }
  return { frames, times, width, height, paused, live: isLive(video) };
}

/**
 * Calls take(mediaTime) each time playback has moved on by `step` seconds, until `want` frames are
 * taken, playback stops, or windowS (plus slack) of wall-clock time has passed. Frames come from
 * requestVideoFrameCallback where there is one (each a frame actually presented); a timer backs it
 * up (a video that is not being painted gets no callbacks).
 * @param {HTMLVideoElement} video @param {number} want @param {number} step @param {number} windowS
 * @param {(t: number) => void} take @param {AbortSignal | undefined} signal
 */
function spread(video, want, step, windowS, take, signal) {
  return new Promise((resolve, reject) => {
    let taken = 1;
    let last = video.currentTime;
    let finished = false;
    const deadline = performance.now() + (windowS + 4) * 1000;
    const finish = (/** @type {unknown} */ error) => {
      if (finished) return;
      finished = true;
      clearInterval(timer);
      if (error) reject(error);
      else resolve(undefined);
    };
    const tick = (/** @type {number} */ t) => {
      if (finished) return;
      try {
        if (t >= last + step - 1e-3 || t < last - 1) { // on by a step (or looped back to the start)
          take(t);
          taken++;
          last = t;
        }
      } catch (e) {
        finish(e);
        return;
      }
      if (taken >= want || video.paused || video.ended || !video.isConnected || signal?.aborted || performance.now() > deadline) finish(null);
    };
    const hasRvfc = typeof video.requestVideoFrameCallback === "function";
    const onFrame = (/** @type {number} */ _now, /** @type {{mediaTime: number}} */ meta) => {
      tick(meta.mediaTime);
      if (!finished) video.requestVideoFrameCallback(onFrame);
    };
    if (hasRvfc) video.requestVideoFrameCallback(onFrame);
    const timer = setInterval(() => tick(video.currentTime), Math.max(50, (step * 1000) / 2));
  });
}

/** A Blob as base64 (runtime messages carry JSON only). @param {Blob} blob @returns {Promise<string>} */
export function toBase64(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).slice(String(reader.result).indexOf(",") + 1));
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}
