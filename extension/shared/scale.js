// @ts-check
// The REAL · UNSURE · FAKE scale: the model's P(fake) from 0 to 1, the cuts where its calls change
// (REAL below `lo`, UNSURE up to `hi`, FAKE from `hi`), and this check's mark on it. Built with
// DOM calls (never HTML strings) for the badge's details panel (in its shadow root) and the
// check-a-file page, which both add SCALE_CSS to their styles. Colour is never the only cue: each
// zone is named under the bar, and screen readers get the whole of it in one sentence.

export const SCALE_CSS = `
.scale { margin: 8px 0 4px; font: 400 11px/1.3 system-ui, sans-serif; color: #333; }
.scale .track { position: relative; display: flex; height: 10px; border-radius: 3px; overflow: visible; }
.scale .zone { height: 100%; }
.scale .zone.z-real { background: #0072B2; border-radius: 3px 0 0 3px; }
.scale .zone.z-unsure { background: #F0E442; }
.scale .zone.z-fake { background: #D55E00; border-radius: 0 3px 3px 0; }
.scale .mark { position: absolute; top: -4px; width: 4px; height: 18px; margin-left: -2px; background: #111;
  border: 1px solid #fff; border-radius: 2px; box-sizing: border-box; }
.scale .names { position: relative; height: 14px; margin-top: 3px; }
.scale .names > span { position: absolute; transform: translateX(-50%); white-space: nowrap; font-weight: 600; }
.scale .names > span.edge-left { transform: none; }
.scale .names > span.edge-right { transform: translateX(-100%); }
.scale .caption { margin-top: 2px; }
`;

const two = (/** @type {number} */ x) => x.toFixed(2);
const percent = (/** @type {number} */ x) => Math.round(x * 1000) / 10;

/**
 * What the scale says, in words (its accessible name, and the caption under it).
 * @param {import("./verdict.js").Scale} s
 */
export function scaleSentence(s) {
  return `This clip's P(fake) is ${two(s.p)}. REAL below ${two(s.lo)}, UNSURE from ${two(s.lo)} to ${two(s.hi)}, FAKE from ${two(s.hi)}.`;
}

/**
 * The scale as an element of `doc`.
 * @param {Document} doc
 * @param {import("./verdict.js").Scale} s
 * @returns {HTMLElement}
 */
export function scaleElement(doc, s) {
  const el = (/** @type {string} */ tag, /** @type {string} */ cls, /** @type {string} */ text = "") => {
    const e = doc.createElement(tag);
    e.className = cls;
    if (text) e.textContent = text;
    return e;
  };
  const box = el("div", "scale");
  box.setAttribute("role", "img");
  box.setAttribute("aria-label", `Scale from REAL to FAKE. ${scaleSentence(s)}`);
  const track = el("div", "track");
  const zones = [["real", s.lo], ["unsure", s.hi - s.lo], ["fake", 1 - s.hi]];
  for (const [tone, width] of zones) {
    const z = el("i", `zone z-${tone}`); // not the badge's own tone classes: those style a badge
    z.style.width = `${percent(Number(width))}%`;
    track.append(z);
  }
  const mark = el("i", "mark");
  mark.style.left = `${percent(s.p)}%`;
  mark.title = `This clip: P(fake) ${two(s.p)}`;
  track.append(mark);
  const names = el("div", "names");
  names.setAttribute("aria-hidden", "true");
  const centre = (/** @type {number} */ a, /** @type {number} */ b) => (a + b) / 2;
  const zoneNames = [["REAL", centre(0, s.lo)], ["UNSURE", centre(s.lo, s.hi)], ["FAKE", centre(s.hi, 1)]]
    .filter(([text]) => text !== "UNSURE" || s.hi - s.lo >= 0.04); // no band (a 0 set in the options): no name to place
  for (const [text, at] of zoneNames) {
    const n = el("span", "", String(text));
    const x = Number(at);
    n.style.left = `${percent(x)}%`;
    if (x < 0.12) n.className = "edge-left", n.style.left = "0";
    else if (x > 0.88) n.className = "edge-right", n.style.left = "100%";
    names.append(n);
  }
  const caption = el("div", "caption", `The dark mark is this clip: P(fake) ${two(s.p)}. Cuts at ${two(s.lo)} and ${two(s.hi)}.`);
  caption.setAttribute("aria-hidden", "true");
  box.append(track, names, caption);
  return box;
}
