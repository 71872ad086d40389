// @ts-check
// Is the server there, is it trusted, are we paired? The answer is kept in storage.session so the
// popup can show it at once and a restarted service worker does not have to guess.
import { api } from "../shared/browser.js";
import { getConnection } from "../shared/settings.js";
import { Client, NOT_PAIRED_YET } from "./client.js";

/** @typedef {import("../shared/messages.js").Status} Status */

/** @returns {Promise<Status>} */
export async function probeStatus() {
  const s = await getConnection();
  const client = new Client(s.server, s.token);
  /** @type {Status} */
  let status;
  try {
    const health = await client.health();
    if (!s.token) {
      status = { state: "not_paired", message: NOT_PAIRED_YET };
    } else {
      const model = await client.model();
      status = { state: "connected", message: "Connected.", version: health.version, model };
    }
    status.fetcher = health.fetcher ?? null;
  } catch (e) {
    const state = ["not_running", "cert_untrusted", "not_paired"].includes(e.code) ? e.code : e.code === "timeout" ? "not_running" : "error";
    status = { state, message: e.message };
  }
  status.server = s.server;
  status.checkedAt = Date.now();
  await api.storage.session.set({ status });
  // A small "!" on the toolbar icon when something needs the user's attention.
  try {
    await api.action.setBadgeText({ text: status.state === "connected" ? "" : "!" });
    await api.action.setBadgeBackgroundColor({ color: "#b35900" });
  } catch { /* no action API (tests, old browsers) */ }
  return status;
}

/** @returns {Promise<Status | null>} */
export async function lastStatus() {
  const { status } = /** @type {{status?: Status}} */ (await api.storage.session.get("status"));
  return status ?? null;
}
