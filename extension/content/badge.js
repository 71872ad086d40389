// @ts-check
// The verdict badge on a video's corner and its details panel. Each badge lives in a closed shadow
// root on its own host element at the top of the document: the page's CSS cannot reach in, ours
// cannot leak out, and nothing is inserted into the player (its controls keep working).
import { sourceText } from "../shared/verdict.js";

const CSS = `
:host { all: initial; }
.wrap { font: 600 12px/1.2 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #fff; }
.badge { display: inline-flex; align-items: center; gap: 4px; padding: 3px 7px; border-radius: 4px;
  border: 2px solid rgba(255,255,255,.9); box-shadow: 0 1px 3px rgba(0,0,0,.5); cursor: pointer;
  pointer-events: auto; user-select: none; white-space: nowrap; max-width: 320px; overflow: hidden; text-overflow: ellipsis; }
.badge:focus-visible { outline: 3px solid #56B4E9; outline-offset: 1px; }
.icon { font-weight: 800; }
/* Okabe-Ito colours (distinguishable with the common colour-vision deficiencies), always with text and an icon. */
.busy { background: rgba(20,20,20,.82); }
.real { background: #0072B2; }
.fake { background: #D55E00; border-style: double; border-width: 3px; }
.unsure { background: #F0E442; color: #111; border-color: #111; }
.noface { background: #5b5b5b; }
.error { background: #222; border-color: #E69F00; color: #fff; }
.declared { background: #CC79A7; color: #111; border-color: #111; border-style: dashed; }
.cr { font: 800 9px/1 system-ui, sans-serif; padding: 2px 3px; border: 1px solid currentColor; border-radius: 3px; margin-left: 2px; }
.cr[hidden] { display: none; }
.trend { display: inline-flex; gap: 2px; margin-left: 4px; }
.trend > i { display: inline-block; width: 7px; height: 10px; border: 1px solid rgba(255,255,255,.9); border-radius: 1px; }
.trend > .real { background: #0072B2; } .trend > .fake { background: #D55E00; } .trend > .unsure { background: #F0E442; }
.trend > .noface, .trend > .error { background: #5b5b5b; } .trend > .declared { background: #CC79A7; }
.bar { display: block; height: 3px; margin-top: 2px; background: rgba(255,255,255,.25); border-radius: 2px; overflow: hidden; }
.bar > i { display: block; height: 100%; width: 0; background: #56B4E9; transition: width .3s; }
.panel { margin-top: 4px; width: 280px; max-height: 360px; overflow: auto; background: #fff; color: #111; border-radius: 6px;
  box-shadow: 0 4px 16px rgba(0,0,0,.45); padding: 10px 12px; font: 400 13px/1.4 system-ui, sans-serif; pointer-events: auto; }
.panel[hidden] { display: none; }
.panel h2 { font-size: 15px; margin: 0 0 4px; }
.panel p { margin: 4px 0; }
.panel ul { margin: 4px 0; padding-left: 18px; }
.panel .muted { color: #555; font-size: 12px; word-break: break-all; }
.panel h3 { font-size: 13px; margin: 8px 0 2px; }
.panel .credentials.broken { color: #a33c00; font-weight: 600; }
.panel canvas { display: block; width: 160px; height: 160px; margin: 6px 0; border-radius: 4px; }
.panel a { color: #0a58ca; cursor: pointer; text-decoration: underline; }
.panel button { font: inherit; float: right; border: 0; background: none; cursor: pointer; font-size: 16px; line-height: 1; }
.panel button.stop { float: none; font-size: 13px; padding: 3px 10px; border: 1px solid #555; border-radius: 4px; background: #eee; }
`;

/** A small element builder: text children are text nodes, never parsed as HTML. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  el.append(...children);
  return el;
}

/**
 * The panel's Content Credentials section: a heading, one sentence, the signer/tool/date/edits.
 * @param {import("../shared/credentials.js").CredentialsView} c
 */
function credentialsSection(c) {
  const out = [h("h3", {}, "Content Credentials"), h("p", { class: `credentials ${c.kind}` }, c.summary)];
  if (c.lines.length) out.push(h("ul", { class: "credentials-lines" }, ...c.lines.map((line) => h("li", {}, line))));
  return out;
}

const ICON = { busy: "…", real: "✓", fake: "⚠", unsure: "?", noface: "–", error: "!", declared: "✦" };
const MIN_VIDEO_SIZE = 48; // px: smaller videos (avatars, icons) get no badge; a right-clicked link or image always does

export class Badges {
  /** hooks: {heatmap(path) → Promise<dataUrl|null>, openLimits(), stopWatching(element), feedback(view) → HTMLElement|null} */
  constructor(hooks, doc = document) {
    this.hooks = hooks;
    this.doc = doc;
    this.items = new Map(); // element → {host, root, view}
    this.frame = 0;
    const schedule = () => this.schedule();
    doc.addEventListener("scroll", schedule, { capture: true, passive: true });
    this.win = /** @type {Window} a document with a browsing context */ (doc.defaultView);
    this.win.addEventListener("resize", schedule, { passive: true });
    this.timer = setInterval(schedule, 500); // layout changes without scroll or resize
  }

  /** Show view ({label, tone, detail, update, url}) on element's corner. */
  set(el, view) {
    let item = this.items.get(el);
    if (!item) item = this.#create(el);
    item.view = view;
    this.#render(item);
    this.schedule();
  }

  remove(el) {
    const item = this.items.get(el);
    if (!item) return;
    item.host.remove();
    this.items.delete(el);
  }

  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.#position();
    });
  }

  #create(el) {
    const host = this.doc.createElement("deepfake-check-badge");
    const root = host.attachShadow({ mode: "closed" });
    root.append(
      h("style", {}, CSS),
      h("div", { class: "wrap" },
        h("div", { class: "badge busy", role: "button", tabindex: "0", "aria-haspopup": "dialog" },
          h("span", { class: "icon" }), h("span", { class: "label" }),
          h("span", { class: "cr", "aria-hidden": "true", hidden: "" }, "CR"), h("span", { class: "trend" })),
        h("span", { class: "bar" }, h("i")),
        h("div", { class: "panel", role: "dialog", "aria-label": "Deepfake Check details", hidden: "" })),
    );
    const item = { el, host, root, view: null, open: false };
    const badge = /** @type {HTMLElement} */ (root.querySelector(".badge"));
    const toggle = (/** @type {Event} */ e) => {
      e.preventDefault();
      e.stopPropagation();
      item.open = !item.open;
      this.#render(item);
    };
    badge.addEventListener("click", toggle);
    badge.addEventListener("keydown", (e) => (e.key === "Enter" || e.key === " ") && toggle(e));
    host.style.cssText = "position:absolute !important; z-index:2147483646 !important; top:0; left:0; display:none !important; pointer-events:none !important; margin:0 !important; padding:0 !important; border:0 !important; transform:none !important;";
    this.doc.documentElement.appendChild(host);
    this.items.set(el, item);
    return item;
  }

  #render(item) {
    const { root, view } = item;
    if (!view) return;
    const badge = root.querySelector(".badge");
    badge.className = `badge ${view.tone}`;
    root.querySelector(".icon").textContent = ICON[view.tone] ?? "";
    root.querySelector(".label").textContent = view.label;
    // live: the latest results, oldest first, as small squares (each with its label for screen readers)
    const trend = view.live?.trend ?? [];
    root.querySelector(".trend").replaceChildren(...trend.map((t) => h("i", { class: t.tone, title: t.label })));
    const trendText = trend.length ? ` — last ${trend.length}: ${trend.map((t) => t.label).join(", ")}` : "";
    // the "CR" mark: intact Content Credentials of a camera or an editor, said in words to screen readers
    /** @type {HTMLElement} */ (root.querySelector(".cr")).hidden = !view.mark;
    const cred = view.mark ? ` — Content Credentials: ${view.credentials.lines[0]}` : "";
    badge.title = `Deepfake Check: ${view.label}${view.detail ? ` — ${view.detail}` : ""}${cred}${trendText}`;
    badge.setAttribute("aria-label", badge.title);
    const bar = root.querySelector(".bar");
    const pct = view.update?.percent;
    bar.style.display = view.tone === "busy" ? "block" : "none";
    bar.firstElementChild.style.width = `${typeof pct === "number" ? Math.max(5, Math.min(100, pct)) : 5}%`;
    // Mirrored inside the closed root for the browser tests (they read it through DevTools). Never
    // on the host: the page can read the host, and a label or URL there would tell it what was
    // checked, whether it was checked before, or that it resolves to a private address.
    const wrap = /** @type {HTMLElement} */ (root.querySelector(".wrap"));
    Object.assign(wrap.dataset, { tone: view.tone, label: view.label, url: view.url ?? "", open: String(item.open),
      source: view.update?.source ?? "", trend: trend.map((t) => t.label).join("|"), mark: view.mark ?? "",
      credentials: view.credentials?.kind ?? "" });
    const panel = root.querySelector(".panel");
    panel.hidden = !item.open;
    if (item.open) this.#fillPanel(item, panel);
  }

  #fillPanel(item, panel) {
    const { view } = item;
    const r = view.update?.result;
    const close = h("button", { class: "close", "aria-label": "Close" }, "×");
    const limits = h("a", { class: "limits", role: "link", tabindex: "0" }, "Why this can be wrong");
    const parts = [close, h("h2", {}, view.label), h("p", {}, view.detail)];
    let canvas = null;
    if (r) {
      if (r.faces?.length) {
        parts.push(h("p", {}, "Faces:"), h("ul", {}, ...r.faces.map((f, i) =>
          h("li", {}, `Face ${i + 1}: P(fake) ${Number(f.p_fake).toFixed(2)} over ${f.frames} frames`))));
      }
      parts.push(h("p", { class: "source" }, sourceText(view.update)));
      parts.push(h("p", {}, `Frames analysed: ${r.frames_analysed} (${r.frames_with_face} with a face)`));
      parts.push(h("p", {}, `Model: ${r.model ?? "?"}${r.mode ? ` (${r.mode})` : ""}`));
      if (view.credentials) parts.push(...credentialsSection(view.credentials));
      if (r.heatmap_url) {
        canvas = h("canvas", { width: "224", height: "224" });
        parts.push(h("p", { class: "muted" }, "Where the model looked (most suspicious face):"), canvas);
      }
    }
    let stop = null;
    if (view.live) {
      const t = view.live.trend;
      parts.push(h("p", {}, view.live.state === "live" ? "Watching: a check of the last few seconds about every 10 s."
        : "Stopped watching."));
      if (t.length) parts.push(h("p", {}, `Last ${t.length}: ${t.map((x) => x.label).join(", ")}`));
      if (view.live.state === "live") parts.push(h("p", {}, stop = h("button", { class: "stop" }, "Stop watching")));
    }
    const feedback = this.hooks.feedback?.(view); // "Is this right?" (content/feedback.js)
    if (feedback) parts.push(feedback);
    parts.push(h("p", {}, limits), h("p", { class: "muted" }, view.url ?? ""));
    panel.replaceChildren(...parts);
    close.addEventListener("click", (e) => {
      e.stopPropagation();
      item.open = false;
      this.#render(item);
    });
    limits.addEventListener("click", (e) => {
      e.stopPropagation();
      this.hooks.openLimits();
    });
    stop?.addEventListener("click", (e) => {
      e.stopPropagation();
      this.hooks.stopWatching?.(item.el);
    });
    panel.onclick = (e) => e.stopPropagation();
    if (canvas) this.#drawHeatmap(canvas, r.heatmap_url);
  }

  async #drawHeatmap(canvas, path) {
    const dataUrl = await this.hooks.heatmap(path);
    if (!dataUrl) return canvas.remove();
    // Decoded by hand and drawn on a canvas: an <img src="data:"> could be blocked by the page's CSP.
    const bytes = Uint8Array.from(atob(dataUrl.split(",")[1]), (c) => c.charCodeAt(0));
    const bitmap = await createImageBitmap(new Blob([bytes], { type: "image/png" }));
    canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  }

  #position() {
    const win = this.win;
    for (const [el, item] of this.items) {
      if (!el.isConnected) {
        this.remove(el);
        continue;
      }
      const r = el.getBoundingClientRect();
      const min = el.nodeName === "VIDEO" ? MIN_VIDEO_SIZE : 1;
      const show = r.width >= min && r.height >= min;
      item.host.style.setProperty("display", show ? "block" : "none", "important");
      if (!show) continue;
      item.host.style.setProperty("left", `${Math.round(r.left + win.scrollX + 6)}px`, "important");
      item.host.style.setProperty("top", `${Math.round(r.top + win.scrollY + 6)}px`, "important");
    }
  }
}
