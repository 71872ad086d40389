import assert from "node:assert/strict";
import { describe as suite, test } from "node:test";

import { validTarget } from "../../extension/shared/messages.js";
import { autoCheckEnabled, DEFAULTS, loginEnabled, normaliseServer } from "../../extension/shared/settings.js";
import {
  BADGE_LABEL_MAX, describe, displayVerdict, ERROR_TEXT, progressPercent, REASON_TEXT, scaleOf, shortError,
} from "../../extension/shared/verdict.js";

const result = (verdict, p_fake, extra = {}) => ({ verdict, p_fake, threshold: 0.5, uncertain_band: 0.1, faces: [], ...extra });

suite("badge labels", () => {
  test("REAL and FAKE show the model's score for the stated side, called a score, rounded", () => {
    assert.equal(describe({ phase: "done", result: result("REAL", 0.07) }).label, "REAL · score 93%");
    assert.equal(describe({ phase: "done", result: result("FAKE", 0.88) }).label, "FAKE · score 88%");
    assert.equal(describe({ phase: "done", result: result("FAKE", 0.885) }).label, "FAKE · score 89%");
    const d = describe({ phase: "done", result: result("FAKE", 0.85) });
    assert.match(d.detail, /^Model score 85% for FAKE \(P\(fake\) 0\.85\): how strongly the model leans that way, not the chance that it is right\.$/);
    assert.equal(d.verdict, true); // shown with the caveat
  });
  test("a verdict carries the REAL · UNSURE · FAKE cuts and its mark; the options' band moves the cuts", () => {
    assert.deepEqual(scaleOf(result("UNCERTAIN", 0.55)), { p: 0.55, lo: 0.4, hi: 0.6, threshold: 0.5 });
    assert.deepEqual(scaleOf(result("FAKE", 0.77, { threshold: 0.6, uncertain_band: 0.1 }), 0.2), { p: 0.77, lo: 0.4, hi: 0.8, threshold: 0.6 });
    assert.equal(scaleOf({ verdict: "UNCERTAIN", p_fake: null }), null);
  });
  test("UNSURE says where the cuts are in words", () => {
    const d = describe({ phase: "done", result: result("UNCERTAIN", 0.55) });
    assert.equal(d.detail, "The model's score, P(fake) 0.55, is between 0.40 and 0.60: too close to the line between REAL and FAKE for the model to take a side.");
  });
  test("UNCERTAIN is UNSURE, NO_FACE is No face; each has its own tone", () => {
    const unsure = describe({ phase: "done", result: result("UNCERTAIN", 0.52) });
    const noface = describe({ phase: "done", result: { verdict: "NO_FACE", p_fake: null, error: "No faces detected. Cannot process the video." } });
    assert.deepEqual([unsure.label, unsure.tone], ["UNSURE", "unsure"]);
    assert.deepEqual([noface.label, noface.tone, noface.detail], ["No face", "noface", "No faces detected. Cannot process the video."]);
  });
  test("a check waiting its turn says waiting…; a running one how far it has got through its steps", () => {
    assert.equal(describe({ phase: "queued", status: "queued" }).label, "waiting…");
    assert.equal(describe({ phase: "checking", status: "queued" }).label, "waiting…");
    assert.equal(describe({ phase: "checking", status: "downloading", percent: 40 }).label, "checking… 23%");
    assert.equal(describe({ phase: "checking", status: "downloading", percent: null }).label, "checking… 5%");
    assert.equal(describe({ phase: "checking", status: "detecting" }).label, "checking… 55%");
    assert.equal(describe({ phase: "checking", status: "analysing" }).label, "checking… 80%");
    const order = ["downloading", "detecting", "analysing"].map((status) => progressPercent({ status, percent: 100 }));
    assert.deepEqual(order, [...order].sort((a, b) => a - b));
  });
  test("errors are a short word on the badge; the panel says what happened and the next step, the server's words as details", () => {
    const d = describe({ phase: "error", error: { error: "not_running", message: "Cannot reach …" } });
    assert.deepEqual([d.label, d.tone, d.headline, d.technical, d.retry],
      ["server not running", "error", "Your Deepfake Check server is not answering.", "Cannot reach …", true]);
    assert.match(d.next, /checks again on its own once the server answers/);
    const f = describe({ phase: "failed", error: { error: "fetch_failed", message: "The site answered HTTP 404." } });
    assert.deepEqual([f.label, f.headline, f.technical], ["can't download", "This post could not be downloaded by your server.", "The site answered HTTP 404."]);
    assert.match(f.next, /Check what's playing for deepfakes/);
    assert.equal(shortError("cert_untrusted"), "certificate not trusted");
    assert.equal(shortError("something_new"), "error");
    assert.equal(shortError("constructor"), "error");
    assert.match(describe({ phase: "error", error: { error: "something_new", message: "?" } }).next, /Retry/);
  });
  test("every short label fits on a badge, and every error has a next step", () => {
    for (const code of Object.keys(ERROR_TEXT)) {
      const d = describe({ phase: "error", error: { error: code, message: "m" } });
      assert.ok(d.label.length <= BADGE_LABEL_MAX, `${code}: ${d.label}`);
      assert.ok(d.next && d.next.length > 10, code);
    }
    for (const label of ["waiting…", "checking… 80%", "capturing… 100%", "FAKE · score 100%", "UNSURE", "No face"]) {
      assert.ok(label.length <= BADGE_LABEL_MAX, label);
    }
  });
});

suite("a check that could not judge (UNCERTAIN with a reason)", () => {
  const abstained = (reason, reason_text = "The server's own sentence.") => ({
    verdict: "UNCERTAIN", p_fake: null, confidence: null, reason, reason_text, threshold: 0.5, uncertain_band: 0.1, faces: [] });
  const CODES = ["face_too_small", "face_in_profile", "too_blurred", "too_dark", "few_face_frames", "heavy_compression", "face_covered"];
  test("the badge reads UNSURE and the detail is the extension's sentence for the code, with no scale", () => {
    for (const code of CODES) {
      const d = describe({ phase: "done", result: abstained(code) });
      assert.deepEqual([d.label, d.tone, d.detail, d.reason, d.scale], ["UNSURE", "unsure", REASON_TEXT[code], REASON_TEXT[code], null], code);
      assert.match(d.detail, /may work\.$/, `${code}: says what would help`);
    }
  });
  test("an unknown code falls back to the server's sentence", () => {
    assert.equal(describe({ phase: "done", result: abstained("glare", "Too much glare on the face.") }).detail, "Too much glare on the face.");
  });
  test("a band set in the options never turns an abstention into a side", () => {
    assert.equal(displayVerdict(abstained("too_dark"), 0), "UNCERTAIN");
    assert.equal(describe({ phase: "done", result: abstained("too_dark") }, 0).label, "UNSURE");
  });
});

suite("posts behind a login", () => {
  const failed = (cookies) => ({ phase: "failed", cookies, error: { error: "login_required", message: "This post needs a login." } });
  test("without the browser's login, the badge names both ways to check the post", () => {
    const d = describe(failed(false));
    assert.equal(d.label, "login needed");
    assert.match(d.detail, /^This post needs a login\. Two ways to check it: let the server use your browser's login for this site/);
    assert.match(d.detail, /Options → Posts behind a login/);
    assert.match(d.detail, /check what is playing on your screen/);
  });
  test("when the browser's login was used and still refused, only checking what plays is left", () => {
    const d = describe(failed(true));
    assert.doesNotMatch(d.detail, /Posts behind a login/);
    assert.match(d.detail, /check what is playing on your screen/);
  });
  test("a site that changed under the fetcher says so", () => {
    assert.equal(shortError("site_changed"), "site changed");
  });
  test("the browser's login is off for every site until turned on, and never for sites without an adapter", () => {
    assert.equal(loginEnabled(DEFAULTS, "instagram"), false);
    assert.equal(loginEnabled({ loginSites: { instagram: true } }, "instagram"), true);
    assert.equal(loginEnabled({ loginSites: { instagram: true } }, "x"), false);
    assert.equal(loginEnabled({ loginSites: { generic: true } }, "generic"), false);
  });
});

suite("the uncertain band from the options", () => {
  test("no override: the server's verdict stands", () => {
    assert.equal(displayVerdict(result("UNCERTAIN", 0.55)), "UNCERTAIN");
    assert.equal(displayVerdict(result("FAKE", 0.65)), "FAKE");
  });
  test("a wider band turns a weak call UNSURE, a zero band forces a side", () => {
    assert.equal(displayVerdict(result("FAKE", 0.65), 0.2), "UNCERTAIN");
    assert.equal(displayVerdict(result("UNCERTAIN", 0.55), 0), "FAKE");
    assert.equal(displayVerdict(result("UNCERTAIN", 0.45), 0), "REAL");
    assert.equal(displayVerdict(result("FAKE", 0.7), 0.2), "FAKE"); // the band edge is a confident call (model/verdict.py)
  });
  test("NO_FACE is never re-read", () => {
    assert.equal(displayVerdict({ verdict: "NO_FACE", p_fake: null }, 0.3), "NO_FACE");
  });
});

suite("what may be sent and where", () => {
  test("only http(s) targets are accepted from a content script; blob: and javascript: are not", () => {
    assert.equal(validTarget({ url: "blob:https://x.com/abc" }), null);
    assert.equal(validTarget({ url: "javascript:alert(1)" }), null);
    assert.equal(validTarget({ url: "file:///etc/passwd" }), null);
    assert.deepEqual(validTarget({ url: "https://x.com/a/status/1", pageUrl: "chrome://settings", kind: "weird" }),
      { url: "https://x.com/a/status/1", pageUrl: null, kind: "video" });
  });
  test("the server address must be https on loopback", () => {
    assert.equal(normaliseServer("https://127.0.0.1:8765/anything"), "https://127.0.0.1:8765");
    assert.equal(normaliseServer("https://localhost:9000"), "https://localhost:9000");
    assert.equal(normaliseServer("http://127.0.0.1:8765"), null);
    assert.equal(normaliseServer("https://example.com"), null);
    assert.equal(normaliseServer("https://127.0.0.1.evil.example"), null);
  });
  test("automatic checks: on for supported sites by default, off elsewhere unless turned on", () => {
    const s = { ...DEFAULTS, autoSites: { ...DEFAULTS.autoSites, tiktok: false }, autoOrigins: { "https://blog.example": true } };
    assert.equal(autoCheckEnabled(s, "x", "https://x.com"), true);
    assert.equal(autoCheckEnabled(s, "tiktok", "https://www.tiktok.com"), false);
    assert.equal(autoCheckEnabled(s, "generic", "https://other.example"), false);
    assert.equal(autoCheckEnabled(s, "generic", "https://blog.example"), true);
  });
});
