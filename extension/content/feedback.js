// @ts-check
// The badge panel's "Is this right?" (shared/feedback.js), wired to the service worker: the answer
// and the kept clip go to the server by typed messages (FeedbackRequest, KeepClipRequest); what the
// user answered is remembered per check for as long as the page lives, so the panel shows it again
// when it is drawn anew.
import { feedbackControl } from "../shared/feedback.js";
import { MSG } from "../shared/messages.js";
import { displayVerdict } from "../shared/verdict.js";

/** @typedef {import("../shared/feedback.js").Answer} Answer */
/** @typedef {(msg: import("../shared/messages.js").Request) => Promise<any>} Send */

/** @type {Map<string, Answer>} */
const answers = new Map(); // check id → what the user said

/** @param {any} answer  a FeedbackAnswer or KeepClipAnswer */
function entryOf(answer) {
  if (answer?.ok) return answer.entry;
  throw new Error(answer?.error?.message ?? "no answer from the extension");
}

/**
 * The control for a badge's view, or null when there is nothing to answer (not finished, no
 * verdict, a live watch).
 * @param {any} view  the badge's view: {update, url, live?}
 * @param {Send} send
 * @param {number | null} band  the options' uncertain band (the verdict as the badge shows it)
 * @param {Document} [doc]
 * @returns {HTMLElement | null}
 */
export function feedbackSection(view, send, band, doc = document) {
  const u = view?.update;
  const verdict = displayVerdict(u?.result, band);
  if (u?.phase !== "done" || !u.id || view.live || !["REAL", "FAKE", "UNCERTAIN", "NO_FACE"].includes(verdict ?? "")) return null;
  const checkId = u.id;
  let state = answers.get(checkId);
  if (!state) answers.set(checkId, state = { label: null, note: null, kept: false });
  const url = typeof view.url === "string" && /^https?:/.test(view.url) ? view.url : null;
  return feedbackControl(doc, { verdict }, {
    answer: async (label, note) => entryOf(await send({ type: MSG.FEEDBACK, checkId, label, note })),
    // a post's video can be fetched again; captured frames cannot be kept
    keep: u.source !== "frames" && url
      ? async (keep) => entryOf(await send({ type: MSG.KEEP_CLIP, checkId, url, keep }))
      : null,
  }, state);
}
