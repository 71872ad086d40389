// @ts-check
// What a file's Content Credentials (C2PA, the server's `result.provenance`, docs/api.md) say, in
// words for the badge, the details panel and the check-a-file page. The detector is never silently
// overridden and the user never misled: a declared AI-generated file with intact credentials is
// called that (the detector's verdict stays in the detail); intact credentials of a camera or an
// editor only add a small "CR" mark (they can be stripped, or signed by anyone: they never make a
// FAKE look REAL); broken credentials are said to be broken, and the detector's verdict stays.

/**
 * The server's summary of a file's credentials (server/openapi.json, Provenance).
 * @typedef {object} Provenance
 * @property {"valid" | "invalid" | "untrusted-signer"} state
 * @property {boolean} ai_generated  intact credentials declare it (never true when state is "invalid")
 * @property {boolean} [ai_generated_claimed]  the manifest declares it, intact or not
 * @property {boolean} edited
 * @property {{issuer: string | null, common_name: string | null} | null} signer
 * @property {string | null} claim_generator
 * @property {string | null} created
 * @property {Array<{action: string | null, software_agent: string | null, digital_source_type: string | null, when: string | null}>} actions
 * @property {string[]} errors
 */

/**
 * "ai": declared AI-generated, intact; "intact": a camera's or an editor's, intact; "broken":
 * changed after signing or unreadable; "none": the file has none; "unavailable": captured frames.
 * @typedef {"ai" | "intact" | "broken" | "none" | "unavailable"} CredentialsKind
 */

/**
 * @typedef {object} CredentialsView
 * @property {CredentialsKind} kind
 * @property {string} summary  one sentence, for the panel and for screen readers
 * @property {string[]} lines  signer, tool, date, edits (the panel's list)
 */

export const BROKEN = "Content Credentials don't match this file (changed after signing).";
export const UNAVAILABLE = "Content Credentials: not available for captured frames.";
export const NONE = "No Content Credentials in this file (they are often stripped, so this says nothing either way).";
export const NOT_VERIFIED = "not verified against a trust list";
export const AI_LABEL = "AI-generated (declared)";
export const BROKEN_AI_CLAIM = "They claim the file is AI-generated, but they are broken: that claim is no one's word.";

// the C2PA actions a person recognises, in their words (others are shown by their code)
/** @type {Record<string, string>} */
const ACTION_WORDS = {
  "c2pa.created": "created", "c2pa.opened": "opened", "c2pa.edited": "edited", "c2pa.cropped": "cropped",
  "c2pa.color_adjustments": "colour adjusted", "c2pa.drawing": "drawn on", "c2pa.filtered": "filtered",
  "c2pa.orientation": "rotated", "c2pa.resized": "resized", "c2pa.placed": "something placed in",
  "c2pa.removed": "something removed", "c2pa.redacted": "redacted", "c2pa.transcoded": "transcoded",
  "c2pa.converted": "converted", "c2pa.published": "published",
};

/** @param {Provenance["signer"]} signer */
function signerName(signer) {
  return signer?.issuer || signer?.common_name || "an unnamed signer";
}

/**
 * "Signed by X (not verified against a trust list)", or "(on your trust list)" when it is.
 * @param {Provenance} p
 */
export function signedBy(p) {
  return `Signed by ${signerName(p.signer)} (${p.state === "valid" ? "on your trust list" : NOT_VERIFIED})`;
}

/**
 * @param {any} result  the server's result (provenance may be missing: a result from before)
 * @param {string} [source]  the check's source: "frames" for captured frames
 * @returns {CredentialsView}
 */
export function credentialsView(result, source) {
  if (source === "frames") return { kind: "unavailable", summary: UNAVAILABLE, lines: [] };
  /** @type {Provenance | null | undefined} */
  const p = result?.provenance;
  if (!p || typeof p !== "object") return { kind: "none", summary: NONE, lines: [] };
  if (p.state === "invalid") {
    const codes = (p.errors ?? []).slice(0, 5);
    return { kind: "broken", summary: BROKEN, lines: [
      `They name ${signerName(p.signer)} as signer, but the file is not what was signed: do not rely on them.`,
      ...(p.ai_generated_claimed || p.ai_generated ? [BROKEN_AI_CLAIM] : []),
      ...(codes.length ? [`Why: ${codes.join(", ")}`] : []),
    ] };
  }
  const lines = [signedBy(p)];
  if (p.claim_generator) lines.push(`Tool: ${p.claim_generator}`);
  const when = p.created || p.actions?.find((a) => a.when)?.when;
  if (when) lines.push(`Date: ${when}`);
  const edits = (p.actions ?? []).map((a) => a.action).filter((a) => a && a !== "c2pa.created" && a !== "c2pa.opened");
  if (edits.length) lines.push(`Edits: ${[...new Set(edits.map((a) => ACTION_WORDS[a ?? ""] ?? a))].join(", ")}`);
  if (p.ai_generated) {
    return { kind: "ai", summary: "The file's Content Credentials declare it AI-generated.", lines };
  }
  const what = p.edited ? "an edit" : "where it came from";
  return { kind: "intact", summary: `Content Credentials (CR) record ${what}.`, lines };
}
