// @ts-check
// The history of checks (docs/api.md GET /v1/history): the server's record of what was checked and
// what the user answered. Filter, change or withdraw an answer, keep or drop a clip, delete one or
// all, export what the filters show as CSV or JSON. An extension page: it calls the server itself
// (background/client.js), like the check-a-file page. No thumbnails: nothing of the media is shown.
import { Client } from "../background/client.js";
import { toCsv } from "../shared/history-export.js";
import { getConnection } from "../shared/settings.js";
import { describe } from "../shared/verdict.js";

/** @typedef {import("../shared/messages.js").HistoryEntry} HistoryEntry */

const PAGE = 50;
const EXPORT_PAGE = 200; // the server's largest page

/**
 * An element of this page's own HTML by id: it is there, and of the kind the HTML says.
 * @param {string} id
 * @returns {any}
 */
const $ = (id) => document.getElementById(id);
let offset = 0;
/** @type {Client | null} */
let client = null;

async function connect() {
  const s = await getConnection();
  client = new Client(s.server, s.token);
  return client;
}

function filters() {
  return { verdict: $("verdict").value || undefined, feedback: $("feedback").value };
}

/** @param {string} text @param {"info" | "error"} [kind] */
function message(text, kind = "info") {
  $("message").textContent = text;
  $("message").dataset.kind = kind;
}

/**
 * @param {string} tag @param {Record<string, string>} [attrs] @param {(Node | string)[]} kids
 * @returns {HTMLElement}
 */
function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...kids);
  return e;
}

/** @param {HistoryEntry} e */
function row(e) {
  const view = describe({ phase: "done", result: { verdict: e.verdict, p_fake: e.p_fake } });
  const tr = el("tr", { "data-id": e.id, "data-answer": e.feedback?.label ?? "", "data-agrees": String(e.feedback?.agrees ?? "") });
  const site = el("td", { class: "site" }, e.site ?? (e.source === "upload" ? "a file" : "—"));
  if (e.url) site.append(el("span", { class: "url" }, e.url));
  else if (e.content_sha256) site.append(el("span", { class: "url", title: `sha256 ${e.content_sha256}` }, `#${e.content_sha256.slice(0, 12)}`));
  const answer = /** @type {HTMLSelectElement} */ (el("select", { "aria-label": "Your answer" },
    el("option", { value: "" }, "—"), el("option", { value: "REAL" }, "it's real"), el("option", { value: "FAKE" }, "it's fake")));
  answer.value = e.feedback?.label ?? "";
  answer.addEventListener("change", () => act(() => /** @type {Client} */ (client).feedback(e.id, /** @type {any} */ (answer.value || null), e.feedback?.note ?? null)));
  // a post's clip comes again from its address (kept here only if the options allow); a file's from the check-a-file page
  const canKeep = e.clip_kept || (e.source === "url" && !!e.url);
  const keep = /** @type {HTMLInputElement} */ (el("input", { type: "checkbox", "aria-label": "Keep this clip for retraining" }));
  keep.checked = e.clip_kept;
  keep.disabled = !canKeep;
  keep.title = canKeep ? "Keep this clip for retraining (encrypted, on your computer)"
    : e.source === "frames" ? "Captured frames cannot be kept" : "Tick it in the badge's details or on the check-a-file page, while the video is there";
  keep.addEventListener("change", () => act(() => keep.checked
    ? /** @type {Client} */ (client).keepClip(e.id, {}) : /** @type {Client} */ (client).dropClip(e.id)));
  const del = el("button", { type: "button", class: "delete", "aria-label": "Delete this entry" }, "Delete");
  del.addEventListener("click", () => act(() => /** @type {Client} */ (client).deleteHistory(e.id)));
  tr.append(
    el("td", {}, new Date(e.created).toLocaleString()), site,
    el("td", {}, el("span", { class: `tag ${view.tone}` }, view.label.replace(/ \d+%$/, "")),
      e.calibration === "personal" ? el("span", { class: "muted", title: "decided by your personal calibration" }, " (personal)") : ""),
    el("td", {}, e.p_fake == null ? "—" : e.p_fake.toFixed(2)), el("td", {}, e.model ?? "?"),
    el("td", { class: "answer" }, answer), el("td", { class: "answer-note" }, e.feedback?.note ?? ""), el("td", {}, keep), el("td", {}, del));
  return tr;
}

/** Does one change, then shows the page again; a refusal is said, not thrown. @param {() => Promise<any>} fn */
async function act(fn) {
  try {
    await fn();
    message("");
  } catch (e) {
    message(e?.message ?? String(e), "error");
  }
  await load();
}

async function load() {
  const c = client ?? (await connect());
  try {
    const page = await c.history({ ...filters(), limit: PAGE, offset });
    if (!page.items.length && offset > 0) {
      offset = Math.max(0, offset - PAGE);
      return load();
    }
    $("kept-days").textContent = String(Math.round(page.kept_days));
    $("rows").replaceChildren(...(page.items.length ? page.items.map(row)
      : [el("tr", {}, el("td", { colspan: "9", class: "muted" }, "No checks here yet."))]));
    $("count").textContent = page.total ? `${offset + 1}–${offset + page.items.length} of ${page.total}` : "";
    $("newer").disabled = offset === 0;
    $("older").disabled = offset + page.items.length >= page.total;
    document.body.dataset.total = String(page.total);
    document.body.dataset.loaded = String(Date.now());
  } catch (e) {
    $("rows").replaceChildren(el("tr", {}, el("td", { colspan: "9" }, `Cannot read the history: ${e?.message ?? e}`)));
    document.body.dataset.loaded = String(Date.now());
  }
}

/** Every entry the filters show, all pages. @returns {Promise<HistoryEntry[]>} */
async function everything() {
  const c = client ?? (await connect());
  const out = [];
  for (let at = 0; ; at += EXPORT_PAGE) {
    const page = await c.history({ ...filters(), limit: EXPORT_PAGE, offset: at });
    out.push(...page.items);
    if (!page.items.length || out.length >= page.total) return out;
  }
}

/** @param {string} text @param {string} type @param {string} name */
function download(text, type, name) {
  const a = el("a", { href: URL.createObjectURL(new Blob([text], { type })), download: name });
  document.body.append(a);
  /** @type {HTMLAnchorElement} */ (a).click();
  setTimeout(() => {
    URL.revokeObjectURL(/** @type {HTMLAnchorElement} */ (a).href);
    a.remove();
  }, 1000);
}

const stamp = () => new Date().toISOString().slice(0, 10);

$("verdict").addEventListener("change", () => { offset = 0; load(); });
$("feedback").addEventListener("change", () => { offset = 0; load(); });
$("newer").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); load(); });
$("older").addEventListener("click", () => { offset += PAGE; load(); });
$("export-csv").addEventListener("click", () => act(async () => download(toCsv(await everything()), "text/csv", `deepfake-check-history-${stamp()}.csv`)));
$("export-json").addEventListener("click", () => act(async () => download(JSON.stringify(await everything(), null, 1), "application/json", `deepfake-check-history-${stamp()}.json`)));
$("delete-all").addEventListener("click", () => { $("confirm-all").hidden = false; $("confirm-all-no").focus(); });
$("confirm-all-no").addEventListener("click", () => { $("confirm-all").hidden = true; });
$("confirm-all-yes").addEventListener("click", () => {
  $("confirm-all").hidden = true;
  act(() => /** @type {Client} */ (client).deleteHistory());
});
load();
