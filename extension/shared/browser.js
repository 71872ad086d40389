// @ts-check
// One name for the WebExtension API: Firefox has `browser` (promises), Chrome has `chrome`
// (promises too in MV3). Every module imports `api` from here instead of guessing.

/**
 * Chrome's API as @types/chrome describes it, plus what only Firefox has: `menus` (contextMenus
 * with getTargetElement, which finds the right-clicked element itself).
 * @typedef {typeof chrome & {menus?: typeof chrome.contextMenus & {getTargetElement(id: number): Element | null}}} Api
 */

/** @type {Api} */
export const api = globalThis.browser ?? globalThis.chrome;
