// @ts-check
// The history as a file (the history page's "Export CSV"): one line per entry, with the user's
// answer and note. A cell that a spreadsheet would run as a formula (=, +, -, @ first) is made text.

/** @typedef {import("./messages.js").HistoryEntry} HistoryEntry */

export const CSV_COLUMNS = ["id", "created", "source", "site", "url", "content_sha256", "verdict", "p_fake", "confidence",
  "model", "calibration", "answer", "agrees", "note", "clip_kept"];

/** @param {unknown} v */
function cell(v) {
  let s = v == null ? "" : String(v);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** @param {HistoryEntry[]} entries @returns {string} */
export function toCsv(entries) {
  const lines = entries.map((e) => [e.id, e.created, e.source, e.site, e.url, e.content_sha256, e.verdict, e.p_fake,
    e.confidence, e.model, e.calibration, e.feedback?.label, e.feedback?.agrees, e.feedback?.note, e.clip_kept].map(cell).join(","));
  return [CSV_COLUMNS.join(","), ...lines].join("\r\n") + "\r\n";
}
