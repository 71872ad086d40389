// @ts-check
// User settings, all in storage.local (they must survive the service worker being stopped).
import { api } from "./browser.js";

export const DEFAULT_SERVER = "https://127.0.0.1:8765";

// Sites with an adapter are checked automatically unless the user turns them off.
export const AUTO_SITES_DEFAULT = {
  youtube: true, x: true, instagram: true, tiktok: true, facebook: true, reddit: true,
};

/**
 * @typedef {object} Settings
 * @property {string} server  https://127.0.0.1:PORT or https://localhost:PORT
 * @property {string | null} token  the bearer token from pairing
 * @property {number | null} uncertainBand  null: the server's band (result.uncertain_band); a number overrides it for display
 * @property {Record<string, boolean>} autoSites  site adapter id → automatic checks on
 * @property {Record<string, boolean>} autoOrigins  other sites (origin → true) where the user turned automatic checks on
 */

/** @type {Settings} */
export const DEFAULTS = {
  server: DEFAULT_SERVER,
  token: null,
  // null: use the server's band (result.uncertain_band); a number overrides it for display.
  uncertainBand: null,
  autoSites: AUTO_SITES_DEFAULT,
  // Other sites (origin -> true) where the user turned automatic checks on.
  autoOrigins: {},
};

/** @returns {Promise<Settings>} */
export async function getSettings() {
  const keys = /** @type {(keyof Settings)[]} */ (Object.keys(DEFAULTS));
  const stored = /** @type {Partial<Settings>} */ (await api.storage.local.get(keys));
  const s = { ...DEFAULTS, ...stored };
  s.autoSites = { ...AUTO_SITES_DEFAULT, ...(stored.autoSites || {}) };
  s.autoOrigins = { ...(stored.autoOrigins || {}) };
  return s;
}

/** @param {Partial<Settings>} patch */
export async function setSettings(patch) {
  await api.storage.local.set(patch);
}

/**
 * A server address the extension may talk to: https on loopback only (its host permissions).
 * @param {unknown} text
 * @returns {string | null} the origin, or null
 */
export function normaliseServer(text) {
  let u;
  try {
    u = new URL(String(text).trim());
  } catch {
    return null;
  }
  const host = u.hostname.replace(/^\[|\]$/g, "");
  if (u.protocol !== "https:" || !["127.0.0.1", "localhost"].includes(host)) return null;
  return u.origin;
}

/**
 * Is automatic checking on for this page? `siteId` is the adapter id ("generic" when none).
 * @param {Pick<Settings, "autoSites" | "autoOrigins">} settings
 * @param {string} siteId
 * @param {string} origin
 */
export function autoCheckEnabled(settings, siteId, origin) {
  if (siteId && siteId !== "generic" && siteId in settings.autoSites) return !!settings.autoSites[siteId];
  return !!settings.autoOrigins[origin];
}
