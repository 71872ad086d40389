// @ts-check
// Content scripts declared in a manifest cannot be ES modules; this classic script loads the real
// one (content/main.js) as a module from the extension's own files.
(() => {
  const api = globalThis.browser ?? globalThis.chrome;
  import(api.runtime.getURL("content/main.js")).catch((e) => console.debug("Deepfake Check: not started", e));
})();
