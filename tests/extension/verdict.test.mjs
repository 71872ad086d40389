import assert from "node:assert/strict";
import { describe as suite, test } from "node:test";

import { validTarget } from "../../extension/shared/messages.js";
import { autoCheckEnabled, DEFAULTS, loginEnabled, normaliseServer } from "../../extension/shared/settings.js";
import { describe, displayVerdict, shortError } from "../../extension/shared/verdict.js";

const result = (verdict, p_fake, extra = {}) => ({ verdict, p_fake, threshold: 0.5, uncertain_band: 0.1, faces: [], ...extra });

suite("badge labels", () => {
  test("REAL and FAKE show the confidence of the stated side, rounded", () => {
    assert.equal(describe({ phase: "done", result: result("REAL", 0.07) }).label, "REAL 93%");
    assert.equal(describe({ phase: "done", result: result("FAKE", 0.88) }).label, "FAKE 88%");
    assert.equal(describe({ phase: "done", result: result("FAKE", 0.885) }).label, "FAKE 89%");
  });
  test("UNCERTAIN is UNSURE, NO_FACE is No face; each has its own tone", () => {
    const unsure = describe({ phase: "done", result: result("UNCERTAIN", 0.52) });
    const noface = describe({ phase: "done", result: { verdict: "NO_FACE", p_fake: null, error: "No faces detected. Cannot process the video." } });
    assert.deepEqual([unsure.label, unsure.tone], ["UNSURE", "unsure"]);
    assert.deepEqual([noface.label, noface.tone, noface.detail], ["No face", "noface", "No faces detected. Cannot process the video."]);
  });
  test("progress shows checking… with the percentage when the server gives one", () => {
    assert.equal(describe({ phase: "checking", status: "downloading", percent: 41.6 }).label, "checking… 42%");
    assert.equal(describe({ phase: "queued", status: "queued" }).label, "checking…");
  });
  test("errors are a short word on the badge and the server's message in the detail", () => {
    const d = describe({ phase: "error", error: { error: "not_running", message: "Cannot reach …" } });
    assert.deepEqual([d.label, d.tone, d.detail], ["server not running", "error", "Cannot reach …"]);
    assert.equal(describe({ phase: "failed", error: { error: "fetch_failed", message: "x" } }).label, "can't fetch");
    assert.equal(shortError("cert_untrusted"), "certificate not trusted");
    assert.equal(shortError("something_new"), "error");
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
