// @ts-check
// "Is this right?": the user's answer on a finished check — Yes / No, it's real / No, it's fake, an
// optional note, and (where the clip can come again) "Keep this clip for retraining". One click
// sends the answer; it can be changed or withdrawn. The same control in a badge's details panel
// (content/feedback.js) and on the check-a-file page; it carries its own style, so it looks the same
// inside the badge's closed shadow root and on a page.
import { MAX_NOTE_CHARS } from "./messages.js";

/** @typedef {import("./messages.js").Truth} Truth */
/** @typedef {import("./messages.js").HistoryEntry} HistoryEntry */
/**
 * What the control remembers of an answer (per check, for as long as its page lives).
 * @typedef {{label: Truth | null, note: string | null, kept: boolean}} Answer
 */
/**
 * What the control does; each resolves to the server's entry, or rejects with the reason.
 * @typedef {object} Actions
 * @property {(label: Truth | null, note: string | null) => Promise<HistoryEntry>} answer
 * @property {((keep: boolean) => Promise<HistoryEntry>) | null} keep  null: this clip cannot be kept
 */

const CSS = `
.dfc-fb { margin: 8px 0 2px; padding-top: 6px; border-top: 1px solid #ddd; font: 400 13px/1.4 system-ui, sans-serif; color: #111; }
.dfc-fb .q { font-weight: 700; margin: 0 0 4px; }
.dfc-fb .choices { display: flex; gap: 6px; flex-wrap: wrap; }
.dfc-fb button { float: none; font: inherit; font-size: 12px; padding: 3px 8px; border: 1px solid #555; border-radius: 4px; background: #f4f4f4; color: #111; cursor: pointer; }
.dfc-fb button[aria-pressed="true"] { background: #111; color: #fff; border-color: #111; }
.dfc-fb button:focus-visible { outline: 3px solid #56B4E9; outline-offset: 1px; }
.dfc-fb input.note { box-sizing: border-box; width: 100%; margin: 6px 0 2px; padding: 3px 5px; font: inherit; font-size: 12px; }
.dfc-fb label.keep { display: flex; gap: 6px; align-items: center; font-size: 12px; margin: 4px 0 0; }
.dfc-fb .said { font-size: 12px; color: #333; margin: 4px 0 0; min-height: 1em; }
.dfc-fb .said[data-kind="error"] { color: #a33c00; font-weight: 600; }
.dfc-fb a.withdraw { color: #0a58ca; cursor: pointer; text-decoration: underline; margin-left: 4px; }
`;

// Below this many answers on badges of one kind, a share says more about chance than about the model.
export const ENOUGH_ANSWERS = 10;

/**
 * How often this model's FAKE (and REAL) badges were wrong for this user, once there are enough
 * answers: "You marked 3 of 41 FAKE badges as real."
 * @param {{fake_verdicts: number, fake_marked_real: number, real_verdicts: number, real_marked_fake: number}} a  GET /v1/calibration's answers
 * @param {string | null} model
 * @returns {string}
 */
export function falseAlarmText(a, model) {
  const parts = [];
  if (a.fake_verdicts >= ENOUGH_ANSWERS) parts.push(`${a.fake_marked_real} of ${a.fake_verdicts} FAKE badges as real`);
  if (a.real_verdicts >= ENOUGH_ANSWERS) parts.push(`${a.real_marked_fake} of ${a.real_verdicts} REAL badges as fake`);
  return parts.length ? `You marked ${parts.join(" and ")}${model ? ` (model ${model})` : ""}.` : "";
}

/**
 * The choices for a verdict as shown: Yes sends the verdict's own label; the others say what it is.
 * @param {string | null} verdict  REAL, FAKE, UNCERTAIN, NO_FACE
 * @returns {{label: Truth, text: string}[]}
 */
export function choicesFor(verdict) {
  /** @type {{label: Truth, text: string}[]} */
  const out = [];
  if (verdict === "REAL" || verdict === "FAKE") out.push({ label: verdict, text: "Yes" });
  if (verdict !== "REAL") out.push({ label: "REAL", text: "No, it's real" });
  if (verdict !== "FAKE") out.push({ label: "FAKE", text: "No, it's fake" });
  return out;
}

/**
 * One sentence for an answer given.
 * @param {Truth | null} label @param {string | null} verdict
 */
export function saidText(label, verdict) {
  if (!label) return "";
  return label === verdict ? "Saved: you agree with this verdict." : `Saved: you say it's ${label === "REAL" ? "real" : "fake"}.`;
}

/**
 * The control for one finished check.
 * @param {Document} doc
 * @param {{verdict: string | null}} check  the verdict as shown
 * @param {Actions} actions
 * @param {Answer} state  the answer given so far (mutated as the user changes it)
 * @returns {HTMLElement}
 */
export function feedbackControl(doc, check, actions, state) {
  const el = (/** @type {string} */ tag, /** @type {Record<string, string>} */ attrs = {}, /** @type {(Node | string)[]} */ ...kids) => {
    const e = doc.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    e.append(...kids);
    return e;
  };
  const root = el("div", { class: "dfc-fb", role: "group", "aria-label": "Is this verdict right?" });
  const said = el("p", { class: "said", role: "status", "aria-live": "polite" });
  const note = /** @type {HTMLInputElement} */ (el("input", {
    class: "note", type: "text", maxlength: String(MAX_NOTE_CHARS), placeholder: "Note (optional, stays on your computer)",
    "aria-label": "Note about this verdict (optional)",
  }));
  note.value = state.note ?? "";
  const buttons = choicesFor(check.verdict).map((c) => el("button", { type: "button", "data-answer": c.label }, c.text));
  const withdraw = el("a", { class: "withdraw", role: "button", tabindex: "0" }, "Withdraw");

  const show = (/** @type {string} */ error = "") => {
    root.dataset.answered = state.label ?? "";
    for (const b of buttons) b.setAttribute("aria-pressed", String(b.dataset.answer === state.label));
    said.dataset.kind = error ? "error" : "";
    said.replaceChildren(error || saidText(state.label, check.verdict));
    if (!error && state.label) said.append(withdraw);
  };
  /** @param {Truth | null} label */
  const send = async (label) => {
    try {
      const entry = await actions.answer(label, label ? note.value.trim() || null : null);
      state.label = entry.feedback?.label ?? null;
      state.note = entry.feedback?.note ?? null;
      if (!state.label) note.value = "";
      show();
    } catch (e) {
      show(`Not saved: ${e?.message ?? e}`);
    }
  };
  for (const b of buttons) {
    b.addEventListener("click", (e) => {
      e.stopPropagation();
      send(/** @type {Truth} */ (b.dataset.answer));
    });
  }
  withdraw.addEventListener("click", (e) => {
    e.stopPropagation();
    send(null);
  });
  withdraw.addEventListener("keydown", (e) => (e.key === "Enter" || e.key === " ") && send(null));
  note.addEventListener("change", () => state.label && send(state.label)); // a note edited after answering
  for (const type of ["keydown", "keyup", "keypress"]) note.addEventListener(type, (e) => e.stopPropagation()); // not the page's shortcuts

  root.append(el("style", {}, CSS), el("p", { class: "q" }, "Is this right?"), el("div", { class: "choices" }, ...buttons), note);
  if (actions.keep) {
    const keep = actions.keep;
    const box = /** @type {HTMLInputElement} */ (el("input", { type: "checkbox", class: "keep" }));
    box.checked = state.kept;
    box.addEventListener("change", async () => {
      box.disabled = true;
      try {
        state.kept = (await keep(box.checked)).clip_kept;
        show();
      } catch (e) {
        show(`Clip not ${box.checked ? "kept" : "removed"}: ${e?.message ?? e}`);
      }
      box.checked = state.kept;
      box.disabled = false;
      root.dataset.kept = String(state.kept);
    });
    root.dataset.kept = String(state.kept);
    root.append(el("label", { class: "keep" }, box, "Keep this clip for retraining (encrypted, on your computer)"));
  }
  root.append(said);
  show();
  return root;
}
