import assert from "node:assert/strict";
import { describe as suite, test } from "node:test";

import { BROKEN, BROKEN_AI_CLAIM, credentialsView, NONE, UNAVAILABLE } from "../../extension/shared/credentials.js";
import { describe } from "../../extension/shared/verdict.js";

const IPTC_AI = "trainedAlgorithmicMedia";
const provenance = (extra = {}) => ({
  state: "untrusted-signer", ai_generated: false, edited: false,
  signer: { issuer: "Example Cameras", common_name: "Cam 1" }, claim_generator: "Cam Firmware 1.0", created: null,
  actions: [{ action: "c2pa.created", software_agent: null, digital_source_type: "digitalCapture", when: "2026-11-30T10:00:00Z" }],
  errors: [], ...extra,
});
const aiDeclared = (extra = {}) => provenance({
  ai_generated: true, signer: { issuer: "Example AI Inc", common_name: "Imagine" }, claim_generator: "Imagine Video 1.0",
  actions: [{ action: "c2pa.created", software_agent: "Imagine Video 1.0", digital_source_type: IPTC_AI, when: null }], ...extra,
});
const done = (verdict, p_fake, prov, source = "url") => ({
  phase: "done", source, result: { verdict, p_fake, threshold: 0.5, uncertain_band: 0.1, faces: [], provenance: prov },
});

suite("Content Credentials on the badge", () => {
  test("a declared AI-generated file with intact credentials is labelled so, whatever the detector says", () => {
    for (const [verdict, p] of [["REAL", 0.05], ["FAKE", 0.9], ["UNCERTAIN", 0.5]]) {
      const v = describe(done(verdict, p, aiDeclared()));
      assert.deepEqual([v.label, v.tone, v.mark], ["AI-generated (declared)", "declared", undefined]);
    }
  });
  test("the declaration's detail names the signer, says it is unverified, and keeps the detector's verdict", () => {
    const v = describe(done("REAL", 0.07, aiDeclared()));
    assert.equal(v.detail, "The file's Content Credentials declare it AI-generated. Signed by Example AI Inc "
      + "(not verified against a trust list). The detector: REAL · score 93% (P(fake) 0.07).");
    assert.deepEqual([v.detector.label, v.detector.tone], ["REAL · score 93%", "real"]);
  });
  test("a signer on the user's trust list is said to be on it", () => {
    assert.match(describe(done("FAKE", 0.9, aiDeclared({ state: "valid" }))).detail, /Signed by Example AI Inc \(on your trust list\)/);
  });
  test("a declaration whose credentials are broken does not label the badge: the detector's verdict stays", () => {
    const v = describe(done("FAKE", 0.88, aiDeclared({ state: "invalid", errors: ["assertion.dataHash.mismatch"] })));
    assert.deepEqual([v.label, v.tone, v.mark], ["FAKE · score 88%", "fake", ""]);
    assert.equal(v.credentials.kind, "broken");
    assert.equal(v.credentials.summary, BROKEN);
    assert.deepEqual(v.credentials.lines.at(-1), "Why: assertion.dataHash.mismatch");
  });
  test("intact camera credentials add a CR mark and never turn a FAKE into REAL", () => {
    const v = describe(done("FAKE", 0.8, provenance({ state: "valid" })));
    assert.deepEqual([v.label, v.tone, v.mark], ["FAKE · score 80%", "fake", "CR"]);
    assert.equal(describe(done("REAL", 0.2, provenance())).mark, "CR");
  });
  test("no credentials, and results from before the field existed, change nothing", () => {
    const none = describe(done("REAL", 0.1, null));
    assert.deepEqual([none.label, none.mark, none.credentials.kind, none.credentials.summary], ["REAL · score 90%", "", "none", NONE]);
    const old = describe({ phase: "done", result: { verdict: "FAKE", p_fake: 0.9, threshold: 0.5 } });
    assert.deepEqual([old.label, old.mark], ["FAKE · score 90%", ""]);
  });
  test("captured frames say credentials are not available, even if a result carried some", () => {
    const v = describe(done("REAL", 0.1, aiDeclared(), "frames"));
    assert.deepEqual([v.label, v.credentials.kind, v.credentials.summary], ["REAL · score 90%", "unavailable", UNAVAILABLE]);
  });
  test("a declared AI file without a face is still declared", () => {
    const v = describe({ phase: "done", result: { verdict: "NO_FACE", p_fake: null, error: "No faces detected.", provenance: aiDeclared() } });
    assert.equal(v.label, "AI-generated (declared)");
    assert.match(v.detail, /The detector: No face \(No faces detected\.\)\.$/);
  });
});

suite("Content Credentials in the panel", () => {
  test("the panel lists signer, tool, date and edits in words", () => {
    const c = credentialsView({ provenance: provenance({ edited: true, actions: [
      { action: "c2pa.created", software_agent: null, digital_source_type: "digitalCapture", when: null },
      { action: "c2pa.edited", software_agent: "Photo Editor", digital_source_type: null, when: null },
      { action: "c2pa.cropped", software_agent: "Photo Editor", digital_source_type: null, when: null },
      { action: "com.example.custom", software_agent: null, digital_source_type: null, when: null }],
    created: "2026-11-30T10:00:00+00:00" }) });
    assert.equal(c.kind, "intact");
    assert.equal(c.summary, "Content Credentials (CR) record an edit.");
    assert.deepEqual(c.lines, ["Signed by Example Cameras (not verified against a trust list)", "Tool: Cam Firmware 1.0",
      "Date: 2026-11-30T10:00:00+00:00", "Edits: edited, cropped, com.example.custom"]);
  });
  test("a capture's date comes from its created action when the signature has no time-stamp", () => {
    assert.ok(credentialsView({ provenance: provenance() }).lines.includes("Date: 2026-11-30T10:00:00Z"));
  });
  test("a signer without a name is still shown as a signer", () => {
    assert.equal(credentialsView({ provenance: provenance({ signer: null }) }).lines[0],
      "Signed by an unnamed signer (not verified against a trust list)");
  });
  test("broken credentials that claim AI generation show it as their claim, never as the file's label", () => {
    const c = credentialsView({ provenance: aiDeclared({ state: "invalid", ai_generated: false, ai_generated_claimed: true,
      errors: ["claimSignature.mismatch"] }) });
    assert.deepEqual([c.kind, c.summary], ["broken", BROKEN]);
    assert.deepEqual(c.lines.slice(1), [BROKEN_AI_CLAIM, "Why: claimSignature.mismatch"]);
    assert.equal(describe(done("REAL", 0.1, aiDeclared({ state: "invalid", ai_generated: false, ai_generated_claimed: true }))).label,
      "REAL · score 90%");
  });
  test("broken credentials without an AI claim do not mention one", () => {
    const c = credentialsView({ provenance: provenance({ state: "invalid", errors: ["assertion.dataHash.mismatch"] }) });
    assert.ok(!c.lines.includes(BROKEN_AI_CLAIM));
  });
  test("broken credentials name their signer but say not to rely on them", () => {
    const c = credentialsView({ provenance: provenance({ state: "invalid", errors: ["provenance.timeout"] }) });
    assert.equal(c.lines[0], "They name Example Cameras as signer, but the file is not what was signed: do not rely on them.");
  });
});
