// @ts-check
// The verdict badge on a video's corner and its details panel. Each badge lives in a closed shadow
// root on its own host element at the top of the document: the page's CSS cannot reach in, ours
// cannot leak out, and nothing is inserted into the player (its controls keep working).
//
// What a badge says is drawn by CSS (`content: attr(data-text)` inside the shadow root), never as
// text in the document: a page's window.find() could otherwise learn the verdicts it shows.
// Screen readers get it from the badge's aria-label. The panel (panel.js) opens only on the user's
// own click or key press, one at a time, placed where it fits in the viewport, and closes with
// Escape, its × or a click elsewhere.
import { h, PANEL_CSS, placePanel, renderPanel } from "./panel.js";

const CSS = `
:host { all: initial; }
.wrap { font: 600 12px/1.2 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #fff; }
.badge { display: inline-flex; align-items: center; gap: 4px; padding: 3px 7px; border-radius: 4px;
  border: 2px solid rgba(255,255,255,.9); box-shadow: 0 1px 3px rgba(0,0,0,.5); cursor: pointer;
  pointer-events: auto; user-select: none; white-space: nowrap; max-width: 300px; overflow: hidden; }
.badge:focus-visible { outline: 3px solid #56B4E9; outline-offset: 1px; }
.icon { font-weight: 800; }
.icon::before, .label::before { content: attr(data-text); }
/* Okabe-Ito colours (distinguishable with the common colour-vision deficiencies), always with text and an icon. */
.busy { background: rgba(20,20,20,.82); }
.real { background: #0072B2; }
.fake { background: #D55E00; border-style: double; border-width: 3px; }
.unsure { background: #F0E442; color: #111; border-color: #111; }
.noface { background: #5b5b5b; }
.error { background: #222; border-color: #E69F00; color: #fff; }
.declared { background: #CC79A7; color: #111; border-color: #111; border-style: dashed; }
.cr { font: 800 9px/1 system-ui, sans-serif; padding: 2px 3px; border: 1px solid currentColor; border-radius: 3px; margin-left: 2px; }
.cr::before { content: "CR"; }
.cr[hidden] { display: none; }
.trend { display: inline-flex; gap: 2px; margin-left: 4px; }
.trend > i { display: inline-block; width: 7px; height: 10px; border: 1px solid rgba(255,255,255,.9); border-radius: 1px; }
.trend > .real { background: #0072B2; } .trend > .fake { background: #D55E00; } .trend > .unsure { background: #F0E442; }
.trend > .noface, .trend > .error { background: #5b5b5b; } .trend > .declared { background: #CC79A7; }
.bar { display: block; height: 3px; margin-top: 2px; background: rgba(255,255,255,.25); border-radius: 2px; overflow: hidden; }
.bar > i { display: block; height: 100%; width: 0; background: #56B4E9; transition: width .3s; }
${PANEL_CSS}`;

const ICON = { busy: "↻", real: "✓", fake: "⚠", unsure: "?", noface: "–", error: "!", declared: "✦" };
const MIN_VIDEO_SIZE = 48; // px: smaller videos (avatars, icons) get no badge; a right-clicked link or image always does
const INSET = 6; // px from the picture's corner
const Z = { badge: "2147483646", open: "2147483647" }; // an open panel above every other badge

/**
 * Where a video's picture is drawn inside its box (object-fit: a 9:16 player showing a 16:9 clip
 * letterboxes it), in viewport pixels; other elements: their box.
 * @param {Element} el
 * @returns {{left: number, top: number, width: number, height: number}}
 */
export function pictureRect(el) {
  const r = el.getBoundingClientRect();
  const v = /** @type {HTMLVideoElement} */ (el);
  if (el.nodeName !== "VIDEO" || !v.videoWidth || !v.videoHeight) return r;
  const cs = getComputedStyle(el);
  const px = (/** @type {string} */ x) => parseFloat(x) || 0;
  const left = r.left + px(cs.borderLeftWidth) + px(cs.paddingLeft);
  const top = r.top + px(cs.borderTopWidth) + px(cs.paddingTop);
  const width = r.width - px(cs.borderLeftWidth) - px(cs.paddingLeft) - px(cs.borderRightWidth) - px(cs.paddingRight);
  const height = r.height - px(cs.borderTopWidth) - px(cs.paddingTop) - px(cs.borderBottomWidth) - px(cs.paddingBottom);
  const fit = cs.objectFit || "contain";
  if (fit === "fill" || fit === "cover" || width <= 0 || height <= 0) return { left, top, width, height };
  let scale = Math.min(width / v.videoWidth, height / v.videoHeight);
  if (fit === "none") scale = 1;
  else if (fit === "scale-down") scale = Math.min(1, scale);
  const w = v.videoWidth * scale;
  const hh = v.videoHeight * scale;
  const [ax, ay] = (cs.objectPosition || "50% 50%").split(" ").map((p) => (p.endsWith("%") ? parseFloat(p) / 100 : 0.5));
  return { left: left + (width - w) * (ax ?? 0.5), top: top + (height - hh) * (ay ?? 0.5), width: w, height: hh };
}

/**
 * @typedef {object} BadgeHooks
 * @property {(path: string) => Promise<string | null>} heatmap  a result's heatmap as a data: URL
 * @property {() => void} openLimits
 * @property {(el: Element) => void} [stopWatching]
 * @property {(el: Element) => void} [retry]  ask again for the check shown on el
 * @property {(view: any) => HTMLElement | null} [feedback]  "Is this right?" for a finished check (content/feedback.js)
 */
/**
 * @typedef {object} Item
 * @property {Element} el
 * @property {HTMLElement} host
 * @property {ShadowRoot} root
 * @property {any} view
 * @property {boolean} open
 * @property {string} [shown]  what the open panel was last filled with (it is refilled only when that changes)
 */

export class Badges {
  /** @param {BadgeHooks} hooks @param {Document} [doc] */
  constructor(hooks, doc = document) {
    this.hooks = hooks;
    this.doc = doc;
    /** @type {Map<Element, Item>} */
    this.items = new Map();
    /** @type {Item | null} */
    this.openItem = null;
    this.frame = 0;
    const schedule = () => this.schedule();
    doc.addEventListener("scroll", schedule, { capture: true, passive: true });
    this.win = /** @type {Window} a document with a browsing context */ (doc.defaultView);
    this.win.addEventListener("resize", schedule, { passive: true });
    this.timer = setInterval(schedule, 500); // layout changes without scroll or resize
    // Escape closes the open panel; so does a press anywhere outside it (and outside its badge).
    this.win.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && this.openItem) this.close(this.openItem, true);
    }, true);
    this.win.addEventListener("pointerdown", (e) => {
      if (this.openItem && !e.composedPath().includes(this.openItem.host)) this.close(this.openItem, false);
    }, true);
  }

  /** Show view ({label, tone, detail, update, url, …}) on element's corner. */
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
    if (this.openItem === item) this.openItem = null;
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

  /** @param {Item} item */
  open(item) {
    if (this.openItem && this.openItem !== item) this.close(this.openItem, false);
    item.open = true;
    this.openItem = item;
    item.host.style.setProperty("z-index", Z.open, "important");
    this.#render(item);
    this.#position();
    /** @type {HTMLElement | null} */ (item.root.querySelector(".panel .close"))?.focus({ preventScroll: true });
  }

  /** @param {Item} item @param {boolean} returnFocus  give the keyboard back to the badge */
  close(item, returnFocus) {
    item.open = false;
    if (this.openItem === item) this.openItem = null;
    item.host.style.setProperty("z-index", Z.badge, "important");
    this.#render(item);
    if (returnFocus) /** @type {HTMLElement} */ (item.root.querySelector(".badge")).focus({ preventScroll: true });
  }

  /** @param {Element} el @returns {Item} */
  #create(el) {
    const host = this.doc.createElement("deepfake-check-badge");
    const root = host.attachShadow({ mode: "closed" });
    root.append(
      h("style", {}, CSS),
      h("div", { class: "wrap" },
        h("div", { class: "badge busy", role: "button", tabindex: "0", "aria-haspopup": "dialog", "aria-expanded": "false" },
          h("span", { class: "icon", "aria-hidden": "true" }), h("span", { class: "label", "aria-hidden": "true" }),
          h("span", { class: "cr", "aria-hidden": "true", hidden: "" }), h("span", { class: "trend", "aria-hidden": "true" })),
        h("span", { class: "bar" }, h("i")),
        h("div", { class: "panel", role: "dialog", "aria-label": "Deepfake Check details", tabindex: "-1", hidden: "" })),
    );
    /** @type {Item} */
    const item = { el, host, root, view: null, open: false };
    const badge = /** @type {HTMLElement} */ (root.querySelector(".badge"));
    const toggle = (/** @type {Event} */ e) => {
      e.preventDefault();
      e.stopPropagation();
      if (!e.isTrusted) return; // the user's own click or key press: a page cannot open it (and read it)
      if (item.open) this.close(item, false);
      else this.open(item);
    };
    badge.addEventListener("click", toggle);
    badge.addEventListener("keydown", (e) => (e.key === "Enter" || e.key === " ") && toggle(e));
    const panel = /** @type {HTMLElement} */ (root.querySelector(".panel"));
    panel.addEventListener("click", (e) => e.stopPropagation());
    host.style.cssText = `position:absolute !important; z-index:${Z.badge} !important; top:0; left:0; display:none !important; `
      + "pointer-events:none !important; margin:0 !important; padding:0 !important; border:0 !important; transform:none !important;";
    this.doc.documentElement.appendChild(host);
    this.items.set(el, item);
    return item;
  }

  /** @param {Item} item */
  #render(item) {
    const { root, view } = item;
    if (!view) return;
    const badge = /** @type {HTMLElement} */ (root.querySelector(".badge"));
    badge.className = `badge ${view.tone}`;
    /** @type {HTMLElement} */ (root.querySelector(".icon")).dataset.text = ICON[view.tone] ?? "";
    /** @type {HTMLElement} */ (root.querySelector(".label")).dataset.text = view.label;
    // live: the latest results, oldest first, as small squares (each with its label for screen readers)
    const trend = view.live?.trend ?? [];
    root.querySelector(".trend")?.replaceChildren(...trend.map((t) => h("i", { class: t.tone, title: t.label })));
    const trendText = trend.length ? ` — last ${trend.length}: ${trend.map((t) => t.label).join(", ")}` : "";
    // the "CR" mark: intact Content Credentials of a camera or an editor, said in words to screen readers
    /** @type {HTMLElement} */ (root.querySelector(".cr")).hidden = !view.mark;
    const cred = view.mark ? ` — Content Credentials: ${view.credentials.lines[0]}` : "";
    badge.title = `Deepfake Check: ${view.label}${view.detail ? ` — ${view.detail}` : ""}${cred}${trendText}`;
    badge.setAttribute("aria-label", badge.title);
    badge.setAttribute("aria-expanded", String(item.open));
    const bar = /** @type {HTMLElement} */ (root.querySelector(".bar"));
    const pct = view.progress;
    bar.style.display = view.tone === "busy" ? "block" : "none";
    /** @type {HTMLElement} */ (bar.firstElementChild).style.width = `${typeof pct === "number" ? Math.max(5, Math.min(100, pct)) : 5}%`;
    // Mirrored inside the closed root for the browser tests (they read it through DevTools). Never
    // on the host: the page can read the host, and a label or URL there would tell it what was
    // checked, whether it was checked before, or that it resolves to a private address.
    const wrap = /** @type {HTMLElement} */ (root.querySelector(".wrap"));
    Object.assign(wrap.dataset, { tone: view.tone, label: view.label, url: view.url ?? "", open: String(item.open),
      source: view.update?.source ?? "", trend: trend.map((t) => t.label).join("|"), mark: view.mark ?? "",
      credentials: view.credentials?.kind ?? "" });
    const panel = /** @type {HTMLElement} */ (root.querySelector(".panel"));
    panel.hidden = !item.open;
    // Refilled only when what it says changes: a panel rebuilt under the pointer would swallow a click.
    const key = JSON.stringify([view.label, view.tone, view.detail, view.note, view.url, view.mark, view.update?.phase,
      view.update?.id, view.live?.state, trend.length]);
    if (item.open && item.shown !== key) {
      item.shown = key;
      this.#fillPanel(item, panel);
    }
    if (!item.open) item.shown = undefined;
  }

  /** @param {Item} item @param {HTMLElement} panel */
  #fillPanel(item, panel) {
    const { view, el } = item;
    const hooks = this.hooks;
    const focusedClose = item.root.activeElement?.classList.contains("close");
    panel.replaceChildren(...renderPanel({
      view, el, result: view.update?.phase === "done" ? view.update.result : null,
      act: {
        close: () => this.close(item, true),
        openLimits: () => hooks.openLimits(),
        retry: hooks.retry ? () => hooks.retry?.(el) : null,
        stopWatching: hooks.stopWatching ? () => hooks.stopWatching?.(el) : null,
        heatmap: (canvas, path) => this.#drawHeatmap(canvas, path),
        feedback: () => hooks.feedback?.(view) ?? null,
      },
    }));
    if (focusedClose) /** @type {HTMLElement | null} */ (panel.querySelector(".close"))?.focus({ preventScroll: true });
    this.schedule(); // its size may have changed: place it again
  }

  /** @param {HTMLCanvasElement} canvas @param {string} path */
  async #drawHeatmap(canvas, path) {
    const dataUrl = await this.hooks.heatmap(path);
    if (!dataUrl) return canvas.remove();
    // Decoded by hand and drawn on a canvas: an <img src="data:"> could be blocked by the page's CSP.
    const bytes = Uint8Array.from(atob(dataUrl.split(",")[1]), (c) => c.charCodeAt(0));
    const bitmap = await createImageBitmap(new Blob([bytes], { type: "image/png" }));
    canvas.getContext("2d")?.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  }

  #position() {
    const win = this.win;
    for (const [el, item] of this.items) {
      if (!el.isConnected) {
        this.remove(el);
        continue;
      }
      const box = el.getBoundingClientRect();
      const min = el.nodeName === "VIDEO" ? MIN_VIDEO_SIZE : 1;
      const show = box.width >= min && box.height >= min;
      item.host.style.setProperty("display", show ? "block" : "none", "important");
      if (!show) {
        if (item.open) this.close(item, false);
        continue;
      }
      const r = pictureRect(el);
      item.host.style.setProperty("left", `${Math.round(r.left + win.scrollX + INSET)}px`, "important");
      item.host.style.setProperty("top", `${Math.round(r.top + win.scrollY + INSET)}px`, "important");
      if (item.open) this.#placePanel(item);
    }
  }

  /** The open panel, where it fits in the viewport next to its badge. @param {Item} item */
  #placePanel(item) {
    const panel = /** @type {HTMLElement} */ (item.root.querySelector(".panel"));
    const badge = /** @type {HTMLElement} */ (item.root.querySelector(".badge"));
    const viewport = { width: this.doc.documentElement.clientWidth || this.win.innerWidth, height: this.win.innerHeight };
    panel.style.maxHeight = "none"; // its natural height, to choose where it fits
    const natural = { width: panel.offsetWidth, height: panel.scrollHeight };
    const at = placePanel(badge.getBoundingClientRect(), natural, viewport);
    Object.assign(panel.style, { left: `${Math.round(at.left)}px`, top: `${Math.round(at.top)}px`, maxHeight: `${at.maxHeight}px` });
    panel.dataset.placement = at.placement;
  }
}
