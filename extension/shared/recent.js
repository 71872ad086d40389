// @ts-check
// One line of the popup's "Last checks": what was checked, on which site and when, in words; the
// full address stays in the link's tooltip and target.
import { adapterFor } from "../sites/index.js";

/**
 * @typedef {object} RecentLine
 * @property {string} what  "X post", "video on blog.example", "what played on blog.example", …
 * @property {string} when  "just now", "5 min ago", "2 h ago", "yesterday", or a date
 * @property {string} address  the address checked (for the tooltip)
 */

/**
 * @param {{url: string, pageUrl: string | null, kind: string, time: number}} item  a RecentItem
 * @param {number} [now]
 * @returns {RecentLine}
 */
export function recentLine(item, now = Date.now()) {
  const key = item.url.match(/^(capture|live):(.*?)(#\d+)?$/);
  const address = key ? key[2] : item.url;
  const page = item.pageUrl || address;
  let host = "";
  try {
    host = new URL(page).hostname.replace(/^www\./, "");
  } catch { /* not an address */ }
  const adapter = adapterFor(page);
  const site = adapter.id === "generic" ? host || "a page" : adapter.name;
  let what;
  if (key?.[1] === "live") what = `live video watched on ${site}`;
  else if (key) what = `what played on ${site}`;
  else if (item.kind === "image") what = `image on ${site}`;
  else if (item.kind === "link") what = `link on ${site}`;
  else what = adapter.id === "generic" ? `video on ${site}` : `${site} post`;
  return { what, when: ago(now - item.time, item.time), address };
}

/** @param {number} ms  how long ago @param {number} at  when (for dates) */
function ago(ms, at) {
  const min = Math.floor(ms / 60_000);
  if (min < 1) return "just now";
  if (min < 60) return `${min} min ago`;
  const h = Math.floor(min / 60);
  if (h < 24) return `${h} h ago`;
  if (h < 48) return "yesterday";
  return new Date(at).toLocaleDateString(undefined, { day: "numeric", month: "short" });
}
