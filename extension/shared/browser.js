// One name for the WebExtension API: Firefox has `browser` (promises), Chrome has `chrome`
// (promises too in MV3). Every module imports `api` from here instead of guessing.
export const api = globalThis.browser ?? globalThis.chrome;

export const isFirefox = typeof globalThis.browser !== "undefined" && !!globalThis.browser.runtime?.getBrowserInfo;
