// @ts-check
// User settings and the pairing token, all in storage.local (they must survive the service worker
// being stopped). Trusted contexts only: the service worker and the extension's own pages. Content
// scripts run beside every page and never read storage; they ask the service worker for the little
// they need (contentSettings), and where the browser can, storage.local is closed to them.
import { api } from "./browser.js";

export const DEFAULT_SERVER = "https://127.0.0.1:8765";

// Sites with an adapter are checked automatically unless the user turns them off.
export const AUTO_SITES_DEFAULT = {
  youtube: true, x: true, instagram: true, tiktok: true, facebook: true, reddit: true,
};

/**
 * @typedef {object} Settings
 * @property {string} server  https://127.0.0.1:PORT or https://localhost:PORT
 * @property {number | null} uncertainBand  null: the server's band (result.uncertain_band); a number overrides it for display
 * @property {Record<string, boolean>} autoSites  site adapter id → automatic checks on
 * @property {Record<string, boolean>} autoOrigins  other sites (origin → true) where the user turned automatic checks on
 * @property {Record<string, boolean>} loginSites  site adapter id → the server may use the browser's login there (off by default)
 * @property {boolean} loginNoticeSeen  the options page showed what using the browser's login means
 * @property {number} captureFrames  frames taken from a playing video when its address cannot be checked (spread over up to ~8 s)
 * @property {boolean} historyUrls  the server's history may keep the addresses of checked videos (off: only their site)
 */
/** @typedef {{server: string, token: string | null}} Connection  what talking to the server takes */

/** @type {Settings} */
export const DEFAULTS = {
  server: DEFAULT_SERVER,
  uncertainBand: null,
  autoSites: AUTO_SITES_DEFAULT,
  autoOrigins: {},
  loginSites: {},
  loginNoticeSeen: false,
  captureFrames: 20,
  historyUrls: false,
};

const TOKEN = "token"; // its storage.local key: read by getConnection() only

/** The settings, without the token. @returns {Promise<Settings>} */
export async function getSettings() {
  const keys = /** @type {(keyof Settings)[]} */ (Object.keys(DEFAULTS));
  const stored = /** @type {Partial<Settings>} */ (await api.storage.local.get(keys));
  const s = { ...DEFAULTS, ...stored };
  s.autoSites = { ...AUTO_SITES_DEFAULT, ...(stored.autoSites || {}) };
  s.autoOrigins = { ...(stored.autoOrigins || {}) };
  s.loginSites = { ...(stored.loginSites || {}) };
  return s;
}

/** The server and the token: for the service worker and the check-a-file page. @returns {Promise<Connection>} */
export async function getConnection() {
  const stored = /** @type {{server?: string, token?: string | null}} */ (await api.storage.local.get(["server", TOKEN]));
  return { server: stored.server ?? DEFAULT_SERVER, token: stored[TOKEN] ?? null };
}

/** @param {Partial<Settings & Connection>} patch */
export async function setSettings(patch) {
  await api.storage.local.set(patch);
}

/**
 * Points the extension at a server the user named. A token belongs to the server that issued it, so
 * with another server it is forgotten first (never a moment of new server and old token).
 * @param {string} server  normalised (normaliseServer)
 */
export async function setServer(server) {
  if (server === (await getConnection()).server) return;
  await api.storage.local.remove(TOKEN);
  await api.storage.local.set({ server });
}

/** Keys whose change content scripts hear of (settings-changed): what contentSettings reads, and the connection. */
export const CONTENT_SETTING_KEYS = ["uncertainBand", "autoSites", "autoOrigins", "captureFrames", "server", TOKEN];

/**
 * Where the browser allows it, closes storage.local to content scripts (Chrome 140+; Firefox has
 * no StorageArea.setAccessLevel yet). Content scripts never ask for storage either way.
 * @returns {Promise<boolean>} whether it is closed
 */
export async function closeStorageToContentScripts() {
  try {
    if (typeof api.storage.local.setAccessLevel !== "function") return false;
    await api.storage.local.setAccessLevel({ accessLevel: "TRUSTED_CONTEXTS" });
    return true;
  } catch {
    return false; // Chrome before 140: only storage.session can be restricted
  }
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

/**
 * Should the server use the browser's login (cookies) to fetch url? Only for a site with an adapter
 * that the user turned on in the options; never for other sites.
 * @param {Pick<Settings, "loginSites">} settings
 * @param {string} siteId  the adapter id of the URL to fetch
 */
export function loginEnabled(settings, siteId) {
  return siteId !== "generic" && !!settings.loginSites[siteId];
}
