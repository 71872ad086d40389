// @ts-check
// Choose a file → upload to the server → the video plays with the verdict, the model's score and
// face boxes drawn over it, the REAL · UNSURE · FAKE scale and the caveat beside it. An extension
// page, so it may use the server client directly (it runs with the extension's origin, like the
// service worker; a File cannot travel through messages anyway). Choosing another file drops the
// check before it: only the file chosen last is ever shown.
import { Client, ServerError } from "../background/client.js";
import { feedbackControl } from "../shared/feedback.js";
import { scaleElement, SCALE_CSS } from "../shared/scale.js";
import { getConnection, getSettings } from "../shared/settings.js";
import { confidenceOf, describe, displayVerdict, reasonText } from "../shared/verdict.js";
import { showStatus } from "./status-view.js";

export const MAX_UPLOAD_BYTES = 100 * 1024 * 1024; // the server's limit (docs/api.md, 413 too_large)
const MESSAGES = {
  tooLarge: "File too large. Max limit 100MB.",
  notMedia: "Only video or image files allowed.",
  noFace: "No faces detected. Cannot process the video.",
};

/**
 * An element of this page's own HTML by id: it is there, and of the kind the HTML says.
 * @param {string} id
 * @returns {any}
 */
const $ = (id) => document.getElementById(id);
let objectUrl = null;
let drawing = 0;
/** @type {AbortController | null} */
let current = null; // the check of the file chosen last

const style = document.createElement("style");
style.textContent = SCALE_CSS;
document.head.append(style);

function message(text, kind = "info") {
  $("message").textContent = text;
  $("message").dataset.kind = kind;
}

function isMedia(file) {
  if (/^(video|image)\//.test(file.type)) return true;
  return !file.type && /\.(mp4|m4v|mov|webm|mkv|avi|jpe?g|png|webp|gif|bmp)$/i.test(file.name);
}

/** Nothing of the previous file stays on screen while the next one is checked. */
function clearResult() {
  $("result").hidden = true;
  cancelAnimationFrame(drawing);
  $("stage").querySelector("video, img")?.remove();
  delete document.body.dataset.verdict;
  delete document.body.dataset.label;
  delete document.body.dataset.credentials;
  message("");
}

async function run(file) {
  current?.abort();
  const controller = new AbortController();
  current = controller;
  const { signal } = controller;
  clearResult();
  if (!file) return message("Choose a video or image first.", "error");
  if (!isMedia(file)) return message(MESSAGES.notMedia, "error");
  if (file.size > MAX_UPLOAD_BYTES) return message(MESSAGES.tooLarge, "error");
  const s = { ...(await getSettings()), ...(await getConnection()) };
  const client = new Client(s.server, s.token);
  const bar = $("progress");
  bar.hidden = false;
  bar.removeAttribute("value");
  $("go").disabled = true;
  try {
    message(`Uploading ${file.name}…`);
    let check = await client.uploadFile(file, { signal,
      onBusy: (wait) => signal.aborted || message(`The server is busy; trying again in ${wait} s…`) });
    if (check.status !== "done" && check.status !== "failed") {
      check = await client.follow(check.id, (c) => {
        if (signal.aborted) return;
        const view = describe({ phase: "checking", status: c.status, percent: c.progress?.percent });
        message(`${file.name}: ${view.detail || "Checking…"}`);
        if (typeof view.progress === "number") bar.value = view.progress;
      }, { signal });
    }
    if (signal.aborted) return;
    if (check.status === "failed") throw new ServerError(check.error?.error ?? "internal", check.error?.message ?? "The check failed.");
    show(file, check, client, s.uncertainBand);
  } catch (e) {
    if (signal.aborted) return; // another file was chosen: this one's answer no longer matters
    const text = e.code === "too_large" ? MESSAGES.tooLarge : e.code === "unsupported_media" || e.code === "not_media" ? MESSAGES.notMedia : e.message;
    message(text, "error");
    if (["not_running", "cert_untrusted", "not_paired"].includes(e.code)) {
      $("status").hidden = false;
      showStatus($("status"), { state: e.code, message: e.message, server: s.server });
    }
  } finally {
    if (current === controller) {
      bar.hidden = true;
      $("go").disabled = false;
    }
  }
}

function show(file, check, client, band) {
  const r = check.result;
  if (r.verdict === "NO_FACE") {
    message(r.error || MESSAGES.noFace, "error");
  } else if (r.error) {
    return message(r.error, "error");
  } else message("");
  const view = describe({ phase: "done", result: r }, band);
  const verdict = displayVerdict(r, band);
  $("verdict-tag").className = `tag ${view.tone}`;
  const detectorText = verdict === "UNCERTAIN" ? "UNSURE" : verdict === "NO_FACE" ? "No face" : String(verdict);
  // a declared AI-generated file is called that; the detector's verdict follows it, never hidden
  $("verdict-tag").textContent = view.tone === "declared" ? view.label : detectorText;
  const conf = confidenceOf(r, verdict) ?? 0; // a number wherever it is shown: p_fake is one
  // the number is what it is: the model's score for the side it calls, not the chance it is right
  $("confidence").textContent = (view.tone === "declared" ? `The detector: ${detectorText}${typeof r.p_fake === "number" ? " · " : ""}` : "")
    + (typeof r.p_fake === "number"
      ? `${verdict === "REAL" || verdict === "FAKE" ? `model score ${Math.round(conf * 100)}% · ` : ""}P(fake) ${r.p_fake.toFixed(2)}`
      : "");
  const isVerdict = !!view.verdict || view.tone === "declared";
  $("caveat").hidden = !isVerdict;
  $("summary").textContent = isVerdict ? (view.tone === "declared" ? view.detail : view.detector?.detail ?? view.detail) : "";
  $("summary").toggleAttribute("data-reason", !!view.reason);
  $("scale").replaceChildren(...(view.scale ? [scaleElement(document, view.scale)] : []));
  showCredentials(view);
  document.body.dataset.verdict = String(verdict);
  document.body.dataset.label = view.label;

  const stage = $("stage");
  stage.querySelector("video, img")?.remove();
  if (objectUrl) URL.revokeObjectURL(objectUrl);
  objectUrl = URL.createObjectURL(file);
  const isImage = /^image\//.test(file.type);
  const media = document.createElement(isImage ? "img" : "video");
  media.src = objectUrl;
  if (!isImage) Object.assign(media, { controls: true, autoplay: true, muted: true, loop: true, playsInline: true });
  stage.prepend(media);

  const faces = $("faces");
  faces.replaceChildren(...(r.faces ?? []).map((f, i) => {
    const li = document.createElement("li");
    li.textContent = `Face ${i + 1}: P(fake) ${Number(f.p_fake).toFixed(2)} over ${f.frames} frames`;
    return li;
  }));
  $("faces-not-scored").replaceChildren(...(r.faces_not_scored ?? []).map((f) => {
    const li = document.createElement("li");
    const why = f.code && f.code === r.reason ? "for the reason above" : reasonText(f.code, f.reason) ?? "left out of the verdict";
    li.textContent = `Not scored: ${why}`;
    return li;
  }));
  $("frames").textContent = `Frames analysed: ${r.frames_analysed} (${r.frames_with_face} with a face)`;
  $("model").textContent = `Model: ${r.model ?? "?"}${r.mode ? ` (${r.mode})` : ""}`;
  // "Is this right?": the answer goes to the server's history; the file itself is there to keep
  $("feedback").replaceChildren(feedbackControl(document, { verdict: String(verdict) }, {
    answer: (label, note) => client.feedback(check.id, label, note),
    keep: (keep) => (keep ? client.keepClip(check.id, { file }) : client.dropClip(check.id)),
  }, { label: null, note: null, kept: false }));
  $("result").hidden = false;
  $("heatmap-box").hidden = true;
  if (r.heatmap_url) {
    client.heatmapDataUrl(r.heatmap_url).then((u) => {
      $("heatmap").src = u;
      $("heatmap-box").hidden = false;
    }).catch(() => {});
  }
  const draw = () => {
    drawBoxes(media, r, band);
    drawing = requestAnimationFrame(draw);
  };
  drawing = requestAnimationFrame(draw);
}

/**
 * The file's Content Credentials: the "CR" mark beside the verdict when they are intact (a camera's
 * or an editor's), and what they say.
 * @param {import("../shared/verdict.js").View} view
 */
function showCredentials(view) {
  const c = view.credentials;
  const mark = $("cr-mark");
  mark.hidden = !view.mark;
  mark.setAttribute("aria-label", c && view.mark ? `Content Credentials: ${c.lines[0]}` : "");
  mark.title = mark.getAttribute("aria-label");
  $("credentials-summary").textContent = c?.summary ?? "";
  $("credentials-summary").dataset.kind = c?.kind ?? "";
  $("credentials-lines").replaceChildren(...(c?.lines ?? []).map((line) => {
    const li = document.createElement("li");
    li.textContent = line;
    return li;
  }));
  document.body.dataset.credentials = c?.kind ?? "";
}

/** Face boxes (in source pixels, at sampled times) drawn over the media as it plays. */
function drawBoxes(media, r, band) {
  const canvas = $("boxes");
  const w = media.clientWidth;
  const h = media.clientHeight;
  if (!w || !h) return;
  if (canvas.width !== w || canvas.height !== h) Object.assign(canvas, { width: w, height: h });
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, w, h);
  const sw = r.width || media.videoWidth || media.naturalWidth;
  const sh = r.height || media.videoHeight || media.naturalHeight;
  if (!sw || !sh) return;
  const scale = Math.min(w / sw, h / sh); // object-fit: contain
  const ox = (w - sw * scale) / 2;
  const oy = (h - sh * scale) / 2;
  const t = media.currentTime ?? 0;
  for (const face of r.faces ?? []) {
    if (!face.boxes?.length) continue;
    let best = face.boxes[0];
    for (const b of face.boxes) if (Math.abs(b.t - t) < Math.abs(best.t - t)) best = b;
    const spacing = r.duration && r.frames_analysed ? r.duration / r.frames_analysed : 1;
    if (media.tagName === "VIDEO" && Math.abs(best.t - t) > Math.max(1, spacing * 1.5)) continue;
    const fv = displayVerdict({ ...r, verdict: face.p_fake >= (r.threshold ?? 0.5) ? "FAKE" : "REAL", p_fake: face.p_fake }, band ?? r.uncertain_band);
    const colour = fv === "FAKE" ? "#D55E00" : fv === "REAL" ? "#0072B2" : "#F0E442";
    const [x, y, bw, bh] = best.box;
    ctx.lineWidth = 3;
    ctx.strokeStyle = colour;
    ctx.setLineDash(fv === "FAKE" ? [8, 4] : []);
    ctx.strokeRect(ox + x * scale, oy + y * scale, bw * scale, bh * scale);
    const score = Math.round((fv === "FAKE" ? face.p_fake : 1 - face.p_fake) * 100);
    const label = fv === "UNCERTAIN" ? "UNSURE" : `${fv} · score ${score}%`;
    ctx.font = "bold 14px system-ui, sans-serif";
    const tw = ctx.measureText(label).width + 8;
    ctx.setLineDash([]);
    ctx.fillStyle = colour;
    ctx.fillRect(ox + x * scale, Math.max(0, oy + y * scale - 20), tw, 20);
    ctx.fillStyle = fv === "UNCERTAIN" ? "#111" : "#fff";
    ctx.fillText(label, ox + x * scale + 4, Math.max(15, oy + y * scale - 5));
  }
}

$("form").addEventListener("submit", (e) => {
  e.preventDefault();
  run($("file").files[0]);
});
$("file").addEventListener("change", () => run($("file").files[0]));
