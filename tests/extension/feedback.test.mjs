import assert from "node:assert/strict";
import { describe as suite, test } from "node:test";
import { parseHTML } from "linkedom";

import { choicesFor, ENOUGH_ANSWERS, falseAlarmText, feedbackControl } from "../../extension/shared/feedback.js";
import { toCsv } from "../../extension/shared/history-export.js";
import { MAX_NOTE_CHARS, validFeedback } from "../../extension/shared/messages.js";

const ID = "AbCdEfGh12345678";
const entry = (label, note = null) => ({ id: ID, verdict: "FAKE", feedback: label ? { label, note, agrees: label === "FAKE", at: "" } : null, clip_kept: false });

function control(verdict, actions, state = { label: null, note: null, kept: false }) {
  const { document } = parseHTML("<!doctype html><html><body></body></html>");
  const el = feedbackControl(document, { verdict }, actions, state);
  document.body.append(el);
  return { el, state, button: (label) => el.querySelector(`button[data-answer="${label}"]`) };
}
const settle = () => new Promise((r) => setTimeout(r, 0));

suite("Is this right?", () => {
  test("Yes sends the verdict's own label; the other choice says what it is instead", () => {
    assert.deepEqual(choicesFor("FAKE"), [{ label: "FAKE", text: "Yes" }, { label: "REAL", text: "No, it's real" }]);
    assert.deepEqual(choicesFor("REAL"), [{ label: "REAL", text: "Yes" }, { label: "FAKE", text: "No, it's fake" }]);
  });
  test("an UNSURE or No face verdict has no Yes, only what the video is", () => {
    for (const v of ["UNCERTAIN", "NO_FACE"]) assert.deepEqual(choicesFor(v).map((c) => c.text), ["No, it's real", "No, it's fake"]);
  });
  test("one click sends the answer with the note, and the control shows it as given", async () => {
    const sent = [];
    const c = control("FAKE", { answer: async (label, note) => { sent.push([label, note]); return entry(label, note); }, keep: null });
    c.el.querySelector("input.note").value = "  my own video ";
    c.button("REAL").click();
    await settle();
    assert.deepEqual(sent, [["REAL", "my own video"]]);
    assert.equal(c.el.dataset.answered, "REAL");
    assert.equal(c.button("REAL").getAttribute("aria-pressed"), "true");
    assert.match(c.el.querySelector(".said").textContent, /you say it's real/);
    assert.deepEqual(c.state, { label: "REAL", note: "my own video", kept: false });
  });
  test("withdrawing sends no label and clears the answer", async () => {
    const sent = [];
    const c = control("FAKE", { answer: async (label, note) => { sent.push([label, note]); return entry(label, note); }, keep: null },
      { label: "REAL", note: "x", kept: false });
    c.el.querySelector("a.withdraw").click();
    await settle();
    assert.deepEqual(sent, [[null, null]]);
    assert.equal(c.el.dataset.answered, "");
  });
  test("a refused answer is said, and the answer shown stays what the server has", async () => {
    const c = control("REAL", { answer: async () => { throw new Error("The extension is not paired"); }, keep: null });
    c.button("FAKE").click();
    await settle();
    assert.equal(c.el.dataset.answered, "");
    assert.match(c.el.querySelector(".said").textContent, /^Not saved: The extension is not paired/);
  });
  test("the keep tick appears only where a clip can be kept, and follows the server's answer", async () => {
    assert.equal(control("FAKE", { answer: async () => entry(null), keep: null }).el.querySelector("input.keep"), null);
    const c = control("FAKE", { answer: async () => entry(null), keep: async (keep) => ({ ...entry(null), clip_kept: keep }) });
    const box = c.el.querySelector("input.keep");
    box.checked = true;
    box.dispatchEvent(new c.el.ownerDocument.defaultView.Event("change"));
    await settle();
    await settle();
    assert.equal(c.el.dataset.kept, "true");
    assert.equal(c.state.kept, true);
  });
});

suite("answers from content scripts", () => {
  test("a well-formed answer passes, its note trimmed", () => {
    assert.deepEqual(validFeedback({ checkId: ID, label: "FAKE", note: " hm " }), { checkId: ID, label: "FAKE", note: "hm" });
    assert.deepEqual(validFeedback({ checkId: ID, label: null }), { checkId: ID, label: null, note: null });
  });
  test("a bad id, label or note is refused", () => {
    for (const bad of [{ checkId: "short", label: "REAL" }, { checkId: `${ID}/x`, label: "REAL" }, { checkId: ID, label: "real" },
      { checkId: ID, label: "MAYBE" }, { checkId: ID }, { checkId: ID, label: "REAL", note: "x".repeat(MAX_NOTE_CHARS + 1) },
      { checkId: ID, label: "REAL", note: 5 }, null]) {
      assert.equal(validFeedback(bad), null, JSON.stringify(bad));
    }
  });
});

suite("your false alarms", () => {
  const answers = (fv, fr, rv, rf) => ({ fake_verdicts: fv, fake_marked_real: fr, real_verdicts: rv, real_marked_fake: rf });
  test("says how many FAKE badges the user marked real once there are enough of them", () => {
    assert.equal(falseAlarmText(answers(41, 3, 2, 0), "m"), "You marked 3 of 41 FAKE badges as real (model m).");
    assert.equal(falseAlarmText(answers(ENOUGH_ANSWERS, 0, ENOUGH_ANSWERS, 1), null),
      `You marked 0 of ${ENOUGH_ANSWERS} FAKE badges as real and 1 of ${ENOUGH_ANSWERS} REAL badges as fake.`);
  });
  test("says nothing with too few answers", () => {
    assert.equal(falseAlarmText(answers(ENOUGH_ANSWERS - 1, 5, 3, 1), "m"), "");
  });
});

suite("history export", () => {
  test("CSV has one line per entry with the answer, quotes what needs it and defuses formulas", () => {
    const csv = toCsv([{ id: ID, created: "2026-12-01T10:00:00Z", source: "url", site: "x.com", url: null, content_sha256: "ab",
      verdict: "FAKE", p_fake: 0.9, confidence: 0.9, model: "m", calibration: "model",
      feedback: { label: "REAL", note: '=HYPERLINK("x"), "quoted"', agrees: false, at: "" }, clip_kept: false }]);
    const [head, line, end] = csv.split("\r\n");
    assert.equal(head.split(",")[11], "answer");
    assert.equal(line, `${ID},2026-12-01T10:00:00Z,url,x.com,,ab,FAKE,0.9,0.9,m,model,REAL,false,"'=HYPERLINK(""x""), ""quoted""",false`);
    assert.equal(end, "");
  });
});
