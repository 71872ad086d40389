// The details panel's renderer (content/panel.js) on linkedom: what a person reads for each kind of
// answer, and where the panel goes.
import assert from "node:assert/strict";
import { describe as suite, test } from "node:test";

import { parseHTML } from "linkedom";

const { document } = parseHTML("<!doctype html><html><body></body></html>");
globalThis.document = document; // the renderer builds its nodes with the page's document, as in a browser

const { addSection, placePanel, renderPanel, sectionNames } = await import("../../extension/content/panel.js");
const { describe, REASON_TEXT } = await import("../../extension/shared/verdict.js");

const CODES = ["face_too_small", "face_in_profile", "too_blurred", "too_dark", "few_face_frames", "heavy_compression", "face_covered"];

/** The panel of a check in this state, as a detached element: its text, and the element to query. */
function panelFor(update, extra = {}) {
  const view = { ...describe(update), update, url: "https://x.com/a/status/1", ...extra };
  const acts = { close() {}, openLimits() {}, retry: () => { acts.retried = true; }, stopWatching: null, heatmap() {}, retried: false };
  const box = document.createElement("div");
  box.append(...renderPanel({ view, el: document.body, result: update.phase === "done" ? update.result : null, act: acts }));
  return { box, text: [...box.childNodes].map((n) => n.textContent).join(" ").replace(/\s+/g, " "), acts };
}

const done = (result) => ({ phase: "done", source: "url", result: { frames_analysed: 20, frames_with_face: 20, model: "m", faces: [], ...result } });
const abstained = (reason, reason_text = "The server's own sentence for it.") => done({
  verdict: "UNCERTAIN", p_fake: null, confidence: null, reason, reason_text, threshold: 0.5, uncertain_band: 0.1 });

suite("the details panel", () => {
  test("a check that abstained: UNSURE, every reason code in the extension's own words, no scale", () => {
    for (const code of CODES) {
      const { box, text } = panelFor(abstained(code));
      assert.ok(text.includes(REASON_TEXT[code]), `${code}: ${text}`);
      assert.ok(!text.includes("The server's own sentence"), code);
      assert.equal(box.querySelector(".scale"), null, `${code}: no mark without a score`);
      assert.match(text, /An estimate, not proof — why\?/);
    }
  });
  test("an unknown reason code shows the server's reason_text", () => {
    const { text } = panelFor(abstained("glare", "Too much glare on the face to judge."));
    assert.ok(text.includes("Too much glare on the face to judge."), text);
  });
  test("faces left out of the verdict say why, by code, else by the server's words", () => {
    const { text } = panelFor(done({ verdict: "REAL", p_fake: 0.2, threshold: 0.5, uncertain_band: 0.1,
      faces: [{ p_fake: 0.2, frames: 20 }],
      faces_not_scored: [{ code: "secondary_small", reason: "small" }, { code: "new_code", reason: "a reason of the server's" }] }));
    assert.ok(text.includes(`Not scored: ${REASON_TEXT.secondary_small}`), text);
    assert.ok(text.includes("Not scored: a reason of the server's"), text);
  });
  test("a verdict has the caveat and the REAL · UNSURE · FAKE scale with this clip's mark where its score is", () => {
    const { box, text } = panelFor(done({ verdict: "FAKE", p_fake: 0.77, threshold: 0.5, uncertain_band: 0.1 }));
    assert.match(text, /^× Looks FAKE to the model An estimate, not proof — why\? Model score 77% for FAKE/);
    const scale = box.querySelector(".scale");
    assert.equal(scale.getAttribute("role"), "img");
    assert.match(scale.getAttribute("aria-label"), /P\(fake\) is 0\.77\. REAL below 0\.40, UNSURE from 0\.40 to 0\.60, FAKE from 0\.60\./);
    assert.equal(scale.querySelector(".mark").style.left, "77%");
    assert.deepEqual([...scale.querySelectorAll(".zone")].map((z) => z.style.width), ["40%", "20%", "40%"]);
  });
  test("a failure says what happened, the next step, the server's words as details, and offers Retry", () => {
    const { box, text, acts } = panelFor({ phase: "failed", error: { error: "fetch_failed", message: "The site answered HTTP 404." } });
    assert.match(text, /This post could not be downloaded by your server\. Try right-click → “Check what's playing for deepfakes” while the video plays\. Details: The site answered HTTP 404\. Retry/);
    assert.doesNotMatch(text, /An estimate/); // not a verdict
    box.querySelector("button.retry").dispatchEvent(new document.defaultView.Event("click"));
    assert.equal(acts.retried, true);
  });
  test("a two-head model's verdict says which kind of trace the score came from; a one-head model's says nothing", () => {
    const { text } = panelFor(done({ verdict: "FAKE", p_fake: 0.91, confidence: 0.91, threshold: 0.6, uncertain_band: 0.1,
      signals: { blend: 0.12, generation: 0.91 }, signal: "generation" }));
    assert.match(text, /The score came from the model's look for traces of a face generated or re-rendered \(talking-head and animation tools\) \(scores: blend 0\.12, generation 0\.91\)\./);
    assert.doesNotMatch(panelFor(done({ verdict: "FAKE", p_fake: 0.91, confidence: 0.91 })).text, /score came from/);
    // a REAL verdict: neither head found much, and the panel does not say one of them "gave" the score
    const real = panelFor(done({ verdict: "REAL", p_fake: 0.09, confidence: 0.91, threshold: 0.6, uncertain_band: 0.1,
      signals: { blend: 0.05, generation: 0.09 }, signal: "generation" })).text;
    assert.match(real, /The model looked for traces of a face blended or swapped in \(face-swap tools\) and for traces of a face generated or re-rendered \(talking-head and animation tools\), and found little of either \(scores: blend 0\.05, generation 0\.09\)\./);
    assert.doesNotMatch(real, /score came from/);
    // a check that abstained has no score to attribute
    assert.doesNotMatch(panelFor(done({ verdict: "UNCERTAIN", p_fake: null, reason: "too_dark", signals: null, signal: null })).text,
      /score came from/);
  });
  test("what happened on the way (a capture that fell back to the file) is said", () => {
    const { text } = panelFor(done({ verdict: "REAL", p_fake: 0.2 }), { note: "Its picture could not be read in the page." });
    assert.ok(text.includes("Its picture could not be read in the page."));
  });
  test("a feature adds its own section after a named one, and every panel has it", () => {
    addSection({ name: "test-extra", render: () => [document.createTextNode("EXTRA SECTION")] }, { after: "scale" });
    const names = sectionNames();
    assert.equal(names[names.indexOf("scale") + 1], "test-extra");
    assert.match(panelFor(done({ verdict: "REAL", p_fake: 0.2 })).text, /EXTRA SECTION/);
  });
});

suite("where the panel goes", () => {
  const viewport = { width: 1100, height: 800 };
  const inside = (at, size) => at.left >= 0 && at.top >= 0 && at.left + Math.min(size.width, viewport.width - 16) <= viewport.width
    && at.top + Math.min(size.height, at.maxHeight) <= viewport.height;
  test("below the badge when it fits, above when not, beside or as a sheet otherwise", () => {
    const size = { width: 300, height: 500 };
    assert.equal(placePanel({ left: 20, top: 20, right: 120, bottom: 40 }, size, viewport).placement, "below");
    assert.equal(placePanel({ left: 20, top: 700, right: 120, bottom: 720 }, size, viewport).placement, "above");
    assert.equal(placePanel({ left: 20, top: 380, right: 120, bottom: 400 }, size, viewport).placement, "beside");
    assert.equal(placePanel({ left: 20, top: 380, right: 1000, bottom: 400 }, { width: 300, height: 700 }, { width: 640, height: 800 }).placement, "sheet");
  });
  test("never outside the viewport, whatever the badge's place and the panel's size", () => {
    for (let i = 0; i < 500; i++) {
      const left = (i * 37) % 1200 - 50;
      const top = (i * 53) % 900 - 50;
      const anchor = { left, top, right: left + 90, bottom: top + 22 };
      const size = { width: 300, height: 120 + (i * 71) % 1000 };
      const at = placePanel(anchor, size, viewport);
      assert.ok(inside(at, size), JSON.stringify({ anchor, size, at }));
      assert.ok(at.maxHeight <= viewport.height - 16);
    }
  });
  test("on a 360-px-high video near the bottom of the window, a tall panel is not cut: it goes above", () => {
    const at = placePanel({ left: 22, top: 446, right: 130, bottom: 468 }, { width: 300, height: 420 }, viewport);
    assert.equal(at.placement, "above");
    assert.equal(at.top + 420, 446 - 4);
  });
});
