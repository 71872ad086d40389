// @ts-check
// A badge's details panel: an ordered list of sections, each a small function of what the badge
// shows that returns its nodes (or nothing). A feature that adds to the panel adds a section
// (addSection, after a named one) instead of editing the others. Text children are text nodes,
// never parsed as HTML. The panel itself (where it goes, opening and closing) is badge.js's.
import { scaleElement, SCALE_CSS } from "../shared/scale.js";
import { CAVEAT, reasonText, signalText, sourceText } from "../shared/verdict.js";

export const PANEL_CSS = `
.panel { position: fixed; left: 0; top: 0; width: 330px; max-width: calc(100vw - 16px); box-sizing: border-box; overflow: auto;
  background: #fff; color: #111; border-radius: 6px; box-shadow: 0 4px 16px rgba(0,0,0,.45); padding: 10px 12px;
  font: 400 13px/1.4 system-ui, sans-serif; pointer-events: auto; text-align: left; white-space: normal;
  overflow-wrap: break-word; word-break: normal; hyphens: none; }
.panel[hidden] { display: none; }
.panel:focus { outline: none; }
.panel h2 { font-size: 15px; margin: 0 24px 4px 0; }
.panel p { margin: 4px 0; }
.panel ul { margin: 4px 0; padding-left: 18px; }
.panel .muted { color: #555; font-size: 12px; }
.panel .address { overflow-wrap: anywhere; }
.panel .caveat { font-size: 12px; font-style: italic; color: #333; }
.panel .reason { font-weight: 600; }
.panel h3 { font-size: 13px; margin: 8px 0 2px; }
.panel .credentials.broken { color: #a33c00; font-weight: 600; }
.panel figure { float: right; width: 112px; margin: 2px 0 4px 8px; }
.panel figure canvas { display: block; width: 112px; height: 112px; border-radius: 4px; }
.panel figcaption { font-size: 11px; line-height: 1.25; color: #555; margin-top: 2px; }
.panel .credentials-line { clear: both; }
.panel a { color: #0a58ca; cursor: pointer; text-decoration: underline; }
.panel button { font: inherit; cursor: pointer; }
.panel button.close { position: absolute; right: 8px; top: 6px; border: 0; background: none; font-size: 18px; line-height: 1; padding: 2px 4px; }
.panel button.action { font-size: 13px; padding: 3px 12px; border: 1px solid #555; border-radius: 4px; background: #eee; color: #111; }
.panel button:focus-visible, .panel a:focus-visible { outline: 3px solid #56B4E9; outline-offset: 1px; }
${SCALE_CSS}`;

/**
 * @param {string} tag
 * @param {Record<string, string>} [attrs]
 * @param {...(Node | string)} children
 * @returns {HTMLElement}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  el.append(...children);
  return el;
}

/**
 * What the panel can do: each action closes over the badge it belongs to.
 * @typedef {object} PanelActions
 * @property {() => void} close
 * @property {() => void} openLimits  the "why a verdict can be wrong" page
 * @property {(() => void) | null} retry  ask again (null: this badge has nothing to retry)
 * @property {(() => void) | null} stopWatching
 * @property {(canvas: HTMLCanvasElement, path: string) => void} heatmap  draw the result's heatmap
 * @property {() => HTMLElement | null} [feedback]  "Is this right?" (content/feedback.js), when there is something to answer
 */
/**
 * @typedef {object} PanelContext
 * @property {any} view  the badge's view: shared/verdict.js View plus {update, url, note, live}
 * @property {any} result  the server's result, when the check is done
 * @property {Element} el  the element the badge is on
 * @property {PanelActions} act
 */
/** @typedef {{name: string, render: (ctx: PanelContext) => Node[] | null}} PanelSection */

/** A link-like element that works with the keyboard too. @param {string} text @param {() => void} run */
function action(text, run, cls = "") {
  const a = h("a", { role: "link", tabindex: "0", class: cls }, text);
  a.addEventListener("click", (e) => { e.stopPropagation(); run(); });
  a.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.stopPropagation(); run(); } });
  return a;
}

/** @param {string} text @param {() => void} run @param {string} cls */
function button(text, run, cls) {
  const b = h("button", { type: "button", class: cls }, text);
  b.addEventListener("click", (e) => { e.stopPropagation(); run(); });
  return b;
}

/** @type {PanelSection[]} */
const SECTIONS = [
  { name: "header", render: ({ view, act }) => [
    button("×", act.close, "close"),
    h("h2", {}, view.headline ?? view.label),
  ] },
  // the fixed line beside every verdict: a model's estimate, and where to read why it can be wrong
  { name: "caveat", render: ({ view, act }) => (view.verdict
    ? [h("p", { class: "caveat" }, `${CAVEAT} — `, action("why?", act.openLimits, "why"))] : null) },
  { name: "summary", render: ({ view }) => {
    const text = view.tone === "error" ? view.next ?? view.detail : view.detail;
    return text ? [h("p", { class: view.reason ? "summary reason" : "summary" }, text)] : null;
  } },
  { name: "scale", render: ({ view }) => (view.scale ? [scaleElement(document, view.scale)] : null) },
  // a two-head model: which kind of trace the score came from
  { name: "signal", render: ({ result: r }) => {
    const text = signalText(r);
    return text ? [h("p", { class: "signal" }, text)] : null;
  } },
  { name: "failure", render: ({ view, act }) => {
    if (view.tone !== "error") return null;
    const out = [];
    if (view.technical) out.push(h("p", { class: "muted technical" }, `Details: ${view.technical}`));
    if (view.retry && act.retry) out.push(h("p", {}, button("Retry", act.retry, "action retry")));
    return out;
  } },
  // what happened on the way (a capture that could not be made, so the file's address was checked)
  { name: "note", render: ({ view }) => (view.note ? [h("p", { class: "note" }, view.note)] : null) },
  { name: "heatmap", render: ({ result: r, act }) => {
    if (!r?.heatmap_url) return null;
    const canvas = /** @type {HTMLCanvasElement} */ (h("canvas", { width: "224", height: "224", role: "img",
      "aria-label": "Heatmap of where the model looked on the most suspicious face" }));
    act.heatmap(canvas, r.heatmap_url);
    // beside the faces and the source, not below them: the panel stays short enough to be seen whole
    return [h("figure", {}, canvas, h("figcaption", {}, "Where the model looked (most suspicious face)"))];
  } },
  { name: "faces", render: ({ result: r }) => {
    if (!r) return null;
    const items = (r.faces ?? []).map((f, i) => h("li", {}, `Face ${i + 1}: P(fake) ${Number(f.p_fake).toFixed(2)} over ${f.frames} frames`));
    for (const f of r.faces_not_scored ?? []) {
      const why = f.code && f.code === r.reason ? "for the reason above" : reasonText(f.code, f.reason) ?? "left out of the verdict";
      items.push(h("li", { class: "unscored" }, `Not scored: ${why}`));
    }
    return items.length ? [h("p", {}, "Faces:"), h("ul", {}, ...items)] : null;
  } },
  { name: "source", render: ({ view, result: r }) => (r ? [h("p", { class: "muted source" },
    `${sourceText(view.update)} Frames analysed: ${r.frames_analysed} (${r.frames_with_face} with a face). `
    + `Model: ${r.model ?? "?"}${r.mode ? ` (${r.mode})` : ""}.`)] : null) },
  { name: "credentials", render: ({ view, result: r }) => {
    const c = r && view.credentials;
    if (!c) return null;
    if (c.kind === "none" || c.kind === "unavailable") return [h("p", { class: `muted credentials-line credentials ${c.kind}` }, c.summary)];
    const out = [h("h3", { class: "credentials-line" }, "Content Credentials"), h("p", { class: `credentials ${c.kind}` }, c.summary)];
    if (c.lines.length) out.push(h("ul", { class: "credentials-lines" }, ...c.lines.map((line) => h("li", {}, line))));
    return out;
  } },
  { name: "live", render: ({ view, act }) => {
    if (!view.live) return null;
    const t = view.live.trend;
    const out = [h("p", {}, view.live.state === "live" ? "Watching: a check of the last few seconds about every 10 s." : "Stopped watching.")];
    if (t.length) out.push(h("p", {}, `Last ${t.length}: ${t.map((x) => x.label).join(", ")}`));
    if (view.live.state === "live" && act.stopWatching) out.push(h("p", {}, button("Stop watching", act.stopWatching, "action stop")));
    return out;
  } },
  { name: "feedback", render: ({ act }) => {
    const control = act.feedback?.();
    return control ? [control] : null;
  } },
  { name: "limits", render: ({ act }) => [h("p", {}, action("Why this can be wrong", act.openLimits, "limits"))] },
  { name: "address", render: ({ view }) => (view.url ? [h("p", { class: "muted address" }, view.url)] : null) },
];

/**
 * Adds a section to every panel, after the section named `after` (default: before the "limits" link).
 * @param {PanelSection} section
 * @param {{after?: string}} [where]
 */
export function addSection(section, { after } = {}) {
  const at = after ? SECTIONS.findIndex((s) => s.name === after) + 1 : SECTIONS.findIndex((s) => s.name === "limits");
  SECTIONS.splice(at > 0 ? at : SECTIONS.length, 0, section);
}

/** The names of the sections, in order (for tests and for addSection callers). */
export const sectionNames = () => SECTIONS.map((s) => s.name);

/** @param {PanelContext} ctx @returns {Node[]} */
export function renderPanel(ctx) {
  return SECTIONS.flatMap((s) => s.render(ctx) ?? []);
}

/**
 * Where the panel goes: below the badge when it fits, else above, else beside it, else as a sheet
 * that fills the viewport's height; always entirely inside the viewport (its content scrolls only
 * when the viewport is shorter than the panel). All in viewport pixels.
 * @param {{left: number, top: number, right: number, bottom: number}} anchor  the badge
 * @param {{width: number, height: number}} size  the panel's natural size
 * @param {{width: number, height: number}} viewport
 * @param {number} [gap]
 * @returns {{left: number, top: number, maxHeight: number, placement: "below" | "above" | "beside" | "sheet"}}
 */
export function placePanel(anchor, size, viewport, gap = 4) {
  const margin = 8;
  const maxHeight = Math.max(0, viewport.height - 2 * margin);
  const height = Math.min(size.height, maxHeight);
  const width = Math.min(size.width, viewport.width - 2 * margin);
  const clampX = (/** @type {number} */ x) => Math.max(margin, Math.min(x, viewport.width - margin - width));
  const clampY = (/** @type {number} */ y) => Math.max(margin, Math.min(y, viewport.height - margin - height));
  if (anchor.bottom + gap + height <= viewport.height - margin) {
    return { left: clampX(anchor.left), top: clampY(anchor.bottom + gap), maxHeight, placement: "below" };
  }
  if (anchor.top - gap - height >= margin) {
    return { left: clampX(anchor.left), top: clampY(anchor.top - gap - height), maxHeight, placement: "above" };
  }
  const top = clampY(anchor.top);
  if (anchor.right + gap + width <= viewport.width - margin) return { left: clampX(anchor.right + gap), top, maxHeight, placement: "beside" };
  if (anchor.left - gap - width >= margin) return { left: clampX(anchor.left - gap - width), top, maxHeight, placement: "beside" };
  return { left: clampX(anchor.left), top, maxHeight, placement: "sheet" };
}
